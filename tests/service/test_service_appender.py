"""The group-commit appender: requests queued while a group is being staged are committed together,
each keeping its own results (indices within the request); the next group is staged while the
one before it is committed, and groups are stored in the order they came; nothing of a failed
group is stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from factories import purchase

from radar.engine import Engine, EventResult, StagedAppend
from radar.ingest.pipeline import BatchResult, Prepared
from radar.service.appender import Appender, event_text


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


def test_the_next_group_is_staged_while_one_is_committed_and_groups_are_stored_in_order(
    engine: Engine,
) -> None:
    committing, release, staged_second = threading.Event(), threading.Event(), threading.Event()
    commit, stage = engine.ingestor.commit, engine.stage_append

    def slow_commit(prepared: Prepared) -> BatchResult:
        if not release.is_set():
            committing.set()
            release.wait(10)
        return commit(prepared)

    def staging(events: list[Mapping[str, Any]]) -> StagedAppend:
        if committing.is_set():
            staged_second.set()
        return stage(events)

    engine.ingestor.commit = slow_commit  # type: ignore[method-assign]
    engine.stage_append = staging  # type: ignore[method-assign]
    appender = Appender(engine)
    appender.start()
    try:
        first = _submit(appender, [purchase(1), purchase(2)])
        assert committing.wait(10)
        second = _submit(appender, [purchase(3), purchase(1)])
        assert staged_second.wait(10)  # staged while the first group's transaction is open
        assert not first.done() and not second.done()
        release.set()
        assert [r.status for r in first.result(10)] == ["accepted", "accepted"]
        assert [r.status for r in second.result(10)] == ["accepted", "duplicate"]
    finally:
        release.set()
        appender.stop()
    history = engine.store.read_after(0, 10).column("state").to_pylist()
    assert [b'"order-1"' in s for s in history] == [True, False, False]
    assert [b'"order-3"' in s for s in history] == [False, False, True]
    assert appender.stats.transactions == 2


def test_an_event_that_is_not_json_serialisable_is_left_to_the_validator() -> None:
    assert event_text({"amount": 2**70}) == b"{}"
    assert event_text({"product": "café"}) == '{"product":"café"}'.encode()
