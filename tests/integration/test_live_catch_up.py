"""Small catch-ups of the live loop: prepared statements, and nothing read when nothing is new
(the copy of planned actions into the action queue: ``tests/service/test_service_live.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from factories import purchase

from radar.engine import Engine, build_engine


def _customers(e: Engine) -> list[tuple[Any, ...]]:
    return e.view.execute("SELECT * FROM customers ORDER BY customer_id").fetchall()


def test_small_catch_ups_before_and_after_a_rebuild_give_the_rows_a_rebuild_gives(
    engine: Engine, tmp_path: Path
) -> None:
    engine.append([purchase(i, f"C-{i % 7}", amount=float(i)) for i in range(40)])
    engine.project()
    for i in range(40, 44):  # one event per catch-up: the prepared statements of the projector
        engine.append([purchase(i, f"C-{i % 3}", amount=1.5)])
        assert engine.project().events == 1
    engine.rebuild()  # drops and recreates the tables the prepared statements read
    engine.append([purchase(44, "C-1", amount=2.0), purchase(45, "C-new", amount=3.0)])
    assert engine.project().events == 2
    other = build_engine(data_dir=tmp_path / "other", event_store=None)
    other._store = engine.store  # the same log, another view file
    other.rebuild()
    try:
        assert _customers(engine) == _customers(other)
    finally:
        other._store = None
        other.close()


def test_a_catch_up_with_nothing_new_reads_nothing_from_the_store(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.append([purchase(1)])
    engine.project()

    def read_after(position: int, limit: int) -> object:
        raise AssertionError("read with nothing new")

    monkeypatch.setattr(engine.store, "read_after", read_after)
    result = engine.project()
    assert (result.events, result.position) == (0, engine.store.max_position())
