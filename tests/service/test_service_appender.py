"""The group-commit appender: requests queued behind a running transaction are committed together,
each keeping its own results (indices within the request), and nothing of a failed group is
stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from factories import purchase

from radar.engine import Engine, EventResult
from radar.service.appender import Appender, event_text


@pytest.fixture
def held(engine: Engine) -> Iterator[tuple[Appender, threading.Event, threading.Event]]:
    """A running appender whose first transaction waits until ``release`` is set (``busy`` is
    set once it is waiting), so that the requests submitted meanwhile queue up as one group."""
    busy, release = threading.Event(), threading.Event()
    append = engine.append

    def slow_first(events: list[Mapping[str, Any]]) -> list[EventResult]:
        if not release.is_set():
            busy.set()
            release.wait(10)
        return append(events)

    engine.append = slow_first  # type: ignore[method-assign]
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
    def broken(events: list[Mapping[str, Any]]) -> list[EventResult]:
        raise OSError("disk full")

    engine.append = broken  # type: ignore[method-assign]
    appender = Appender(engine)
    future = _submit(appender, [purchase(1)])
    with pytest.raises(OSError, match="disk full"):
        future.result(10)
    assert engine.store.count() == 0


def test_an_event_that_is_not_json_serialisable_is_left_to_the_validator() -> None:
    assert event_text({"amount": 2**70}) == b"{}"
    assert event_text({"product": "café"}) == '{"product":"café"}'.encode()
