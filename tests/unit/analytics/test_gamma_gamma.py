"""Gamma-Gamma spend model and discounted CLV."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from radar.analytics.models.bgnbd import BgNbdFit, fit_bgnbd, simulate_bgnbd
from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.gamma_gamma import (
    GammaGammaFit,
    customer_lifetime_value,
    fit_gamma_gamma,
    log_likelihood,
    simulate_gamma_gamma,
)

# Published Gamma-Gamma fit for the CDNOW sample (Fader, Hardie & Lee 2005), as generating truth.
TRUTH = (6.25, 3.74, 15.44)  # p, q, v


def test_density_equals_the_gamma_mixture_integrated_numerically() -> None:
    p, q, v = TRUTH
    for m_x, x in [(35.0, 1), (12.5, 3), (80.0, 10)]:

        def integrand(nu: float, m_x: float = m_x, x: int = x) -> float:
            # m_x | nu ~ Gamma(p x, rate nu x); nu ~ Gamma(q, rate v)
            return stats.gamma.pdf(m_x, a=p * x, scale=1 / (nu * x)) * stats.gamma.pdf(
                nu, a=q, scale=1 / v
            )

        dens, _ = integrate.quad(integrand, 0, np.inf, limit=200)
        got = log_likelihood(p, q, v, [m_x], [x])[0]
        assert got == pytest.approx(math.log(dens), rel=1e-6)


def test_density_equals_the_notes_formula_evaluated_directly() -> None:
    p, q, v = 2.0, 3.0, 10.0
    m_x, x = 7.5, 4
    direct = (
        math.gamma(p * x + q)
        / (math.gamma(p * x) * math.gamma(q))
        * v**q
        * m_x ** (p * x - 1)
        * x ** (p * x)
        / (v + m_x * x) ** (p * x + q)
    )
    assert log_likelihood(p, q, v, [m_x], [x])[0] == pytest.approx(math.log(direct), rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_fit_recovers_simulated_spend_parameters(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.geometric(0.3, 10_000).astype(float)
    m_x = simulate_gamma_gamma(x, *TRUTH, rng)
    fit = fit_gamma_gamma(m_x, x)
    assert fit.converged and fit.n_customers == 10_000
    assert fit.p == pytest.approx(TRUTH[0], rel=0.25)
    assert fit.q == pytest.approx(TRUTH[1], rel=0.15)
    assert fit.v == pytest.approx(TRUTH[2], rel=0.25)
    true_mean = TRUTH[0] * TRUTH[2] / (TRUTH[1] - 1)
    assert fit.population_mean_spend == pytest.approx(true_mean, rel=0.05)
    at_truth = log_likelihood(*TRUTH, m_x, x).sum()
    assert fit.log_likelihood >= at_truth
    assert abs(fit.frequency_spend_correlation) < 0.05


def test_customers_without_repeat_purchases_are_left_out_of_the_fit() -> None:
    rng = np.random.default_rng(4)
    x = rng.geometric(0.4, 3_000).astype(float) - 1  # includes zeros
    m_x = simulate_gamma_gamma(x, *TRUTH, rng)
    assert np.isnan(m_x[x == 0]).all()
    fit = fit_gamma_gamma(m_x, x)
    assert fit.n_customers == int((x > 0).sum())


def test_conditional_spend_shrinks_towards_the_population_mean() -> None:
    fit = GammaGammaFit(*TRUTH)
    pop = fit.population_mean_spend
    m_x = np.array([100.0, 100.0, 100.0, 10.0])
    x = np.array([1.0, 5.0, 50.0, 5.0])
    got = fit.conditional_expected_spend(m_x, x)
    p, q, v = TRUTH
    np.testing.assert_allclose(got, p * (v + x * m_x) / (p * x + q - 1))
    assert pop < got[0] < got[1] < got[2] < 100.0  # more transactions, more own weight
    assert 10.0 < got[3] < pop
    assert fit.conditional_expected_spend([np.nan], [0])[0] == pytest.approx(pop)


def test_conditional_spend_predicts_the_latent_mean_spend() -> None:
    rng = np.random.default_rng(9)
    p, q, v = TRUTH
    n = 40_000
    x = rng.geometric(0.3, n).astype(float)
    nu = rng.gamma(q, 1 / v, n)
    m_x = rng.gamma(p * x, 1 / nu) / x
    pred = GammaGammaFit(*TRUTH).conditional_expected_spend(m_x, x)
    latent = p / nu
    # within prediction deciles the mean latent spend equals the mean prediction (posterior mean)
    edges = np.quantile(pred, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(edges, pred, side="right") - 1, 0, 9)
    for k in range(10):
        sel = idx == k
        assert latent[sel].mean() == pytest.approx(pred[sel].mean(), rel=0.06)


def test_too_few_repeat_buyers_names_what_is_missing() -> None:
    with pytest.raises(InsufficientData, match="no repeat buyers"):
        fit_gamma_gamma([np.nan, np.nan], [0, 0])
    with pytest.raises(InsufficientData, match="need at least 2 customers with a repeat"):
        fit_gamma_gamma([20.0, np.nan], [2, 0])
    with pytest.raises(ValueError, match="m_x"):
        fit_gamma_gamma([20.0, -1.0], [2, 1])


BG = BgNbdFit(r=0.243, alpha=4.414, a=0.793, b=2.426)
GG = GammaGammaFit(*TRUTH)


def _slow_clv(
    x: float,
    tx: float,
    T: float,
    m: float,
    horizon: float,
    step: float,
    rate: float,
    margin: float,
) -> float:
    total, prev, t = 0.0, 0.0, 0.0
    while t < horizon - 1e-12:
        t = min(t + step, horizon)
        cum = BG.conditional_expected_purchases(t, [x], [tx], [T])[0]
        total += (cum - prev) * (1 + rate) ** (-t / (365.25 / 7))
        prev = cum
    return margin * GG.conditional_expected_spend([m], [x])[0] * total


def test_clv_equals_step_by_step_discounted_sum() -> None:
    x = np.array([0.0, 2.0, 7.0, 2.0])
    tx = np.array([0.0, 30.0, 35.0, 30.0])
    T = np.array([38.0, 38.0, 38.0, 38.0])
    m = np.array([np.nan, 25.0, 60.0, 25.0])
    out = customer_lifetime_value(
        BG, GG, x, tx, T, m, horizon=52.0, step=4.0, annual_discount_rate=0.15, margin=0.3
    )
    expected = [_slow_clv(*row, 52.0, 4.0, 0.15, 0.3) for row in zip(x, tx, T, m, strict=True)]
    np.testing.assert_allclose(out.clv, expected, rtol=1e-10)
    assert out.clv[1] == out.clv[3]
    np.testing.assert_allclose(
        out.expected_purchases, BG.conditional_expected_purchases(52.0, x, tx, T)
    )
    assert out.to_dict()["n_customers"] == 4


def test_clv_without_discount_is_expected_purchases_times_expected_spend() -> None:
    x, tx, T, m = [3.0], [20.0], [30.0], [40.0]
    out = customer_lifetime_value(BG, GG, x, tx, T, m, horizon=26.0, annual_discount_rate=0.0)
    expected = BG.conditional_expected_purchases(26.0, x, tx, T) * GG.conditional_expected_spend(
        m, x
    )
    np.testing.assert_allclose(out.clv, expected, rtol=1e-10)
    higher = customer_lifetime_value(BG, GG, x, tx, T, m, horizon=26.0, annual_discount_rate=0.3)
    assert higher.clv[0] < out.clv[0]


def test_clv_of_fitted_models_on_simulated_customers_is_finite_and_non_negative() -> None:
    rng = np.random.default_rng(2)
    n = 5_000
    sim = simulate_bgnbd(n, 0.243, 4.414, 0.793, 2.426, rng.uniform(27, 39, n), rng)
    m_x = simulate_gamma_gamma(sim.x, *TRUTH, rng)
    bg, gg = fit_bgnbd(sim.x, sim.t_x, sim.T), fit_gamma_gamma(m_x, sim.x)
    out = customer_lifetime_value(bg, gg, sim.x, sim.t_x, sim.T, m_x)
    assert out.clv.shape == (n,)
    assert np.all(out.clv >= 0) and np.all(np.isfinite(out.clv))
    # discounting only ever lowers the value below purchases x spend
    assert np.all(out.clv <= out.expected_purchases * out.expected_spend + 1e-9)
