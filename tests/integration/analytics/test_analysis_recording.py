"""Runs are recorded as events: analysis.completed per run, per-customer changes in bulk, and the
customer view shows the outcomes after projecting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import polars as pl
import pytest

from radar.analytics import features as F
from radar.analytics import recording
from radar.analytics.runner import run_analyses
from radar.engine import Engine

pytestmark = pytest.mark.slow


def radar_events(engine: Engine) -> pl.DataFrame:
    return engine.view.sql(
        "SELECT type, count(*) AS n FROM events WHERE source = 'radar.analytics' GROUP BY type"
    ).pl()


def test_a_run_records_each_analysis_and_the_view_shows_the_outcomes(
    fresh_engine: Callable[[], Engine],
) -> None:
    engine = fresh_engine()
    report = run_analyses(engine, plots=False)
    assert report.recorded and report.appended["accepted"] > 0
    runs = engine.view.sql(
        "SELECT analysis, version, run_id, as_of, view_position, parameters, metrics "
        "FROM events WHERE type = 'analysis.completed' ORDER BY analysis"
    ).pl()
    assert runs["analysis"].to_list() == sorted(r.analysis for r in report.runs)
    assert set(runs["view_position"].to_list()) == {report.view_position}
    assert set(runs["run_id"].to_list()) == {r.run_id for r in report.runs}
    filled = (
        engine.view.sql(
            "SELECT count(*) AS n, count(segment) AS segment, count(rfm_group) AS rfm_group, "
            "count(lifecycle_stage) AS stage, count(churn_risk) AS churn_risk, count(clv) AS clv, "
            "count(p_alive) AS p_alive, count(lead_score) AS lead_score FROM customers"
        )
        .pl()
        .row(0, named=True)
    )
    for column in ("segment", "rfm_group", "stage", "churn_risk", "clv", "p_alive"):
        assert filled[column] > 0.95 * filled["n"], column
    assert filled["lead_score"] > 0
    # per-customer outcomes equal what the run computed (segments: every customer)
    seg = report.run("segments").outcome
    assert seg is not None
    view = engine.view.sql("SELECT customer_id, segment AS viewed FROM customers").pl()
    both = seg.customers.memberships["kmeans"].join(view, on="customer_id")
    assert (both["segment"] == both["viewed"]).all()


def test_a_second_run_records_only_what_changed(fresh_engine: Callable[[], Engine]) -> None:
    engine = fresh_engine()
    run_analyses(engine, plots=False)
    before = radar_events(engine)
    again = run_analyses(engine, plots=False)
    after = radar_events(engine)
    # nothing new happened to the customers: only the seven runs themselves are new
    assert again.appended["accepted"] == 7
    assert again.run("segments").events == {"analysis.completed": 1}
    diff = after.join(before, on="type", suffix="_before")
    assert (
        diff.filter(pl.col("type") != "analysis.completed")
        .select((pl.col("n") == pl.col("n_before")).all())
        .item()
    )


def test_recording_the_same_run_again_stores_nothing_new(
    fresh_engine: Callable[[], Engine],
) -> None:
    engine = fresh_engine()
    snap = F.snapshot(engine.view)
    state = F.recorded_state(engine.view, snap)
    outcome = recording.CustomerOutcomes(
        scores={"clv": pl.DataFrame({"customer_id": ["C-000001", "C-000002"], "value": [1.0, 2.0]})}
    )
    lines, counts = recording.customer_event_lines("clv-test", snap, outcome, state)
    assert counts == {"score.changed": 2}
    first = recording.append_lines(engine, [lines["raw"]])
    second = recording.append_lines(engine, [lines["raw"]])
    assert first == {"accepted": 2, "duplicates": 0}
    assert second == {"accepted": 0, "duplicates": 2}


def test_segment_labels_stay_with_their_clusters_from_one_run_to_the_next(
    fresh_engine: Callable[[], Engine],
) -> None:
    engine = fresh_engine()
    earlier = run_analyses(engine, ["segments"], as_of=datetime(2025, 9, 1), plots=False)
    later = run_analyses(engine, ["segments"], plots=False)
    first, second = earlier.run("segments"), later.run("segments")
    assert first.outcome is not None and second.outcome is not None
    assert second.outcome.parameters["previous_run"] == first.run_id
    assert second.outcome.metrics["matched_to_previous"]
    # a label names the same kind of customer: matched centroids are close, and most customers
    # seen in both runs keep their label
    old = first.outcome.customers.memberships["kmeans"]
    new = second.outcome.customers.memberships["kmeans"]
    kept = old.join(new, on="customer_id", suffix="_new").select(
        (pl.col("segment") == pl.col("segment_new")).mean()
    )
    assert kept.item() > 0.6
    # the customers who moved left their old group and entered the new one, in that order
    moved = engine.view.sql(
        "SELECT count(*) FROM events WHERE type = 'segment.left' AND segmentation = 'kmeans'"
    ).fetchall()[0][0]
    assert moved == second.events.get("segment.left", 0)
    view = engine.view.sql("SELECT customer_id, segment AS viewed FROM customers").pl()
    both = new.join(view, on="customer_id")
    assert (both["segment"] == both["viewed"]).all()


def test_a_past_run_records_its_changes_at_its_as_of_moment(
    fresh_engine: Callable[[], Engine],
) -> None:
    engine = fresh_engine()
    moment = datetime(2025, 6, 30, 12, 0)
    report = run_analyses(engine, ["rfm"], as_of=moment, plots=False)
    assert report.explicit_as_of and report.as_of == moment
    stamps = engine.view.sql(
        "SELECT DISTINCT occurred_at FROM events WHERE source = 'radar.analytics'"
    ).fetchall()
    assert [F.naive_utc(s[0]) for s in stamps] == [moment]
