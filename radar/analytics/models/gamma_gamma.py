"""Gamma-Gamma model of spend per transaction, and discounted CLV with BG/NBD.

References: P. S. Fader, B. G. S. Hardie, K. L. Lee, "RFM and CLV: using iso-value curves for
customer base analysis", Journal of Marketing Research 42(4), 2005; P. S. Fader, B. G. S. Hardie,
"The Gamma-Gamma model of monetary value", 2013 (note).

The story: a customer's spend per transaction is ``z ~ Gamma(p, rate ν)`` (mean ``p/ν``), and
``ν ~ Gamma(q, rate v)`` across customers (``v`` is the note's ``γ``). Observed per customer is
``m_x``, the mean spend over ``x`` repeat transactions (purchase days); the model assumes spend
is independent of the purchase process, which :class:`GammaGammaFit` reports as a check.

Density of ``m_x`` (the note, eq. 3)::

    f(m_x | p, q, v; x) = Γ(px+q) / (Γ(px) Γ(q)) · v^q · m_x^(px-1) · x^(px) / (v + x m_x)^(px+q)

Conditional expected spend per transaction (the note, eq. 5)::

    E[M | p, q, v, m_x, x] = p (v + x m_x) / (px + q - 1)
                           = (q-1)/(px+q-1) · pv/(q-1) + px/(px+q-1) · m_x

a weighted average of the population mean ``pv/(q-1)`` (needs ``q > 1``) and the customer's own
mean. Everything here is pure: arrays in, frozen dataclasses out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from radar.analytics.models.bgnbd import BgNbdFit, maximise_on_log_scale, validate_summary
from radar.analytics.models.errors import InsufficientData

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: Time units per year, to turn an annual discount rate into a per-step factor.
UNITS_PER_YEAR: dict[str, float] = {"days": 365.25, "weeks": 365.25 / 7.0, "months": 12.0}

_LOG_BOUND = 20.0


def _as_float_array(values: ArrayLike, name: str) -> FloatArray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a one-dimensional array, got shape {arr.shape}")
    return arr


def _validate_spend(m_x: ArrayLike, x: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Check ``(m_x, x)`` for the Gamma-Gamma fit: ``x`` whole numbers >= 1, ``m_x > 0``."""
    ma = _as_float_array(m_x, "m_x")
    xa = _as_float_array(x, "x")
    if ma.shape != xa.shape:
        raise ValueError(f"m_x, x: lengths differ ({ma.size} vs {xa.size})")
    if not (np.all(np.isfinite(ma)) and np.all(np.isfinite(xa))):
        raise ValueError("m_x, x: contain NaN or infinite values")
    if np.any(xa < 1) or np.any(xa != np.round(xa)):
        raise ValueError("x: repeat purchase counts must be whole numbers >= 1")
    if np.any(ma <= 0):
        raise ValueError("m_x: mean spend per repeat purchase must be > 0")
    return ma, xa


def log_likelihood(p: float, q: float, v: float, m_x: ArrayLike, x: ArrayLike) -> FloatArray:
    """Per-customer log density of the mean spend ``m_x`` over ``x`` transactions (see module)."""
    ma, xa = _validate_spend(m_x, x)
    if min(p, q, v) <= 0:
        raise ValueError("p, q, v: parameters must be positive")
    px = p * xa
    out: FloatArray = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * math.log(v)
        + (px - 1.0) * np.log(ma)
        + px * np.log(xa)
        - (px + q) * np.log(v + xa * ma)
    )
    return out


def _ll_and_grad(
    params: FloatArray,
    ux: FloatArray,
    inv: npt.NDArray[np.intp],
    log_m: FloatArray,
    xm: FloatArray,
) -> tuple[float, FloatArray]:
    """Summed log-likelihood and gradient w.r.t. ``(p, q, v)``; x-only terms per distinct x."""
    p, q, v = params
    px_u = p * ux
    lnx_u = np.log(ux)
    c_u = gammaln(px_u + q) - gammaln(px_u) + px_u * lnx_u
    psi_pxq_u = digamma(px_u + q)
    dp_u = ux * (psi_pxq_u - digamma(px_u) + lnx_u)
    x = ux[inv]
    px = px_u[inv]
    ln_vxm = np.log(v + xm)
    ll = (
        c_u[inv].sum()
        + log_m.size * (q * math.log(v) - gammaln(q))
        + ((px - 1.0) * log_m).sum()
        - ((px + q) * ln_vxm).sum()
    )
    g_p = dp_u[inv].sum() + (x * (log_m - ln_vxm)).sum()
    g_q = psi_pxq_u[inv].sum() + log_m.size * (math.log(v) - digamma(q)) - ln_vxm.sum()
    g_v = log_m.size * q / v - ((px + q) / (v + xm)).sum()
    return float(ll), np.array([g_p, g_q, g_v])


@dataclass(frozen=True)
class GammaGammaFit:
    """Fitted Gamma-Gamma parameters ``p, q, v`` (spend in the currency of the input)."""

    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    iterations: int = 0
    message: str = ""
    frequency_spend_correlation: float = float("nan")
    at_bound: tuple[str, ...] = field(default_factory=tuple)

    @property
    def population_mean_spend(self) -> float:
        """``E[Z] = p v / (q - 1)``; infinite when ``q <= 1``."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters and fit metrics."""
        mean = self.population_mean_spend
        return {
            "model": "gamma_gamma",
            "parameters": {"p": self.p, "q": self.q, "v": self.v},
            "population_mean_spend": mean if math.isfinite(mean) else None,
            "log_likelihood": self.log_likelihood,
            "n_customers": self.n_customers,
            "converged": self.converged,
            "iterations": self.iterations,
            "message": self.message,
            "frequency_spend_correlation": (
                self.frequency_spend_correlation
                if math.isfinite(self.frequency_spend_correlation)
                else None
            ),
            "at_bound": list(self.at_bound),
        }

    def conditional_expected_spend(self, m_x: ArrayLike, x: ArrayLike) -> FloatArray:
        """E[M | m_x, x] = p (v + x m_x) / (p x + q - 1); for ``x = 0`` the population mean.

        ``m_x`` is ignored where ``x == 0`` (it may be NaN there). Raises ``ValueError`` when
        ``q <= 1`` (the model's mean spend is then infinite).
        """
        if self.q <= 1.0:
            raise ValueError(f"gamma_gamma: q = {self.q:.4g} <= 1, the expected spend is infinite")
        xa = _as_float_array(x, "x")
        ma = _as_float_array(m_x, "m_x")
        ma, xa = np.broadcast_arrays(ma, xa)
        if np.any(xa < 0):
            raise ValueError("x: repeat purchase counts must be >= 0")
        mx = np.where(xa > 0, np.nan_to_num(ma, nan=0.0), 0.0)
        out: FloatArray = self.p * (self.v + xa * mx) / (self.p * xa + self.q - 1.0)
        return out


def _correlation(a: FloatArray, b: FloatArray) -> float:
    """Pearson correlation with plain reductions (no BLAS threads); NaN if one is constant."""
    da, db = a - a.mean(), b - b.mean()
    den = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
    return float((da * db).sum()) / den if den > 0 else math.nan


def fit_gamma_gamma(
    m_x: ArrayLike,
    x: ArrayLike,
    *,
    initial: Sequence[float] | None = None,
    max_iterations: int = 500,
) -> GammaGammaFit:
    """Fit ``p, q, v`` by maximum likelihood on customers with ``x > 0`` repeat purchases.

    Rows with ``x == 0`` are dropped (their ``m_x`` is undefined); the remaining rows need
    ``m_x > 0``. L-BFGS-B on log-parameters with the analytic gradient. Raises
    :class:`InsufficientData` with fewer than two repeat buyers.
    """
    xa_all = _as_float_array(x, "x")
    ma_all = _as_float_array(m_x, "m_x")
    if xa_all.shape != ma_all.shape:
        raise ValueError(f"m_x, x: lengths differ ({ma_all.size} vs {xa_all.size})")
    repeat = xa_all > 0
    n = int(repeat.sum())
    if n < 2:
        what = "no repeat buyers" if n == 0 else "only 1 repeat buyer"
        raise InsufficientData(
            f"gamma_gamma: {what} (need at least 2 customers with a repeat purchase)"
        )
    ma, xa = _validate_spend(ma_all[repeat], xa_all[repeat])
    ux, inv = np.unique(xa, return_inverse=True)
    log_m = np.log(ma)
    xm = xa * ma
    if initial is None:
        initial = (1.0, 2.0, float(np.mean(ma)))
    fit = maximise_on_log_scale(
        lambda params: _ll_and_grad(params, ux, inv, log_m, xm),
        initial,
        ("p", "q", "v"),
        scale=n,
        bound=_LOG_BOUND,
        max_iterations=max_iterations,
    )
    p, q, v = fit.params
    at_bound = fit.at_bound
    corr = _correlation(xa, ma)
    return GammaGammaFit(
        p=p,
        q=q,
        v=v,
        log_likelihood=fit.log_likelihood,
        n_customers=n,
        converged=fit.success and not at_bound,
        iterations=fit.iterations,
        message=fit.message,
        frequency_spend_correlation=corr,
        at_bound=at_bound,
    )


def simulate_gamma_gamma(
    x: ArrayLike, p: float, q: float, v: float, rng: np.random.Generator
) -> FloatArray:
    """Draw the mean spend ``m_x`` over ``x`` transactions per customer from the model.

    ``ν ~ Gamma(q, rate v)``; the sum of ``x`` spends is ``Gamma(p x, rate ν)``, so
    ``m_x = Gamma(p x, rate ν) / x``. ``NaN`` where ``x == 0``.
    """
    xa = _as_float_array(x, "x")
    nu = rng.gamma(shape=q, scale=1.0 / v, size=xa.size)
    pos = xa > 0
    out = np.full(xa.size, np.nan)
    out[pos] = rng.gamma(shape=p * xa[pos], scale=1.0 / nu[pos]) / xa[pos]
    return out


# ---------------------------------------------------------------------------------------------
# Customer lifetime value
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClvForecast:
    """Per-customer forecast over a horizon, in the BG/NBD time unit and the spend currency."""

    horizon: float
    step: float
    time_unit: str
    annual_discount_rate: float
    margin: float
    p_alive: FloatArray
    expected_purchases: FloatArray
    expected_spend: FloatArray
    clv: FloatArray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings and totals (per-customer arrays are left to the caller)."""
        return {
            "horizon": self.horizon,
            "step": self.step,
            "time_unit": self.time_unit,
            "annual_discount_rate": self.annual_discount_rate,
            "margin": self.margin,
            "n_customers": int(self.clv.size),
            "expected_purchases_total": float(self.expected_purchases.sum()),
            "clv_total": float(self.clv.sum()),
            "clv_mean": float(self.clv.mean()) if self.clv.size else None,
        }


def customer_lifetime_value(
    bgnbd: BgNbdFit,
    gamma_gamma: GammaGammaFit,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    m_x: ArrayLike,
    *,
    horizon: float = 52.0,
    step: float = 1.0,
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
) -> ClvForecast:
    """Discounted CLV per customer over ``horizon`` (in ``bgnbd.time_unit``), vectorised.

    With step ends ``t_k = min(k · step, horizon)``, ``k = 1..K``, and the BG/NBD conditional
    expectation ``E_k = E[Y(t_k) | x, t_x, T]`` (``E_0 = 0``)::

        CLV = margin · E[M | m_x, x] · Σ_k (E_k - E_{k-1}) · (1 + annual_discount_rate)^(-t_k / U)

    where ``U`` is the number of time units per year: purchases expected within a step are
    discounted to the step's end. ``m_x`` may be NaN for customers with ``x == 0`` (they get the
    population mean spend). Expected purchases are computed once per distinct ``(x, t_x, T)``.
    """
    if bgnbd.time_unit not in UNITS_PER_YEAR:
        raise ValueError(f"time_unit: {bgnbd.time_unit!r} is not one of {sorted(UNITS_PER_YEAR)}")
    if horizon <= 0 or step <= 0:
        raise ValueError("horizon, step: must be > 0")
    if annual_discount_rate <= -1.0:
        raise ValueError("annual_discount_rate: must be > -1")
    xa, ta, Ta = validate_summary(x, t_x, T)
    ma = _as_float_array(m_x, "m_x")
    if ma.shape != xa.shape:
        raise ValueError("m_x: one value per customer is required")
    spend = gamma_gamma.conditional_expected_spend(ma, xa)
    n_steps = math.ceil(horizon / step - 1e-9)
    times = np.minimum(step * np.arange(1, n_steps + 1), horizon)
    disc = np.exp(-times / UNITS_PER_YEAR[bgnbd.time_unit] * math.log1p(annual_discount_rate))

    rows = np.column_stack([xa, ta, Ta])
    urows, inv_raw = np.unique(rows, axis=0, return_inverse=True)
    inv = np.asarray(inv_raw, dtype=np.intp).ravel()
    cum = bgnbd.cumulative_expected_purchases(times, urows[:, 0], urows[:, 1], urows[:, 2])
    incr = np.diff(cum, axis=1, prepend=0.0)
    disc_purchases = (incr * disc[None, :]).sum(axis=1)[inv]
    total = cum[:, -1][inv]
    p_alive = bgnbd.p_alive(xa, ta, Ta)
    return ClvForecast(
        horizon=float(horizon),
        step=float(step),
        time_unit=bgnbd.time_unit,
        annual_discount_rate=float(annual_discount_rate),
        margin=float(margin),
        p_alive=p_alive,
        expected_purchases=total,
        expected_spend=spend,
        clv=margin * spend * disc_purchases,
    )
