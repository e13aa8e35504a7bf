"""Which per-customer changes a run records: groups on change, scores beyond thresholds."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest

from radar.analytics.features import SCORE_NAMES, SEGMENTATIONS, Snapshot
from radar.analytics.recording import (
    THRESHOLDS,
    CustomerOutcomes,
    customer_event_lines,
    membership_changes,
    run_id_for,
    score_changes,
    stage_changes,
)
from radar.domain.envelope import parse_event


def state(rows: list[dict[str, object]]) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"customer_id": pl.String()}
    schema |= {f"segment_{s}": pl.String() for s in SEGMENTATIONS}
    schema |= {"lifecycle_stage": pl.String()} | {n: pl.Float64() for n in SCORE_NAMES}
    return pl.DataFrame(rows, schema=schema)


SNAP = Snapshot(datetime(2025, 6, 30, 12), view_position=42, explicit=True)


def test_a_customer_who_changes_group_leaves_the_old_one_and_enters_the_new_one() -> None:
    previous = state(
        [
            {"customer_id": "A", "segment_kmeans": "S1"},
            {"customer_id": "B", "segment_kmeans": "S2"},
            {"customer_id": "C", "segment_kmeans": "S2"},
        ]
    )
    new = pl.DataFrame({"customer_id": ["A", "B", "D"], "segment": ["S1", "S3", "S1"]})
    left, entered = membership_changes(new, previous, "kmeans")
    assert sorted(left.rows()) == [("B", "S2"), ("C", "S2")]
    assert sorted(entered.rows()) == [("B", "S3"), ("D", "S1")]


@pytest.mark.parametrize(
    ("name", "last", "value", "recorded"),
    [
        ("churn_risk", 0.30, 0.34, False),
        ("churn_risk", 0.30, 0.35, True),
        ("p_alive", 0.90, 0.80, True),
        ("lead_score", 60.0, 64.0, False),
        ("lead_score", 60.0, 65.0, True),
        ("clv", 200.0, 215.0, False),
        ("clv", 200.0, 221.0, True),
        ("clv", 0.2, 0.28, False),  # floor: 10 % of 1 currency unit, not of 0.2
        ("clv", 0.2, 0.31, True),
        ("clv", None, 0.5, True),  # never recorded: always recorded
    ],
)
def test_scores_are_recorded_only_when_they_move_beyond_their_threshold(
    name: str, last: float | None, value: float, recorded: bool
) -> None:
    previous = state([{"customer_id": "A", name: last}])
    new = pl.DataFrame({"customer_id": ["A"], "value": [value]})
    assert score_changes(new, previous, name).height == int(recorded)
    assert name in THRESHOLDS


def test_an_unchanged_stage_is_not_recorded_again() -> None:
    previous = state([{"customer_id": "A", "lifecycle_stage": "new"}])
    new = pl.DataFrame({"customer_id": ["A", "B"], "stage": ["new", "retained"]})
    assert stage_changes(new, previous).rows() == [("B", "retained", None)]


def test_recorded_events_are_valid_envelopes_with_deterministic_ids() -> None:
    outcomes = CustomerOutcomes(
        memberships={"rfm": pl.DataFrame({"customer_id": ["A"], "segment": ["champions"]})},
        scores={"lead_score": pl.DataFrame({"customer_id": ["A"], "value": [72.4]})},
        stages=pl.DataFrame({"customer_id": ["A"], "stage": ["retained"]}),
    )
    previous = state([{"customer_id": "A", "segment_rfm": "loyal", "lead_score": 50.0}])
    run_id = run_id_for("rfm", "1", SNAP, {"k": 1})
    assert run_id == run_id_for("rfm", "1", SNAP, {"k": 1}) != run_id_for("rfm", "1", SNAP, {})
    lines, counts = customer_event_lines(run_id, SNAP, outcomes, previous)
    assert counts == {
        "segment.left": 1,
        "segment.entered": 1,
        "score.changed": 1,
        "lifecycle.stage_changed": 1,
    }
    events = [parse_event(json.loads(raw)) for raw in lines["raw"]]
    assert [e.type for e in events][:2] == ["segment.left", "segment.entered"]
    assert {e.source for e in events} == {"radar.analytics"}
    assert {e.occurred_at.isoformat() for e in events} == {"2025-06-30T12:00:00+00:00"}
    ids = [e.event_id for e in events]
    assert len(set(ids)) == 4 and all(i and i.startswith(run_id + "/") for i in ids)
    score = next(e for e in events if e.type == "score.changed")
    assert score.data.model_dump()["value"] == 72 and score.data.model_dump()["previous"] == 50
