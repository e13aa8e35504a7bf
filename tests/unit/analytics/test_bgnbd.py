"""BG/NBD: exact likelihood, parameter recovery, predictions, summary and holdout check."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import polars as pl
import pytest

from radar.analytics.models.bgnbd import (
    BgNbdFit,
    calibration_holdout,
    count_purchase_days,
    fit_bgnbd,
    log_likelihood,
    simulate_bgnbd,
    summarise_purchases,
)
from radar.analytics.models.errors import InsufficientData

TRUTH = (0.25, 4.0, 0.8, 2.5)  # r, alpha, a, b
# Published BG/NBD fit for the CDNOW sample (FHL 2005, weeks); used only as a generating truth.
CDNOW = (0.243, 4.414, 0.793, 2.426)  # r, alpha, a, b


def _slow_likelihood(
    r: float, alpha: float, a: float, b: float, x: int, tx: float, T: float
) -> float:
    """The paper's eq. (6) term by term, in plain floats (no log-space tricks)."""

    def beta(p: float, q: float) -> float:
        return math.gamma(p) * math.gamma(q) / math.gamma(p + q)

    common = math.gamma(r + x) * alpha**r / math.gamma(r)
    first = beta(a, b + x) / beta(a, b) * common / (alpha + T) ** (r + x)
    second = 0.0
    if x > 0:
        second = beta(a + 1, b + x - 1) / beta(a, b) * common / (alpha + tx) ** (r + x)
    return first + second


def test_log_likelihood_equals_the_papers_formula_evaluated_directly() -> None:
    rows = [(0, 0.0, 38.86), (1, 30.43, 38.86), (2, 1.71, 38.86), (5, 20.0, 25.5), (12, 30.0, 31.0)]
    x, tx, T = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    got = log_likelihood(*CDNOW, x, tx, T)
    expected = [math.log(_slow_likelihood(*CDNOW, *row)) for row in rows]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_log_likelihood_stays_finite_for_very_frequent_buyers() -> None:
    ll = log_likelihood(0.25, 4.0, 0.8, 2.5, [400.0], [51.0], [52.0])
    assert np.isfinite(ll).all()


@pytest.mark.parametrize("seed", [11, 12])
def test_fit_recovers_parameters_of_simulated_customers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    sim = simulate_bgnbd(n, *TRUTH, rng.uniform(52.0, 78.0, n), rng)
    fit = fit_bgnbd(sim.x, sim.t_x, sim.T)
    assert fit.converged
    assert fit.n_customers == n
    assert fit.n_repeat_buyers == int((sim.x > 0).sum())
    # tolerances: r, alpha within 10 %; a, b (dropout, weakly identified) within 25 %
    assert fit.r == pytest.approx(TRUTH[0], rel=0.10)
    assert fit.alpha == pytest.approx(TRUTH[1], rel=0.10)
    assert fit.a == pytest.approx(TRUTH[2], rel=0.25)
    assert fit.b == pytest.approx(TRUTH[3], rel=0.25)


def test_fitted_parameters_score_at_least_as_well_as_the_truth() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    sim = simulate_bgnbd(n, *CDNOW, rng.uniform(27.0, 39.0, n), rng)
    fit = fit_bgnbd(sim.x, sim.t_x, sim.T)
    at_truth = log_likelihood(*CDNOW, sim.x, sim.t_x, sim.T).sum()
    at_fit = log_likelihood(fit.r, fit.alpha, fit.a, fit.b, sim.x, sim.t_x, sim.T).sum()
    assert at_fit >= at_truth
    assert fit.log_likelihood == pytest.approx(at_fit, rel=1e-9)


def test_merging_identical_rows_gives_the_same_fit_as_weights() -> None:
    rng = np.random.default_rng(5)
    sim = simulate_bgnbd(3_000, *TRUTH, 52.0, rng)
    # round times to days, as purchase-day data are: many rows become identical
    tx, T = np.round(sim.t_x * 7) / 7, np.round(sim.T * 7) / 7
    full = fit_bgnbd(sim.x, tx, T)
    keys, counts = np.unique(np.column_stack([sim.x, tx, T]), axis=0, return_counts=True)
    weighted = fit_bgnbd(keys[:, 0], keys[:, 1], keys[:, 2], weights=counts)
    assert len(keys) < 3_000
    for name in ("r", "alpha", "a", "b"):
        assert getattr(weighted, name) == pytest.approx(getattr(full, name), rel=1e-5)


def test_p_alive_is_one_without_repeat_purchases_and_falls_as_last_purchase_recedes() -> None:
    fit = BgNbdFit(*CDNOW)
    assert fit.p_alive([0, 0], [0.0, 0.0], [10.0, 39.0]).tolist() == [1.0, 1.0]
    t_x = np.array([38.0, 30.0, 20.0, 10.0, 2.0])
    p = fit.p_alive(np.full(5, 3.0), t_x, np.full(5, 39.0))
    assert np.all((p > 0) & (p < 1))
    assert np.all(np.diff(p) < 0)
    # direct formula for one row
    r, alpha, a, b = CDNOW
    direct = 1 / (1 + a / (b + 3 - 1) * ((alpha + 39) / (alpha + 20)) ** (r + 3))
    assert p[2] == pytest.approx(direct, rel=1e-12)


def _eq10_mpmath(fit: BgNbdFit, t: float, x: int, tx: float, T: float) -> float:
    mp = pytest.importorskip("mpmath")
    with mp.workdps(50):
        r, alpha, a, b = (mp.mpf(v) for v in (fit.r, fit.alpha, fit.a, fit.b))
        hyp = mp.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        den = 1 + (a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x) if x > 0 else 0)
        return float(num / den)


@pytest.mark.parametrize(
    ("x", "tx", "T", "t"),
    [
        (0, 0.0, 38.86, 39.0),
        (2, 30.43, 38.86, 39.0),
        (7, 35.0, 38.86, 52.0),
        (40, 50.0, 52.0, 104.0),
        (150, 51.5, 52.0, 260.0),
    ],
)
def test_conditional_expectation_matches_the_papers_equation_in_high_precision(
    x: int, tx: float, T: float, t: float
) -> None:
    fit = BgNbdFit(*CDNOW)
    got = fit.conditional_expected_purchases(t, [x], [tx], [T])[0]
    assert got == pytest.approx(_eq10_mpmath(fit, t, x, tx, T), rel=1e-8)


def test_unconditional_expectation_matches_eq_9_and_simulation() -> None:
    fit = BgNbdFit(*TRUTH)
    t = np.array([1.0, 13.0, 52.0, 104.0])
    got = fit.expected_purchases(t)
    r, alpha, a, b = TRUTH
    mp = pytest.importorskip("mpmath")
    eq9 = [
        float(
            (a + b - 1)
            / (a - 1)
            * (1 - (alpha / (alpha + s)) ** r * mp.hyp2f1(r, b, a + b - 1, s / (alpha + s)))
        )
        for s in t
    ]
    np.testing.assert_allclose(got, eq9, rtol=1e-9)
    sim = simulate_bgnbd(200_000, *TRUTH, 52.0, np.random.default_rng(0))
    assert sim.x.mean() == pytest.approx(got[2], rel=0.03)


def test_expected_purchases_are_continuous_through_a_equal_one() -> None:
    values = [
        BgNbdFit(r=0.5, alpha=3.0, a=a, b=2.0).expected_purchases([26.0])[0]
        for a in (1.0 - 1e-4, 1.0, 1.0 + 1e-4)
    ]
    assert np.isfinite(values).all()
    assert max(values) - min(values) < 1e-3 * values[1]


def test_holdout_forecast_matches_simulated_future_purchases() -> None:
    rng = np.random.default_rng(21)
    n = 20_000
    sim = simulate_bgnbd(n, *CDNOW, rng.uniform(27.0, 39.0, n), rng, holdout=39.0)
    fit = fit_bgnbd(sim.x, sim.t_x, sim.T)
    check = calibration_holdout(fit, sim.x, sim.t_x, sim.T, sim.x_holdout, 39.0)
    assert check.forecast_total == pytest.approx(check.actual_total, rel=0.05)
    by_x = check.by_x
    assert by_x["customers"].sum() == n
    assert by_x["bucket"].to_list()[-1] == "7+"
    # per bucket the forecast mean follows the actual mean (buckets with enough customers)
    big = by_x.filter(pl.col("customers") >= 500)
    np.testing.assert_allclose(big["forecast_mean"], big["actual_mean"], rtol=0.15, atol=0.05)
    d = check.to_dict()
    assert d["time_unit"] == "weeks" and len(d["by_x"]) == by_x.height


def test_too_little_data_names_what_is_missing() -> None:
    with pytest.raises(InsufficientData, match="need at least 2 customers"):
        fit_bgnbd([3], [10.0], [20.0])
    with pytest.raises(InsufficientData, match="no repeat buyers"):
        fit_bgnbd([0, 0, 0], [0.0, 0.0, 0.0], [5.0, 6.0, 7.0])


def test_inconsistent_summary_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValueError, match="t_x"):
        fit_bgnbd([1, 2], [30.0, 5.0], [20.0, 20.0])
    with pytest.raises(ValueError, match="x:"):
        fit_bgnbd([1.5, 2], [3.0, 5.0], [20.0, 20.0])


def test_summary_counts_purchase_days_not_orders() -> None:
    d = date
    purchases = pl.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B", "C", "C"],
            "purchase_day": [
                d(2025, 1, 1),
                d(2025, 1, 1),
                d(2025, 1, 15),
                d(2025, 2, 12),
                d(2025, 1, 8),
                d(2025, 2, 1),
                d(2025, 3, 1),
            ],
            "amount": [10.0, 5.0, 20.0, 40.0, 7.0, 9.0, 99.0],
        }
    )
    out = summarise_purchases(purchases, d(2025, 2, 19), amount_col="amount")
    rows = {r["customer_id"]: r for r in out.to_dicts()}
    assert set(rows) == {"A", "B", "C"}  # C's second purchase is after as_of
    assert rows["A"]["x"] == 2  # three purchase days, the first two orders share a day
    assert rows["A"]["t_x"] == pytest.approx(6.0)  # 42 days
    assert rows["A"]["T"] == pytest.approx(7.0)  # 49 days
    assert rows["A"]["first_amount"] == pytest.approx(15.0)
    assert rows["A"]["monetary"] == pytest.approx(30.0)  # (20 + 40) / 2 repeat days
    assert rows["B"]["x"] == 0 and rows["B"]["t_x"] == 0 and rows["B"]["monetary"] is None
    assert rows["C"]["x"] == 0 and rows["C"]["T"] == pytest.approx(18 / 7)
    days = summarise_purchases(purchases, d(2025, 2, 19), time_unit="days")
    assert days.filter(pl.col("customer_id") == "A")["T"].item() == pytest.approx(49.0)
    hold = count_purchase_days(purchases, d(2025, 1, 31), d(2025, 3, 31))
    assert dict(hold.iter_rows()) == {"A": 1, "C": 2}


def test_fit_result_serialises_parameters_with_time_unit() -> None:
    rng = np.random.default_rng(8)
    sim = simulate_bgnbd(2_000, *TRUTH, 52.0, rng)
    d = fit_bgnbd(sim.x, sim.t_x, sim.T, time_unit="weeks").to_dict()
    assert d["time_unit"] == "weeks"
    assert set(d["parameters"]) == {"r", "alpha", "a", "b"}
    assert d["converged"] is True and d["n_customers"] == 2_000
    assert math.isfinite(d["log_likelihood"])
