"""BG/NBD model of repeat purchasing and dropout (Fader, Hardie & Lee 2005).

Reference: P. S. Fader, B. G. S. Hardie, K. L. Lee, "'Counting your customers' the easy way:
an alternative to the Pareto/NBD model", Marketing Science 24(2), 2005.

The story, per customer, after the first purchase at time 0:

* while alive, purchases follow a Poisson process with rate ``λ``; ``λ ~ Gamma(r, rate α)``;
* after each *repeat* purchase the customer drops out for good with probability ``p``;
  ``p ~ Beta(a, b)``.

Data per customer is the calibration summary ``(x, t_x, T)``: ``x`` repeat purchases, ``t_x`` the
time of the last purchase and ``T`` the time of the as-of date, both measured from the first
purchase. Purchases are counted per purchase *day* as the literature does: several orders on one
day are one purchase. Time is expressed in a stated unit (weeks by default).

Everything here is pure: numpy arrays / polars frames in, frozen dataclasses out.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

from radar.analytics.models.errors import InsufficientData

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: Length of each supported time unit in days.
TIME_UNIT_DAYS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12.0}

_LOG_BOUND = 15.0  # log-parameters are kept in [-15, 15] during the fit
_A_NEAR_ONE = 1e-7  # E[X(t)] has a removable singularity at a = 1


_blas_controller: Any = None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread.

    The fits are a few hundred small steps; OpenBLAS worker threads only add hand-off and
    spin-wait cost there, which on a busy 2-core machine multiplied the fit time several-fold.
    Uses ``threadpoolctl`` (a scikit-learn dependency); without it this does nothing.
    """
    global _blas_controller
    try:
        if _blas_controller is None:
            from threadpoolctl import ThreadpoolController

            _blas_controller = ThreadpoolController()
        limiter = _blas_controller.limit(limits=1, user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl missing or unusable
        limiter = contextlib.nullcontext()
    with limiter:
        yield


@dataclass(frozen=True)
class LogScaleFit:
    """A maximum-likelihood fit found on log-parameters: the parameters, the maximised
    log-likelihood and how the optimiser ended (``at_bound`` names parameters at a bound)."""

    params: tuple[float, ...]
    log_likelihood: float
    success: bool
    iterations: int
    message: str
    at_bound: tuple[str, ...]


def maximise_on_log_scale(
    ll_and_grad: Callable[[FloatArray], tuple[float, FloatArray]],
    initial: Sequence[float],
    names: Sequence[str],
    *,
    scale: float,
    bound: float,
    max_iterations: int,
) -> LogScaleFit:
    """Maximise a log-likelihood over positive parameters with L-BFGS-B on their logarithms
    (kept in [-bound, bound]); ``ll_and_grad(params)`` gives the log-likelihood and its gradient
    in the parameters, ``scale`` normalises the objective (the number of customers)."""

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(theta)
        ll, grad = ll_and_grad(params)
        if not np.isfinite(ll):
            return 1e10, np.zeros(len(names))
        return -ll / scale, -(grad * params) / scale

    with single_threaded_blas():
        res = minimize(
            objective,
            np.log(np.asarray(initial, dtype=np.float64)),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-bound, bound)] * len(names),
            options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-8},
        )
    at_bound = tuple(n for n, v in zip(names, res.x, strict=True) if abs(v) >= bound - 1e-6)
    return LogScaleFit(
        params=tuple(float(v) for v in np.exp(res.x)),
        log_likelihood=float(-res.fun * scale),
        success=bool(res.success),
        iterations=int(res.nit),
        message=str(res.message),
        at_bound=at_bound,
    )


# ---------------------------------------------------------------------------------------------
# Input validation and the calibration summary
# ---------------------------------------------------------------------------------------------


def _as_float_array(values: ArrayLike, name: str) -> FloatArray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a one-dimensional array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def validate_summary(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Check and broadcast a calibration summary; returns float arrays ``(x, t_x, T)``.

    Raises ``ValueError`` naming the field when ``x`` is not a non-negative whole number, when
    ``t_x`` is not within ``[0, T]``, or when ``x == 0`` but ``t_x != 0``.
    """
    xa = _as_float_array(x, "x")
    ta = _as_float_array(t_x, "t_x")
    Ta = _as_float_array(T, "T")
    try:
        xa, ta, Ta = np.broadcast_arrays(xa, ta, Ta)
    except ValueError as exc:
        raise ValueError(f"x, t_x, T: lengths differ ({exc})") from None
    if np.any(xa < 0) or np.any(xa != np.round(xa)):
        raise ValueError("x: repeat purchase counts must be non-negative whole numbers")
    if np.any(ta < 0):
        raise ValueError("t_x: time of last purchase must be >= 0")
    if np.any(ta > Ta * (1 + 1e-12) + 1e-12):
        raise ValueError("t_x: time of last purchase exceeds T (time since first purchase)")
    if np.any((xa == 0) & (ta != 0)):
        raise ValueError("t_x: must be 0 for customers without repeat purchases (x == 0)")
    return xa.astype(np.float64), ta.astype(np.float64), Ta.astype(np.float64)


def summarise_purchases(
    purchases: pl.DataFrame,
    as_of: date,
    *,
    time_unit: str = "weeks",
    customer_col: str = "customer_id",
    day_col: str = "purchase_day",
    amount_col: str | None = None,
) -> pl.DataFrame:
    """Turn purchases into the per-customer calibration summary, counted per purchase day.

    ``purchases`` has one row per purchase (or order line) with ``customer_col`` and ``day_col``
    (a ``pl.Date``); only purchases on or before ``as_of`` are used. Several purchases of one
    customer on one day count as one purchase day (their amounts are summed).

    Returns one row per customer with a first purchase on or before ``as_of``:

    * ``x`` — number of distinct purchase days minus one (repeat purchases),
    * ``t_x`` — time from the first to the last purchase day, in ``time_unit``,
    * ``T`` — time from the first purchase day to ``as_of``, in ``time_unit``,
    * ``first_purchase``, ``last_purchase`` — the dates,
    * with ``amount_col``: ``monetary`` — mean spend per *repeat* purchase day (the first day
      excluded, as the Gamma-Gamma model expects; null when ``x == 0``) and ``first_amount``.
    """
    if time_unit not in TIME_UNIT_DAYS:
        raise ValueError(f"time_unit: {time_unit!r} is not one of {sorted(TIME_UNIT_DAYS)}")
    missing = [c for c in (customer_col, day_col, amount_col) if c and c not in purchases.columns]
    if missing:
        raise ValueError(f"purchases: missing column(s) {missing}")
    unit = TIME_UNIT_DAYS[time_unit]
    aggs = [pl.len().alias("_n")]
    if amount_col is not None:
        aggs.append(pl.col(amount_col).cast(pl.Float64).sum().alias("_amount"))
    days = (
        purchases.lazy()
        .filter(pl.col(day_col).cast(pl.Date) <= pl.lit(as_of))
        .group_by(customer_col, pl.col(day_col).cast(pl.Date).alias("_day"), maintain_order=True)
        .agg(aggs)
    )
    per_customer = [
        pl.len().alias("_days"),
        pl.col("_day").min().alias("first_purchase"),
        pl.col("_day").max().alias("last_purchase"),
    ]
    if amount_col is not None:
        per_customer += [
            pl.col("_amount").sort_by("_day").first().alias("first_amount"),
            # summed in day order: a parallel group-by hands the days over in any order, and a
            # float sum in another order differs in the last bits (and so may the fits on it)
            pl.col("_amount").sort_by("_day").sum().alias("_total"),
        ]
    out = days.group_by(customer_col).agg(per_customer)
    span = (pl.col("last_purchase") - pl.col("first_purchase")).dt.total_days()
    age = (pl.lit(as_of) - pl.col("first_purchase")).dt.total_days()
    cols = [
        pl.col(customer_col),
        (pl.col("_days") - 1).cast(pl.Int64).alias("x"),
        (span.cast(pl.Float64) / unit).alias("t_x"),
        (age.cast(pl.Float64) / unit).alias("T"),
        pl.col("first_purchase"),
        pl.col("last_purchase"),
    ]
    if amount_col is not None:
        repeat_days = pl.col("_days") - 1
        cols += [
            pl.when(repeat_days > 0)
            .then((pl.col("_total") - pl.col("first_amount")) / repeat_days)
            .otherwise(None)
            .alias("monetary"),
            pl.col("first_amount"),
        ]
    return out.select(cols).sort(customer_col).collect()


def count_purchase_days(
    purchases: pl.DataFrame,
    start: date,
    end: date,
    *,
    customer_col: str = "customer_id",
    day_col: str = "purchase_day",
) -> pl.DataFrame:
    """Distinct purchase days per customer in the holdout window ``(start, end]``.

    Returns ``customer_col`` and ``x_holdout`` for customers with at least one purchase there;
    join it to a calibration summary and fill nulls with 0.
    """
    return (
        purchases.lazy()
        .filter(
            (pl.col(day_col).cast(pl.Date) > pl.lit(start))
            & (pl.col(day_col).cast(pl.Date) <= pl.lit(end))
        )
        .group_by(customer_col)
        .agg(pl.col(day_col).cast(pl.Date).n_unique().cast(pl.Int64).alias("x_holdout"))
        .sort(customer_col)
        .collect()
    )


# ---------------------------------------------------------------------------------------------
# Likelihood
# ---------------------------------------------------------------------------------------------


def _ll_and_grad(
    params: FloatArray,
    ux: FloatArray,
    inv: npt.NDArray[np.intp],
    t_x: FloatArray,
    T: FloatArray,
    repeat: npt.NDArray[np.bool_],
    w: FloatArray,
) -> tuple[float, FloatArray]:
    """Weighted log-likelihood and its gradient w.r.t. ``(r, alpha, a, b)``.

    Terms that depend on ``x`` only are evaluated once per distinct ``x`` (``ux``) and gathered
    with ``inv``; only cheap element-wise work is done per customer.
    """
    r, alpha, a, b = params
    x1 = np.maximum(ux, 1.0)  # the second term only exists for x > 0
    # per distinct x
    A_u = gammaln(r + ux) - gammaln(r) + r * math.log(alpha)
    lb_ab = betaln(a, b)
    B1_u = betaln(a, b + ux) - lb_ab
    B2_u = betaln(a + 1.0, b + x1 - 1.0) - lb_ab
    dr_A_u = digamma(r + ux) - digamma(r) + math.log(alpha)
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + ux)
    d1a_u = psi_ab - psi_abx
    d1b_u = digamma(b + ux) - psi_abx - digamma(b) + psi_ab
    d2a_u = digamma(a + 1.0) - digamma(a) + psi_ab - digamma(a + b + x1)
    d2b_u = digamma(b + x1 - 1.0) - digamma(a + b + x1) - digamma(b) + psi_ab
    # per customer
    x = ux[inv]
    rx = r + x
    lT = np.log(alpha + T)
    lt = np.log(alpha + t_x)
    B1 = B1_u[inv] - rx * lT
    B2 = B2_u[inv] - rx * lt
    both = np.logaddexp(B1, B2)
    lse = np.where(repeat, both, B1)
    ll = A_u[inv] + lse
    w2 = np.where(repeat, np.exp(B2 - both), 0.0)
    w1 = 1.0 - w2
    g_r = dr_A_u[inv] - w1 * lT - w2 * lt
    g_alpha = r / alpha - rx * (w1 / (alpha + T) + w2 / (alpha + t_x))
    g_a = w1 * d1a_u[inv] + w2 * d2a_u[inv]
    g_b = w1 * d1b_u[inv] + w2 * d2b_u[inv]
    # plain reductions, not BLAS dot products: those spawn threads that fight for 2 cores
    grad = np.array([(w * g).sum() for g in (g_r, g_alpha, g_a, g_b)])
    return float((w * ll).sum()), grad


def log_likelihood(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
) -> FloatArray:
    """Per-customer BG/NBD log-likelihood, FHL (2005) eq. (6), computed in log space.

    ``L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + [x > 0] · B(a+1, b+x-1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x))``
    """
    xa, ta, Ta = validate_summary(x, t_x, T)
    r, alpha, a, b = (float(v) for v in (r, alpha, a, b))
    if min(r, alpha, a, b) <= 0:
        raise ValueError("r, alpha, a, b: parameters must be positive")
    x1 = np.maximum(xa, 1.0)
    A = gammaln(r + xa) - gammaln(r) + r * math.log(alpha)
    lb = betaln(a, b)
    B1 = betaln(a, b + xa) - lb - (r + xa) * np.log(alpha + Ta)
    B2 = betaln(a + 1.0, b + x1 - 1.0) - lb - (r + xa) * np.log(alpha + ta)
    out: FloatArray = A + np.where(xa > 0, np.logaddexp(B1, B2), B1)
    return out


# ---------------------------------------------------------------------------------------------
# Fit result and predictions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbdFit:
    """Fitted BG/NBD parameters and fit metrics; predictions are methods.

    ``r, alpha`` describe the purchase-rate distribution (``λ ~ Gamma(r, rate α)``, mean
    ``r/α`` purchases per ``time_unit``), ``a, b`` the dropout probability (``p ~ Beta(a, b)``).
    """

    r: float
    alpha: float
    a: float
    b: float
    time_unit: str = "weeks"
    log_likelihood: float = float("nan")
    n_customers: int = 0
    n_repeat_buyers: int = 0
    converged: bool = True
    iterations: int = 0
    message: str = ""
    at_bound: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (with their time unit) and fit metrics."""
        return {
            "model": "bgnbd",
            "time_unit": self.time_unit,
            "parameters": {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b},
            "mean_purchase_rate_per_unit": self.r / self.alpha,
            "mean_dropout_probability": self.a / (self.a + self.b),
            "log_likelihood": self.log_likelihood,
            "n_customers": self.n_customers,
            "n_repeat_buyers": self.n_repeat_buyers,
            "converged": self.converged,
            "iterations": self.iterations,
            "message": self.message,
            "at_bound": list(self.at_bound),
        }

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(customer still alive at T | x, t_x, T) (FHL 2005; Fader, Hardie & Lee 2008 note).

        ``P = 1 / (1 + [x > 0] · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x))``. By the model's story a
        customer with no repeat purchase cannot have dropped out yet, so ``P = 1`` when ``x = 0``.
        """
        xa, ta, Ta = validate_summary(x, t_x, T)
        x1 = np.maximum(xa, 1.0)
        log_odds = (
            math.log(self.a)
            - np.log(self.b + x1 - 1.0)
            + (self.r + xa) * (np.log(self.alpha + Ta) - np.log(self.alpha + ta))
        )
        dead_odds = np.where(xa > 0, np.exp(log_odds), 0.0)
        out: FloatArray = 1.0 / (1.0 + dead_odds)
        return out

    def expected_purchases(self, t: ArrayLike) -> FloatArray:
        """Unconditional E[X(t)] for a new customer over ``(0, t]``, FHL (2005) eq. (9).

        ``E[X(t)] = (a+b-1)/(a-1) · [1 - (α/(α+t))^r · 2F1(r, b; a+b-1; t/(α+t))]``,
        evaluated through the same stable transform as :meth:`conditional_expected_purchases`
        (with ``x = t_x = T = 0``).
        """
        ta = _as_float_array(t, "t")
        zeros = np.zeros_like(ta)
        return self._conditional_numerator(ta, zeros, zeros)

    def _conditional_numerator(self, t: FloatArray, x: FloatArray, T: FloatArray) -> FloatArray:
        """``(a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; z)]``.

        With ``z = t/(α+T+t)``. Evaluating that 2F1 directly is unreliable for large ``x``; two
        Pfaff transformations give the identity used here::

            ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; z)
              = (1 + t/(α+T))^(1-a) · 2F1(a+b-1-r, a-1; a+b+x-1; z)

        whose series has argument ``z`` in ``[0, 1)`` and small upper parameters.
        """
        r, alpha, b = self.r, self.alpha, self.b
        a = self.a
        if abs(a - 1.0) < _A_NEAR_ONE:  # removable singularity: nudge
            a = 1.0 + math.copysign(_A_NEAR_ONE, a - 1.0 if a != 1.0 else 1.0)
        if np.any(t < 0):
            raise ValueError("t: forecast horizon must be >= 0")
        base = alpha + T
        z = t / (base + t)
        f = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        g = np.exp((1.0 - a) * np.log1p(t / base)) * f
        out: FloatArray = (a + b + x - 1.0) / (a - 1.0) * (1.0 - g)
        return out

    def conditional_expected_purchases(
        self, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[Y(t) | x, t_x, T]: expected purchases in ``(T, T+t]`` given history, FHL eq. (10).

        ``E = (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1;
        t/(α+T+t))] / (1 + [x > 0] · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x))``.
        ``t`` may be a scalar or an array broadcastable against the customers.
        """
        xa, ta, Ta = validate_summary(x, t_x, T)
        tt = np.asarray(t, dtype=np.float64)
        num = self._conditional_numerator(tt, xa, Ta)
        out: FloatArray = num * self.p_alive(xa, ta, Ta)
        return out

    def cumulative_expected_purchases(
        self, times: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[Y(t) | x, t_x, T] for every customer (rows) and every ``t`` in ``times`` (columns).

        Returns an ``(n_customers, len(times))`` array; used to spread a forecast over steps.
        """
        xa, ta, Ta = validate_summary(x, t_x, T)
        tt = _as_float_array(times, "times")
        num = self._conditional_numerator(tt[None, :], xa[:, None], Ta[:, None])
        out: FloatArray = num * self.p_alive(xa, ta, Ta)[:, None]
        return out


def _merge_identical_rows(
    x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Merge identical ``(x, t_x, T)`` rows into one row weighted by the summed weights."""
    order = np.lexsort((T, t_x, x))
    xs, ts, Ts, ws = x[order], t_x[order], T[order], w[order]
    new = np.empty(xs.size, dtype=bool)
    new[0] = True
    new[1:] = (np.diff(xs) != 0) | (np.diff(ts) != 0) | (np.diff(Ts) != 0)
    starts = np.flatnonzero(new)
    wsum = np.add.reduceat(ws, starts)
    keep = wsum > 0
    return xs[starts][keep], ts[starts][keep], Ts[starts][keep], wsum[keep]


def fit_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    time_unit: str = "weeks",
    weights: ArrayLike | None = None,
    initial: Sequence[float] | None = None,
    max_iterations: int = 500,
) -> BgNbdFit:
    """Fit BG/NBD by maximum likelihood on the exact published likelihood.

    Maximises ``Σ w_i · LL_i`` with L-BFGS-B over log-parameters using the analytic gradient.
    Identical ``(x, t_x, T)`` rows are merged into one weighted row first. ``weights`` (optional)
    are row multiplicities. Raises :class:`InsufficientData` when there are fewer than two
    customers or fewer than two repeat buyers.
    """
    if time_unit not in TIME_UNIT_DAYS:
        raise ValueError(f"time_unit: {time_unit!r} is not one of {sorted(TIME_UNIT_DAYS)}")
    xa, ta, Ta = validate_summary(x, t_x, T)
    w_in = np.ones_like(xa) if weights is None else _as_float_array(weights, "weights")
    if w_in.shape != xa.shape or np.any(w_in < 0):
        raise ValueError("weights: must be non-negative, one per customer")
    n_customers = float(w_in.sum())
    n_repeat = float(w_in[xa > 0].sum())
    if n_customers < 2:
        raise InsufficientData(
            f"bgnbd: {n_customers:g} customer(s) (need at least 2 customers with a purchase)"
        )
    if n_repeat < 2:
        what = "no repeat buyers" if n_repeat == 0 else f"only {n_repeat:g} repeat buyer"
        raise InsufficientData(f"bgnbd: {what} (need at least 2 customers with a repeat purchase)")
    if np.all(Ta == 0):
        raise InsufficientData("bgnbd: no observation time (every customer has T = 0)")

    cx, ct, cT, wu = _merge_identical_rows(xa, ta, Ta, w_in)
    ux, inv = np.unique(cx, return_inverse=True)
    repeat = cx > 0

    if initial is None:
        rate = max(float((wu * cx).sum()) / max(float((wu * cT).sum()), 1e-9), 1e-6)
        initial = (1.0, 1.0 / rate, 1.0, 1.0)
    scale = float(wu.sum())
    fit = maximise_on_log_scale(
        lambda params: _ll_and_grad(params, ux, inv, ct, cT, repeat, wu),
        initial,
        ("r", "alpha", "a", "b"),
        scale=scale,
        bound=_LOG_BOUND,
        max_iterations=max_iterations,
    )
    r, alpha, a, b = fit.params
    at_bound = fit.at_bound
    return BgNbdFit(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        time_unit=time_unit,
        log_likelihood=fit.log_likelihood,
        n_customers=round(n_customers),
        n_repeat_buyers=round(n_repeat),
        converged=fit.success and not at_bound,
        iterations=fit.iterations,
        message=fit.message,
        at_bound=at_bound,
    )


# ---------------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedBgNbd:
    """Simulated calibration summaries (and holdout counts) with the latent truth."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    x_holdout: FloatArray
    alive_at_T: npt.NDArray[np.bool_]
    rate: FloatArray
    dropout: FloatArray


def simulate_bgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | ArrayLike,
    rng: np.random.Generator,
    *,
    holdout: float = 0.0,
) -> SimulatedBgNbd:
    """Draw ``n`` customers from the BG/NBD story (vectorised, exact).

    ``λ ~ Gamma(r, rate α)``, ``p ~ Beta(a, b)``; the number of repeat purchases a customer will
    ever make is ``J ~ Geometric(p)`` on ``{1, 2, …}`` (dropout right after the J-th); purchases
    arrive as a Poisson process with rate ``λ``. With ``N ~ Poisson(λT)`` events in ``(0, T]``,
    ``x = min(J, N)`` and ``t_x`` is the ``x``-th order statistic of ``N`` uniform times, i.e.
    ``T · Beta(x, N - x + 1)``. ``holdout > 0`` also counts purchases in ``(T, T + holdout]``
    (memorylessness: ``min(J - x, Poisson(λ · holdout))`` for customers alive at ``T``).
    """
    if n < 1:
        raise ValueError("n: must be >= 1")
    Ta = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    J = rng.geometric(np.clip(p, 1e-300, 1.0)).astype(np.float64)
    N = rng.poisson(lam * Ta).astype(np.float64)
    k = np.minimum(J, N)
    has = k > 0
    t_x = np.zeros(n)
    t_x[has] = Ta[has] * rng.beta(k[has], N[has] - k[has] + 1.0)
    alive = N < J
    x_hold = np.zeros(n)
    if holdout > 0:
        more = rng.poisson(lam * holdout).astype(np.float64)
        x_hold = np.where(alive, np.minimum(J - k, more), 0.0)
    return SimulatedBgNbd(
        x=k, t_x=t_x, T=Ta, x_holdout=x_hold, alive_at_T=alive, rate=lam, dropout=p
    )


# ---------------------------------------------------------------------------------------------
# Calibration / holdout check
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationHoldout:
    """Forecast vs actual purchases in a holdout window after the calibration as-of date."""

    horizon: float
    time_unit: str
    n_customers: int
    forecast_total: float
    actual_total: float
    mae: float
    by_x: pl.DataFrame  # x bucket, customers, forecast mean/total, actual mean/total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary of the check."""
        return {
            "horizon": self.horizon,
            "time_unit": self.time_unit,
            "n_customers": self.n_customers,
            "forecast_total": self.forecast_total,
            "actual_total": self.actual_total,
            "relative_error_total": (
                (self.forecast_total - self.actual_total) / self.actual_total
                if self.actual_total
                else None
            ),
            "mae_per_customer": self.mae,
            "by_x": self.by_x.to_dicts(),
        }


def calibration_holdout(
    fit: BgNbdFit,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    actual: ArrayLike,
    horizon: float,
    *,
    max_bucket: int = 7,
) -> CalibrationHoldout:
    """Compare E[Y(horizon) | x, t_x, T] with the purchases actually made in the holdout.

    ``actual`` is the number of purchase days per customer in ``(as_of, as_of + horizon]``
    (see :func:`count_purchase_days`). Customers are bucketed by calibration ``x`` (the last
    bucket is ``max_bucket+``), as in FHL (2005) fig. 4.
    """
    xa, ta, Ta = validate_summary(x, t_x, T)
    act = _as_float_array(actual, "actual")
    if act.shape != xa.shape:
        raise ValueError("actual: one holdout count per customer is required")
    if horizon <= 0:
        raise ValueError("horizon: must be > 0")
    fc = fit.conditional_expected_purchases(horizon, xa, ta, Ta)
    bucket = np.minimum(xa, max_bucket).astype(np.int64)
    frame = pl.DataFrame({"x": bucket, "forecast": fc, "actual": act})
    by_x = (
        frame.group_by("x")
        .agg(
            pl.len().alias("customers"),
            pl.col("forecast").mean().alias("forecast_mean"),
            pl.col("actual").mean().alias("actual_mean"),
            pl.col("forecast").sum().alias("forecast_total"),
            pl.col("actual").sum().alias("actual_total"),
        )
        .sort("x")
        .with_columns(
            pl.col("x").cast(pl.String).alias("bucket"),
        )
        .with_columns(
            pl.when(pl.col("x") == max_bucket)
            .then(pl.lit(f"{max_bucket}+"))
            .otherwise(pl.col("bucket"))
            .alias("bucket")
        )
    )
    return CalibrationHoldout(
        horizon=float(horizon),
        time_unit=fit.time_unit,
        n_customers=int(xa.size),
        forecast_total=float(fc.sum()),
        actual_total=float(act.sum()),
        mae=float(np.mean(np.abs(fc - act))),
        by_x=by_x,
    )
