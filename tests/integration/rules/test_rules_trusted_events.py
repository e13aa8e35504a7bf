"""Decision events (``actions.decided``) go through the trusted (typed-frame) path; they must be
exactly what the validating path would store for the same public envelopes."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from rules_wiring_data import RULES, write_rules

from radar.domain.envelope import parse_event
from radar.engine import Engine, build_engine
from radar.ingest.pipeline import raw_table
from radar.rules.apply import (
    decision_frame,
    decision_lines,
    decision_point,
    load_rules,
    plan_at,
)


def _states(engine: Engine, types: tuple[str, ...]) -> dict[str, dict[str, object]]:
    table = engine.store.read_after(0, 100_000)
    out = {}
    for raw in table.column("state").to_pylist():
        state = json.loads(raw)
        if state["type"] in types:
            state.pop("timestamp")
            out[state["event_id"]] = state
    return out


def test_trusted_decision_events_equal_validated_ones(loaded: Engine, tmp_path: Path) -> None:
    ruleset = load_rules(write_rules(tmp_path / "rules", RULES))
    point = decision_point(loaded.view)
    decisions = plan_at(loaded.view, ruleset, point, history=None)
    frame = decision_frame(loaded.view, ruleset, point, run_id="r", history=None)
    lines = decision_lines(frame)
    for line in lines.to_list():  # every public envelope fits the catalogue
        parse_event(json.loads(line))
    with (
        build_engine(data_dir=tmp_path / "a") as trusted,
        build_engine(data_dir=tmp_path / "b") as checked,
    ):
        trusted.ingestor.commit(trusted.ingestor.prepare_trusted(frame))
        checked.ingestor.ingest_raw(raw_table(enumerate(lines.to_list(), 1)))
        kinds = ("actions.decided",)
        assert _states(trusted, kinds) == _states(checked, kinds)
        stored = _states(trusted, kinds).values()
        assert sum(len(s["data"]["decisions"]["customer_id"]) for s in stored) == decisions.height
        rows = (
            "SELECT * EXCLUDE (recorded_at) FROM events WHERE type LIKE 'action.%' "
            "ORDER BY event_id"
        )
        trusted.project()
        checked.project()
        assert trusted.view.sql(rows).fetchall() == checked.view.sql(rows).fetchall()
        assert len(trusted.view.sql(rows).fetchall()) == decisions.height


def test_the_trusted_path_refuses_operational_types_and_broken_envelopes(engine: Engine) -> None:
    from datetime import UTC, datetime

    row = {
        "event_id": "x",
        "type": "purchase",
        "customer_id": "C-1",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "source": "radar",
        "channel": "web",
        "direction": None,
        "data": "{}",
    }
    with pytest.raises(ValueError, match="not written by radar"):
        engine.ingestor.prepare_trusted(pl.DataFrame([row]))
    planned = {**row, "type": "action.planned", "channel": None}
    with pytest.raises(ValueError, match="channel missing"):
        engine.ingestor.prepare_trusted(pl.DataFrame([planned]))
