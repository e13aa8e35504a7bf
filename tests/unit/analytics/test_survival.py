"""Churn survival: KM and Cox recover simulated truth; churn definitions build (duration, event)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.survival import (
    ChurnDefinition,
    analyse_churn,
    fit_cox,
    kaplan_meier,
    median_survival,
    survival_data,
)
from radar.analytics.models.synthetic import simulate_survival

LOG_HR = {"spend": 0.5, "is_member": -0.7, "noise": 0.0}
SCALE = 365.0


@pytest.mark.parametrize("shape", [1.0, 1.6])
def test_cox_recovers_simulated_hazard_ratios(shape: float) -> None:
    data = simulate_survival(6000, LOG_HR, shape=shape, baseline_scale_days=SCALE, seed=1)
    model = fit_cox(data, list(LOG_HR))
    by_name = {h.covariate: h for h in model.hazard_ratios}
    for name, beta in LOG_HR.items():
        h = by_name[name]
        assert h.hazard_ratio == pytest.approx(math.exp(beta), rel=0.15)
        # within three standard errors (the 95 % CI is ±1.96 SE on the log scale)
        se = (math.log(h.ci_upper) - math.log(h.ci_lower)) / (2 * 1.96)
        assert abs(h.coef - beta) < 3 * se, (name, h)
    assert by_name["spend"].p_value < 1e-6 and by_name["noise"].p_value > 0.001
    assert 0.6 < model.concordance < 0.8
    assert model.n_events == int(data["event"].sum())


def test_cox_fits_a_sample_of_large_data_and_still_recovers_hazard_ratios() -> None:
    data = simulate_survival(6000, LOG_HR, seed=2)
    model = fit_cox(data, list(LOG_HR), max_fit_rows=3000, seed=1)
    assert model.n_fit == 3000 and model.n_customers == 6000
    assert any("sample" in n for n in model.notes)
    spend = next(h for h in model.hazard_ratios if h.covariate == "spend")
    assert spend.hazard_ratio == pytest.approx(math.exp(0.5), rel=0.15)


def test_kaplan_meier_matches_the_true_exponential_survival_curve() -> None:
    data = simulate_survival(5000, {}, baseline_scale_days=SCALE, censor_after_days=900, seed=3)
    curves = kaplan_meier(data)
    assert set(curves["group"].unique()) == {"all"}
    t = curves["t"].to_numpy()
    for at in (60.0, 180.0, 365.0, 600.0):
        row = curves.row(int(np.searchsorted(t, at, side="right")) - 1, named=True)
        truth = math.exp(-at / SCALE)
        assert row["survival"] == pytest.approx(truth, abs=0.03)
        assert row["ci_lower"] - 0.01 <= truth <= row["ci_upper"] + 0.01
    assert median_survival(curves)["all"] == pytest.approx(SCALE * math.log(2), rel=0.1)


def test_kaplan_meier_per_group_separates_groups_with_different_hazards() -> None:
    data = simulate_survival(4000, {"is_member": -0.7}, seed=4).with_columns(
        pl.when(pl.col("is_member") > 0)
        .then(pl.lit("member"))
        .otherwise(pl.lit("guest"))
        .alias("segment")
    )
    curves = kaplan_meier(data, "segment")
    assert set(curves["group"].unique()) == {"all", "member", "guest"}
    medians = median_survival(curves)
    ratio = medians["member"] / medians["guest"]  # type: ignore[operator]
    assert ratio == pytest.approx(math.exp(0.7), rel=0.15)  # exponential: median ∝ 1/hazard
    first = curves.filter(pl.col("group") == "member").row(0, named=True)
    assert first["at_risk"] == data.filter(pl.col("segment") == "member").height


def test_churn_risk_and_remaining_lifetime_match_the_exponential_truth() -> None:
    data = simulate_survival(
        6000, {"spend": 0.5}, baseline_scale_days=SCALE, censor_after_days=3000, seed=5
    )
    model = fit_cox(data, ["spend"])
    people = pl.DataFrame(
        {"customer_id": ["a", "b", "c"], "age_days": [30.0, 200.0, 400.0], "spend": [-1.0, 0, 1.5]}
    )
    pred = model.predict(people, horizon_days=90, lifetime_horizon_days=365)
    for row in pred.iter_rows(named=True):
        rate = math.exp(0.5 * {"a": -1.0, "b": 0.0, "c": 1.5}[row["customer_id"]]) / SCALE
        assert row["churn_probability"] == pytest.approx(1 - math.exp(-90 * rate), abs=0.03)
        restricted_mean = (1 - math.exp(-rate * 365)) / rate
        assert row["expected_remaining_days"] == pytest.approx(restricted_mean, rel=0.06)
        assert not row["beyond_follow_up"]


def test_predictions_skip_churned_customers_and_flag_ages_beyond_follow_up() -> None:
    data = simulate_survival(800, {"spend": 0.5}, censor_after_days=400, seed=6)
    model = fit_cox(data, ["spend"])
    aged = data.with_columns(pl.col("duration").alias("age_days"))
    pred = model.predict(aged)
    assert pred.height == data.filter(~pl.col("event")).height
    assert pred["churn_probability"].is_between(0, 1).all()
    old = model.predict(pl.DataFrame({"customer_id": ["x"], "age_days": [5000.0], "spend": [0.0]}))
    assert old["beyond_follow_up"][0]


AS_OF = datetime(2025, 1, 1)


def _customers() -> pl.DataFrame:
    day = timedelta(days=1)
    return pl.DataFrame(
        {
            "customer_id": [
                "cancelled",
                "cancel_later",
                "contract_ok",
                "lapsed",
                "active",
                "fresh",
            ],
            "first_seen": [AS_OF - 1000 * day] * 5 + [AS_OF - 30 * day],
            "last_activity": [
                AS_OF - 400 * day,
                AS_OF - 10 * day,
                AS_OF - 500 * day,
                AS_OF - 300 * day,
                AS_OF - 100 * day,
                AS_OF - 5 * day,
            ],
            "cancelled_at": [AS_OF - 400 * day, AS_OF + 5 * day, None, None, None, None],
            "contractual": [True, True, True, False, False, False],
            "as_of": [AS_OF] * 6,
            "segment": ["a", "a", "b", "b", "a", "b"],
        }
    )


def test_churn_definition_builds_duration_and_event_for_both_kinds_of_customer() -> None:
    data = survival_data(_customers(), ChurnDefinition(inactivity_days=180))
    rows = {r["customer_id"]: r for r in data.iter_rows(named=True)}
    assert rows["cancelled"]["event"] and rows["cancelled"]["duration"] == pytest.approx(600)
    assert rows["cancelled"]["churn_kind"] == "cancelled"
    # cancellation after as_of is not known as of then; contracts are censored at as_of
    assert not rows["cancel_later"]["event"] and rows["cancel_later"]["duration"] == 1000
    assert not rows["contract_ok"]["event"] and rows["contract_ok"]["duration"] == 1000
    # inactive longer than 180 days: churned at the last activity
    assert rows["lapsed"]["event"] and rows["lapsed"]["duration"] == pytest.approx(700)
    assert rows["lapsed"]["churn_kind"] == "inactive"
    # still active: censored at as_of - 180 days, the last moment churn could have been observed
    assert not rows["active"]["event"] and rows["active"]["duration"] == pytest.approx(820)
    assert not rows["fresh"]["event"] and rows["fresh"]["duration"] == 0
    assert rows["fresh"]["age_days"] == pytest.approx(30)
    assert rows["active"]["segment"] == "a"  # other columns pass through


def test_inactivity_days_is_a_configurable_setting() -> None:
    strict = survival_data(_customers(), ChurnDefinition(inactivity_days=90))
    active = strict.filter(pl.col("customer_id") == "active").row(0, named=True)
    assert active["event"] and active["duration"] == pytest.approx(900)
    assert ChurnDefinition().to_dict() == {
        "contractual_event": "contract.cancelled",
        "inactivity_days": 180,
    }


def test_as_of_argument_overrides_and_drops_customers_not_yet_seen() -> None:
    data = survival_data(_customers().drop("as_of"), as_of=AS_OF - timedelta(days=100))
    assert "fresh" not in data["customer_id"].to_list()
    cancel_later = data.filter(pl.col("customer_id") == "cancel_later").row(0, named=True)
    assert not cancel_later["event"] and cancel_later["duration"] == pytest.approx(900)


def test_analyse_churn_gives_curves_model_predictions_and_json() -> None:
    sim = simulate_survival(1500, {"spend": 0.5}, seed=7)
    first = datetime(2022, 1, 1)
    customers = sim.select(
        "customer_id",
        "spend",
        pl.lit(first).alias("first_seen"),
        (pl.lit(first) + pl.duration(days=pl.col("duration"))).alias("last_activity"),
        pl.when(pl.col("event"))
        .then(pl.lit(first) + pl.duration(days=pl.col("duration")))
        .alias("cancelled_at"),
        pl.lit(True).alias("contractual"),
        (pl.lit(first) + pl.duration(days=pl.col("duration") + 0.5)).alias("as_of"),
        pl.when(pl.col("spend") > 0).then(pl.lit("high")).otherwise(pl.lit("low")).alias("seg"),
    )
    result = analyse_churn(customers, ["spend"], group_column="seg")
    assert result.cox is not None and result.predictions is not None
    assert result.n_churned == int(sim["event"].sum())
    out = json.loads(json.dumps(result.to_dict()))
    assert out["definition"]["inactivity_days"] == 180
    assert {g["group"] for g in out["kaplan_meier"]} == {"all", "high", "low"}
    assert out["cox"]["hazard_ratios"][0]["covariate"] == "spend"
    assert out["predictions"]["n"] == result.predictions.height


def test_a_single_customer_is_insufficient_data() -> None:
    one = simulate_survival(1, {"spend": 0.5}, seed=8)
    with pytest.raises(InsufficientData, match="at least 2 customers"):
        kaplan_meier(one)
    with pytest.raises(InsufficientData, match="at least 10 customers"):
        fit_cox(one, ["spend"])


def test_no_observed_churn_is_insufficient_data_for_cox_but_not_for_curves() -> None:
    data = simulate_survival(200, {"spend": 0.5}, seed=9).with_columns(pl.lit(False).alias("event"))
    with pytest.raises(InsufficientData, match="observed churns"):
        fit_cox(data, ["spend"])
    curves = kaplan_meier(data)
    assert curves["survival"].min() == 1.0


def test_missing_columns_are_named() -> None:
    with pytest.raises(InsufficientData, match="cancelled_at"):
        survival_data(_customers().drop("cancelled_at"))
