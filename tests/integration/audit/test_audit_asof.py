"""The as-of view: the live view captured at several moments during an ingest is reproduced later
by ``known_at``; late events make "as of" and "as known at" differ; times are checked."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from audit_factories import T0, at, buy, consent, registered, score, segment

from radar.audit.asof import customer_view, live_row, parse_moment
from radar.domain.errors import NotFound, RadarError
from radar.engine import Engine


def _chunks() -> list[list[dict[str, Any]]]:
    """Four chunks; later chunks hold late events (they occurred before earlier ones)."""
    return [
        [
            registered("C-1"),
            buy("C-1", 1, 10),
            buy("C-2", 1, 10),
            consent("C-1", "email", True, 11),
        ],
        [buy("C-1", 2, 20, 50.0), segment("C-1", "run-1", 21), buy("C-1", 3, 5, 7.5)],
        [consent("C-1", "email", False, 8), score("C-1", "run-1", 22, 0.3), buy("C-2", 2, 1)],
        [buy("C-1", 4, 2, 99.0), consent("C-1", "email", True, 9, n=1), buy("C-1", 5, 30)],
    ]


def test_known_at_reproduces_the_live_view_captured_during_an_ingest(engine: Engine) -> None:
    captured: list[tuple[datetime, dict[str, Any]]] = []
    for chunk in _chunks():
        assert {r.status for r in engine.append(chunk)} == {"accepted"}
        engine.project()
        row = live_row(engine, "C-1")
        assert row is not None
        captured.append((datetime.now(UTC), row))
        time.sleep(0.002)  # the next chunk is recorded strictly later
    rows = [row for _, row in captured]
    assert len({(r["purchases"], r["position"], r["consent_email"]) for r in rows}) == 4
    for moment, row in captured:
        again = customer_view(engine, "C-1", known_at=moment)
        assert again.row == row
        also = customer_view(engine, "C-1", as_of=datetime.now(UTC), known_at=moment)
        assert also.row == row


def test_late_events_make_as_of_and_as_known_at_differ(engine: Engine) -> None:
    engine.append(_chunks()[0] + _chunks()[1])
    engine.project()
    before_late = datetime.now(UTC)
    time.sleep(0.002)
    engine.append(_chunks()[3])  # includes a purchase that occurred on day 2, recorded now
    day3 = T0 + timedelta(days=3)
    known_then = customer_view(engine, "C-1", as_of=day3, known_at=before_late)
    known_now = customer_view(engine, "C-1", as_of=day3)
    assert known_then.row["purchases"] == 0
    assert known_now.row["purchases"] == 1 and known_now.row["revenue"] == 99.0
    assert known_now.row["position"] > known_then.row["position"]
    # business time alone: what had occurred by day 12, as known now
    day12 = customer_view(engine, "C-1", as_of=T0 + timedelta(days=12))
    assert day12.row["purchases"] == 3  # days 2, 5 and 10
    assert day12.row["consent_email"] is True
    assert day12.relative["days_since_last_purchase"] == pytest.approx(2.0)


def test_a_customer_unknown_or_not_yet_seen_is_not_found(engine: Engine) -> None:
    engine.append(_chunks()[0])
    with pytest.raises(NotFound, match="unknown customer 'C-404'"):
        customer_view(engine, "C-404")
    with pytest.raises(NotFound, match="no events that occurred by"):
        customer_view(engine, "C-1", as_of=T0 - timedelta(days=1))


def test_times_are_parsed_as_utc_and_future_or_unreadable_times_are_refused() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert parse_moment("2026-03-01", now=now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_moment("2026-03-01T10:00:00+02:00", now=now) == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert parse_moment(at(1), now=now) == T0 + timedelta(days=1)
    assert parse_moment("now", now=now) == now
    with pytest.raises(RadarError, match="in the future"):
        parse_moment("2026-06-02", "--as-of", now=now)
    with pytest.raises(RadarError, match="--known-at: cannot read 'yesterday'"):
        parse_moment("yesterday", "--known-at", now=now)
