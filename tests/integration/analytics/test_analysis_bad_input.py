"""Too little data for a model: the analysis is skipped with a message naming what is missing,
and the other analyses still run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from factories import purchase

from radar.analytics.runner import run_analyses
from radar.engine import Engine


def event(kind: str, i: int, customer: str, **data: Any) -> dict[str, Any]:
    ts = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=i)
    return {
        "event_id": f"{kind}-{customer}-{i}",
        "type": kind,
        "customer_id": customer,
        "occurred_at": ts.isoformat(),
        "source": "test",
        "data": data,
    }


def reasons(engine: Engine) -> dict[str, str | None]:
    report = run_analyses(engine, plots=False)
    return {r.analysis: r.reason for r in report.runs}


def test_an_empty_view_skips_every_analysis_saying_why(engine: Engine) -> None:
    report = run_analyses(engine, plots=False)
    assert [r.status for r in report.runs] == ["skipped"] * 7
    assert all("no operational events" in (r.reason or "") for r in report.runs)


def test_a_single_customer_is_too_few_for_segments_clv_and_churn(engine: Engine) -> None:
    engine.append([purchase(24 * i, customer="C-1", amount=10.0 + i) for i in range(5)])
    why = reasons(engine)
    assert why["rfm"] is None  # one customer can still be scored
    assert why["segments"] and "customers" in why["segments"]
    assert why["clv"] and "customer" in why["clv"]
    assert why["churn"] and "customers" in why["churn"]
    assert why["leads"] and "no leads" in why["leads"]
    assert why["mix"] and "campaign sends" in why["mix"]


def test_without_repeat_buyers_clv_is_skipped_and_the_others_still_run(engine: Engine) -> None:
    engine.append([purchase(i, customer=f"C-{i}", amount=5.0 * (i + 1)) for i in range(12)])
    report = run_analyses(engine, plots=False)
    status = {r.analysis: r for r in report.runs}
    assert status["clv"].status == "skipped"
    assert "no repeat buyers" in (status["clv"].reason or "")
    assert status["rfm"].status == "completed"
    assert status["segments"].status == "completed"
    # the completed ones were recorded, the skipped one was not
    runs = engine.view.sql(
        "SELECT analysis FROM events WHERE type = 'analysis.completed'"
    ).fetchall()
    assert ("clv",) not in runs and ("rfm",) in runs


def test_leads_without_outcomes_are_skipped_naming_the_missing_outcomes(engine: Engine) -> None:
    events = [purchase(i, customer=f"C-{i}") for i in range(3)]
    events += [event("lead.created", i, f"C-{i}", lead_id=f"L-{i}") for i in range(3)]
    engine.append(events)
    report = run_analyses(engine, ["leads"], plots=False)
    assert report.runs[0].status == "skipped"
    assert "no leads with a known outcome" in (report.runs[0].reason or "")
