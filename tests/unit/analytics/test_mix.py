"""Marketing-mix OLS and response rates."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.mix import (
    SingularDesign,
    marketing_mix,
    response_rates,
    touches_per_period,
    wilson_interval,
)

EFFECTS = {"touches:email": 0.02, "touches:phone": 0.15, "touches:letter": 0.05}
BASELINE = 40.0


def _periods(rng: np.random.Generator, n: int = 104) -> pl.DataFrame:
    touches = {
        "touches:email": rng.poisson(2_000, n).astype(float),
        "touches:phone": rng.poisson(150, n).astype(float),
        "touches:letter": rng.poisson(400, n).astype(float),
    }
    mean = BASELINE + sum(EFFECTS[c] * v for c, v in touches.items())
    return pl.DataFrame(
        {"period": np.arange(n), **touches, "conversions": mean + rng.normal(0, 5.0, n)}
    )


def test_regression_recovers_channel_effects_and_intervals_cover_the_truth() -> None:
    hits = dict.fromkeys(EFFECTS, 0)
    seeds = range(200)
    for seed in seeds:
        fit = marketing_mix(_periods(np.random.default_rng(seed)), "conversions")
        for name, truth in EFFECTS.items():
            c = fit.coefficient(name)
            hits[name] += c.ci_low <= truth <= c.ci_high
    for name in EFFECTS:
        assert 0.90 <= hits[name] / len(seeds) <= 0.99, (name, hits[name])


def test_estimates_and_inference_match_the_textbook_formulas() -> None:
    rng = np.random.default_rng(3)
    frame = _periods(rng, 60)
    fit = marketing_mix(frame, "conversions", list(EFFECTS))
    X = np.column_stack([np.ones(60), frame.select(list(EFFECTS)).to_numpy()])
    y = frame["conversions"].to_numpy()
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    resid = y - X @ beta
    sigma2 = resid @ resid / (60 - 4)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
    np.testing.assert_allclose([c.estimate for c in fit.coefficients], beta, rtol=1e-8)
    np.testing.assert_allclose([c.std_error for c in fit.coefficients], se, rtol=1e-8)
    r2 = 1 - resid @ resid / ((y - y.mean()) ** 2).sum()
    assert fit.r_squared == pytest.approx(r2)
    assert fit.adj_r_squared == pytest.approx(1 - (1 - r2) * 59 / 56)
    phone = fit.coefficient("touches:phone")
    assert phone.t == pytest.approx(phone.estimate / phone.std_error)
    assert phone.p_value == pytest.approx(2 * stats.t.sf(abs(phone.t), 56))
    half = stats.t.ppf(0.975, 56) * phone.std_error
    assert (phone.ci_low, phone.ci_high) == pytest.approx(
        (phone.estimate - half, phone.estimate + half)
    )
    assert fit.coefficients[0].name == "intercept"
    d = fit.to_dict()
    assert d["n_periods"] == 60 and len(d["coefficients"]) == 4


def test_a_driver_without_effect_is_not_significant_most_of_the_time() -> None:
    rejections = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        frame = _periods(rng, 50).with_columns(
            pl.Series("touches:sms", rng.poisson(300, 50).astype(float))
        )
        rejections += marketing_mix(frame, "conversions").coefficient("touches:sms").p_value < 0.05
    assert rejections <= 12


def test_fewer_periods_than_parameters_plus_two_is_insufficient() -> None:
    frame = _periods(np.random.default_rng(0), 5)  # 4 parameters need 6 periods
    with pytest.raises(InsufficientData, match=r"5 period.*need at least 6"):
        marketing_mix(frame, "conversions")
    marketing_mix(_periods(np.random.default_rng(0), 6), "conversions")


def test_singular_designs_name_the_offending_columns() -> None:
    frame = _periods(np.random.default_rng(0), 30)
    twice = frame.with_columns((pl.col("touches:email") * 2).alias("spend:email"))
    with pytest.raises(SingularDesign, match="spend:email"):
        marketing_mix(twice, "conversions")
    constant = frame.with_columns(pl.lit(5.0).alias("touches:fax"))
    with pytest.raises(SingularDesign, match="touches:fax"):
        marketing_mix(constant, "conversions")


def test_long_touch_rows_pivot_to_one_row_per_period_with_zeros_for_gaps() -> None:
    long = pl.DataFrame(
        {
            "period": [1, 1, 1, 2, 3],
            "channel": ["email", "email", "phone", "email", "phone"],
            "campaign": ["spring", "autumn", "spring", "spring", "spring"],
            "touches": [100, 50, 5, 80, 7],
            "spend": [10.0, 5.0, 30.0, 8.0, 42.0],
        }
    )
    wide = touches_per_period(long, value_cols=("touches", "spend"))
    assert wide["period"].to_list() == [1, 2, 3]
    assert wide["touches:email"].to_list() == [150.0, 80.0, 0.0]
    assert wide["spend:phone"].to_list() == [30.0, 0.0, 42.0]
    by_campaign = touches_per_period(long, by=("channel", "campaign"))
    assert by_campaign["touches:email/autumn"].to_list() == [50.0, 0.0, 0.0]


def test_wilson_interval_matches_the_known_value_and_covers_the_rate() -> None:
    low, high = wilson_interval([10], [100])
    assert low[0] == pytest.approx(0.0552, abs=5e-4)
    assert high[0] == pytest.approx(0.1744, abs=5e-4)
    rng = np.random.default_rng(0)
    k = rng.binomial(80, 0.07, 20_000)
    low, high = wilson_interval(k, np.full(k.size, 80))
    coverage = np.mean((low <= 0.07) & (high >= 0.07))
    assert 0.93 <= coverage <= 0.97


def test_response_rates_per_channel_and_approach() -> None:
    outcomes = pl.DataFrame(
        {
            "channel": ["email", "email", "phone", "letter"],
            "approach": ["discount", "discount", "advice", "advice"],
            "sent": [600, 400, 50, 0],
            "responded": [30, 20, 10, 0],
        }
    )
    res = response_rates(outcomes)
    rows = {(r["channel"], r["approach"]): r for r in res.rates.to_dicts()}
    email = rows[("email", "discount")]
    assert (email["sent"], email["responded"]) == (1000, 50)
    assert email["rate"] == pytest.approx(0.05)
    assert email["ci_low"] < 0.05 < email["ci_high"]
    assert rows[("phone", "advice")]["rate"] == pytest.approx(0.2)
    letter = res.to_dict()["rows"][1]
    assert letter["channel"] == "letter" and letter["rate"] is None
    with pytest.raises(ValueError, match="responded exceeds sent"):
        response_rates(outcomes.with_columns(pl.col("responded") * 100))
