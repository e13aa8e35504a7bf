"""The full path on simulated data — simulate → ingest → project → features → models — recovers
the simulator's known truth within stated tolerances.

Tolerances (2,000 customers, seed 7; each is several standard errors wide):

* k-means segments vs the latent segments: adjusted Rand index > 0.2 (chance: 0);
* BG/NBD: mean purchase rate r/α within 15 %, r within 25 %, mean dropout a/(a+b) within 25 %;
  Gamma-Gamma population mean spend p·v/(q−1) within 10 %;
* calibration/holdout: forecast purchase days within 15 % of the actual holdout purchase days;
* leads: holdout AUC > 0.65 (chance: 0.5);
* churn: given the latent segment, the Cox log hazard ratios of the contractual cancellation
  model lie within 3 standard errors of the truth, and the protective effects keep their sign;
* mix: each channel's conversions per send within 3 standard errors of the true effect;
* lifecycle: backtest mean absolute error of the stage shares < 0.03.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from conftest import SimulatedRadar
from sklearn.metrics import adjusted_rand_score

from radar.analytics import features as F
from radar.analytics.analyses import churn_frame
from radar.analytics.models.survival import analyse_churn
from radar.analytics.runner import AnalysisReport, run_analyses
from radar.engine import build_engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(simulated: SimulatedRadar) -> AnalysisReport:
    with build_engine(data_dir=simulated.folder, event_store=None) as engine:
        return run_analyses(engine, record=False, plots=False)


def metrics(report: AnalysisReport, name: str) -> dict[str, Any]:
    run = report.run(name)
    assert run.status == "completed", run.reason
    assert run.outcome is not None
    return run.outcome.metrics


def test_every_analysis_completes_on_a_simulated_history(report: AnalysisReport) -> None:
    assert [r.status for r in report.runs] == ["completed"] * 7, [r.reason for r in report.runs]


def test_kmeans_segments_agree_with_the_latent_segments(
    report: AnalysisReport, simulated: SimulatedRadar
) -> None:
    outcome = report.run("segments").outcome
    assert outcome is not None
    assigned = outcome.customers.memberships["kmeans"]
    joined = assigned.join(
        simulated.sim.customers.select("customer_id", pl.col("segment").alias("truth")),
        on="customer_id",
    )
    assert joined.height > 0.95 * simulated.sim.customers.height
    ari = adjusted_rand_score(joined["truth"].to_list(), joined["segment"].to_list())
    assert ari > 0.2


def test_clv_parameters_are_near_the_simulated_bgnbd_and_spend_truth(
    report: AnalysisReport, simulated: SimulatedRadar
) -> None:
    m = metrics(report, "clv")
    fit, truth = m["bgnbd"]["parameters"], simulated.sim.truth["bgnbd"]
    assert m["bgnbd"]["time_unit"] == "weeks"
    assert fit["r"] / fit["alpha"] == pytest.approx(truth["r"] / truth["alpha"], rel=0.15)
    assert fit["r"] == pytest.approx(truth["r"], rel=0.25)
    dropout = truth["a"] / (truth["a"] + truth["b"])
    assert fit["a"] / (fit["a"] + fit["b"]) == pytest.approx(dropout, rel=0.25)
    gg = simulated.sim.truth["gamma_gamma"]
    assert m["gamma_gamma"]["population_mean_spend"] == pytest.approx(
        gg["p"] * gg["v"] / (gg["q"] - 1), rel=0.10
    )


def test_clv_calibration_holdout_forecast_matches_the_holdout(report: AnalysisReport) -> None:
    check = metrics(report, "clv")["calibration"]
    assert check is not None
    assert check["actual_total"] > 0
    assert abs(check["relative_error_total"]) < 0.15


def test_lead_scores_rank_won_deals_above_lost_ones(report: AnalysisReport) -> None:
    m = metrics(report, "leads")
    assert m["n_test"] >= 20
    assert m["auc"] > 0.65


def test_cox_on_the_view_recovers_the_true_cancellation_hazard_ratios(
    simulated: SimulatedRadar,
) -> None:
    truth = simulated.sim.truth["cancellation"]["log_hazard_ratios"]
    with build_engine(data_dir=simulated.folder, event_store=None) as engine:
        snap = F.snapshot(engine.view)
        customers = F.customer_frame(engine.view, snap)
    frame = churn_frame(customers, "contractual").drop("segment")
    latent = simulated.sim.customers.select(
        "customer_id", pl.col("segment").alias("latent_segment")
    )
    frame = frame.join(latent, on="customer_id").with_columns(
        (pl.col("customer_type") == "business").alias("business"),
        *(
            (pl.col("latent_segment") == s).alias(f"segment_{s}")
            for s in ("bargain", "loyal", "premium")
        ),
    )
    covariates = ["business", "segment_bargain", "segment_loyal", "segment_premium"]
    result = analyse_churn(frame, covariates, as_of=snap.as_of)
    assert result.cox is not None
    ratios = {h.covariate: h for h in result.cox.hazard_ratios}
    for name in covariates:
        h = ratios[name]
        se = (math.log(h.ci_upper) - math.log(h.ci_lower)) / (2 * 1.96)
        assert abs(h.coef - truth[name]) < 3 * se, (name, h.coef, truth[name], se)
    assert ratios["business"].hazard_ratio < 1
    assert ratios["segment_loyal"].hazard_ratio < 1
    assert ratios["segment_bargain"].hazard_ratio > 1


def test_churn_predictions_rank_customers_who_cancel_soon_higher(
    report: AnalysisReport,
) -> None:
    m = metrics(report, "churn")
    assert m["cox"] is not None
    assert m["cox"]["concordance"] > 0.55
    assert 0 < m["predictions"]["mean_churn_probability"] < 1
    assert m["predictions"]["mean_expected_remaining_days"] > 0


def test_mix_recovers_the_conversion_effect_of_each_channel(
    report: AnalysisReport, simulated: SimulatedRadar
) -> None:
    effects = simulated.sim.truth["marketing_mix"]["effects"]
    coefs = {c["name"]: c for c in metrics(report, "mix")["conversions"]["coefficients"]}
    for channel, beta in effects.items():
        c = coefs[f"touches:{channel}"]
        assert abs(c["estimate"] - beta) < 3 * c["std_error"], (channel, c, beta)


def test_lifecycle_backtest_forecasts_stage_shares_closely(report: AnalysisReport) -> None:
    m = metrics(report, "lifecycle")
    assert m["backtest"] is not None
    assert m["backtest"]["mae_overall"] < 0.03
    q = m["transitions"]["q"]
    assert all(abs(sum(row) - 1) < 1e-9 for row in q)
