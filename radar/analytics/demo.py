"""The ``analyze`` step of ``radar demo``: run every analysis, record it, and hold it to the truth.

The step reports, besides counts, a few figures next to the simulator's ground truth: the
adjusted Rand index of the k-means segments against the latent segments, the fitted BG/NBD
``r, alpha, a, b`` against the simulated ones, and the lead model's holdout AUC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from radar.analytics.runner import AnalysisReport, run_analyses
from radar.engine import Engine
from radar.simulate import Simulation


def truth_check(report: AnalysisReport, sim: Simulation) -> dict[str, Any]:
    """Headline figures of ``report`` next to the simulation's truth (JSON-ready)."""
    from sklearn.metrics import adjusted_rand_score

    out: dict[str, Any] = {}
    runs = {r.analysis: r for r in report.runs if r.status == "completed" and r.outcome}
    seg = runs.get("segments")
    if seg is not None and seg.outcome is not None:
        assigned = seg.outcome.customers.memberships["kmeans"]
        joined = assigned.join(
            sim.customers.select("customer_id", pl.col("segment").alias("truth")), on="customer_id"
        )
        out["segments_ari"] = round(
            float(adjusted_rand_score(joined["truth"].to_list(), joined["segment"].to_list())), 3
        )
    clv = runs.get("clv")
    if clv is not None and clv.outcome is not None:
        fitted = clv.outcome.metrics["bgnbd"]["parameters"]
        truth = sim.truth["bgnbd"]
        out["bgnbd"] = " ".join(
            f"{k}={fitted[k]:.2f}(truth {truth[k]:g})" for k in ("r", "alpha", "a", "b")
        )
    leads = runs.get("leads")
    if leads is not None and leads.outcome is not None:
        auc = leads.outcome.metrics.get("auc")
        out["lead_auc"] = round(float(auc), 3) if auc is not None else None
    return out


def analyze_step(engine: Engine, sim: Simulation) -> dict[str, Any]:
    report = run_analyses(engine)
    skipped = [r.analysis for r in report.runs if r.status == "skipped"]
    return {
        "completed": sum(r.status == "completed" for r in report.runs),
        "skipped": ",".join(skipped) or "none",
        "events_recorded": report.appended.get("accepted", 0),
        **truth_check(report, sim),
    }


def demo_steps() -> list[tuple[str, Callable[[Engine, Simulation], dict[str, Any]]]]:
    return [("analyze", analyze_step)]
