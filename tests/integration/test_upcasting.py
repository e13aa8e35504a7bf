"""Changing a type later goes through versioning and upcasting, never by rewriting the log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from radar.domain.events import EVENT_CLASSES
from radar.engine import Engine


def usage(i: int, metric: str) -> dict[str, Any]:
    return {
        "event_id": f"u{i}",
        "type": "usage",
        "customer_id": "C-1",
        "source": "meter",
        "occurred_at": f"2026-01-0{i}T00:00:00Z",
        "data": {"product": "fiber", "metric": metric, "value": i},
    }


@pytest.fixture
def usage_v2() -> Iterator[None]:
    """Version 2 of ``usage`` renames the metric 'logins' to 'sessions'."""
    cls: Any = EVENT_CLASSES["usage"]

    def upcast_v1_v2(state: dict[str, Any]) -> None:
        if state["data"].get("metric") == "logins":
            state["data"]["metric"] = "sessions"

    cls.class_version = 2
    cls.upcast_v1_v2 = staticmethod(upcast_v1_v2)
    yield
    del cls.class_version
    del cls.upcast_v1_v2


def test_old_events_are_upcast_into_the_view_while_stored_bytes_stay(
    engine: Engine, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine.append([usage(1, "logins"), usage(2, "minutes")])
    before = engine.store.read_after(0, 10).column("state").to_pylist()
    request.getfixturevalue("usage_v2")
    engine.append([usage(3, "sessions")])
    engine.rebuild()
    metrics = engine.view.execute("SELECT metric FROM events ORDER BY position").fetchall()
    assert [m for (m,) in metrics] == ["sessions", "minutes", "sessions"]
    after = engine.store.read_after(0, 10).column("state").to_pylist()
    assert after[:2] == before  # the log was not rewritten
    assert b'"class_version":2' in after[2]
