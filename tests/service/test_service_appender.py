"""The group-commit appender: requests queued while a group is being staged are committed together,
each keeping its own results (indices within the request); the next group is staged while the
one before it is committed, and groups are stored in the order they came; nothing of a failed
group is stored."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from factories import purchase

from radar.engine import Engine, EventResult, StagedAppend
from radar.ingest.pipeline import BatchResult, Prepared
from radar.service.appender import Appender, event_text
from radar.store.base import SMALL_BATCH_ROWS


@pytest.fixture
def held(engine: Engine) -> Iterator[tuple[Appender, threading.Event, threading.Event]]:
    """A running appender whose first group waits in staging until ``release`` is set (``busy``
    is set once it is waiting), so that the requests submitted meanwhile queue up as one group."""
    busy, release = threading.Event(), threading.Event()
    stage = engine.stage_append

    def slow_first(events: list[Mapping[str, Any]]) -> StagedAppend:
        if not release.is_set():
            busy.set()
            release.wait(10)
        return stage(events)

    engine.stage_append = slow_first  # type: ignore[method-assign]
    appender = Appender(engine, refused_types=frozenset({"action.planned"}))
    appender.start()
    yield appender, busy, release
    release.set()
    appender.stop()


def _submit(appender: Appender, events: list[dict[str, Any]]) -> Any:
    return appender.submit(events, [event_text(e) for e in events])


def test_requests_queued_behind_a_transaction_share_the_next_one(
    engine: Engine, held: tuple[Appender, threading.Event, threading.Event]
) -> None:
    appender, busy, release = held
    first = _submit(appender, [purchase(1)])
    assert busy.wait(10)
    refused = {**purchase(3), "type": "action.planned"}
    second = _submit(appender, [purchase(2), refused, purchase(1)])
    third = _submit(appender, [purchase(4, amount="lots")])  # type: ignore[arg-type]
    release.set()

    assert [r.status for r in first.result(10)] == ["accepted"]
    assert second.result(10) == [
        EventResult(0, "accepted", "order-2"),
        EventResult(
            1,
            "rejected",
            "order-3",
            "type",
            "'action.planned' events are written by radar itself, not appended",
        ),
        EventResult(2, "duplicate", "order-1"),
    ]
    [bad] = third.result(10)
    assert (bad.index, bad.status, bad.field) == (0, "rejected", "data.amount")
    assert appender.stats.transactions == 2
    assert (appender.stats.requests, appender.stats.events) == (3, 5)
    assert (appender.stats.accepted, appender.stats.duplicates, appender.stats.rejected) == (
        2,
        1,
        2,
    )
    assert engine.store.count() == 2


def test_a_failed_group_fails_each_of_its_requests_and_stores_nothing(engine: Engine) -> None:
    def broken(prepared: Prepared) -> BatchResult:
        raise OSError("disk full")

    engine.ingestor.commit = broken  # type: ignore[method-assign]
    appender = Appender(engine)
    future = _submit(appender, [purchase(1)])
    with pytest.raises(OSError, match="disk full"):
        future.result(10)
    assert engine.store.count() == 0


def _held_commits(engine: Engine) -> tuple[threading.Event, threading.Event]:
    """Make the engine's first commit wait until ``release`` is set (``committing`` is set once
    it waits)."""
    committing, release = threading.Event(), threading.Event()
    commit = engine.ingestor.commit

    def slow_commit(prepared: Prepared) -> BatchResult:
        if not release.is_set():
            committing.set()
            release.wait(10)
        return commit(prepared)

    engine.ingestor.commit = slow_commit  # type: ignore[method-assign]
    return committing, release


def test_a_batch_is_staged_while_the_group_before_it_is_committed_and_stored_after_it(
    engine: Engine,
) -> None:
    committing, release = _held_commits(engine)
    staged_second = threading.Event()
    stage = engine.stage_append

    def staging(events: list[Mapping[str, Any]]) -> StagedAppend:
        if committing.is_set():
            staged_second.set()
        return stage(events)

    engine.stage_append = staging  # type: ignore[method-assign]
    appender = Appender(engine)
    appender.start()
    size = SMALL_BATCH_ROWS + 1
    try:
        first = _submit(appender, [purchase(i) for i in range(size)])
        assert committing.wait(10)
        second = _submit(appender, [purchase(i) for i in range(size - 1, 2 * size - 1)])
        assert staged_second.wait(10)  # staged while the first group's transaction is open
        assert not first.done() and not second.done()
        release.set()
        assert {r.status for r in first.result(10)} == {"accepted"}
        assert [r.status for r in second.result(10)][:2] == ["duplicate", "accepted"]
    finally:
        release.set()
        appender.stop()
    history = engine.store.read_after(0, 1000).column("state").to_pylist()
    assert [b'"order-0"' in s for s in history].index(True) == 0
    assert [b'"order-' + str(2 * size - 2).encode() + b'"' in s for s in history][-1]
    assert appender.stats.transactions == 2


def test_single_events_wait_for_the_store_and_share_the_next_transaction(engine: Engine) -> None:
    committing, release = _held_commits(engine)
    appender = Appender(engine)
    appender.start()
    try:
        first = _submit(appender, [purchase(0)])
        assert committing.wait(10)
        rest = [_submit(appender, [purchase(1)])]
        time.sleep(0.2)  # time enough for a stager that did not wait to take it alone
        rest += [_submit(appender, [purchase(i)]) for i in range(2, 6)]
        release.set()
        assert [f.result(10)[0].status for f in [first, *rest]] == ["accepted"] * 6
    finally:
        release.set()
        appender.stop()
    assert appender.stats.transactions == 2
