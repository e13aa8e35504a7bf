"""Marketing-mix / channel analysis: OLS of outcomes on touches, and response rates.

* :func:`ols` — ordinary least squares with intercept on numpy/scipy only: coefficients,
  standard errors (classical, homoskedastic), t statistics, two-sided p-values, 95% confidence
  intervals (Student t with ``n - k`` degrees of freedom), R² and adjusted R², F statistic.
* :func:`marketing_mix` — the same on a per-period frame: one row per period, a target column
  (conversions or revenue) and one column per driver (touches per channel or campaign, spend).
* :func:`touches_per_period` — pivot long outbound-touch rows into that per-period frame.
* :func:`response_rates` — responded/sent per channel and approach with Wilson intervals.

Too few periods (fewer than parameters + 2) raise :class:`InsufficientData`; a singular design
(a constant or collinear driver) raises :class:`SingularDesign` naming the columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from radar.analytics.models.errors import InsufficientData

FloatArray = npt.NDArray[np.float64]


class SingularDesign(ValueError):
    """The regressors are linearly dependent (constant or collinear columns); names them."""


@dataclass(frozen=True)
class Coefficient:
    """One regression coefficient with its inference."""

    name: str
    estimate: float
    std_error: float
    t: float
    p_value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "name": self.name,
            "estimate": self.estimate,
            "std_error": self.std_error,
            "t": self.t,
            "p_value": self.p_value,
            "ci95": [self.ci_low, self.ci_high],
        }


@dataclass(frozen=True)
class OlsResult:
    """An OLS fit: coefficients (intercept first) and fit metrics."""

    target: str
    coefficients: tuple[Coefficient, ...]
    n: int
    df_residual: int
    r_squared: float
    adj_r_squared: float
    residual_std_error: float
    f_statistic: float
    f_p_value: float
    confidence: float = 0.95

    def coefficient(self, name: str) -> Coefficient:
        """The coefficient called ``name`` (``"intercept"`` for the intercept)."""
        for c in self.coefficients:
            if c.name == name:
                return c
        raise KeyError(f"no coefficient {name!r}; have {[c.name for c in self.coefficients]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready coefficients and fit metrics."""
        return {
            "model": "ols",
            "target": self.target,
            "n_periods": self.n,
            "df_residual": self.df_residual,
            "confidence": self.confidence,
            "coefficients": [c.to_dict() for c in self.coefficients],
            "r_squared": self.r_squared,
            "adj_r_squared": self.adj_r_squared,
            "residual_std_error": self.residual_std_error,
            "f_statistic": self.f_statistic if math.isfinite(self.f_statistic) else None,
            "f_p_value": self.f_p_value if math.isfinite(self.f_p_value) else None,
        }


def _dependent_columns(X: FloatArray, names: Sequence[str]) -> list[str]:
    """Columns that add nothing to the span of the columns before them (greedy, in order)."""
    bad: list[str] = []
    kept: list[int] = []
    for j in range(X.shape[1]):
        trial = [*kept, j]
        if np.linalg.matrix_rank(X[:, trial]) == len(trial):
            kept.append(j)
        else:
            bad.append(names[j])
    return bad


def ols(
    y: npt.ArrayLike,
    X: npt.ArrayLike,
    names: Sequence[str],
    *,
    target: str = "y",
    confidence: float = 0.95,
) -> OlsResult:
    """Fit ``y = β0 + X β + ε`` by least squares (an intercept column is added).

    ``X`` is ``(n, k)`` with ``len(names) == k``. Needs ``n >= k + 1 + 2`` (parameters + 2)
    and a full-rank design.
    """
    ya = np.asarray(y, dtype=np.float64).ravel()
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    n, k = Xa.shape
    if len(names) != k:
        raise ValueError(f"names: {len(names)} names for {k} columns")
    if ya.size != n:
        raise ValueError(f"y: {ya.size} values for {n} rows of X")
    if not (np.all(np.isfinite(ya)) and np.all(np.isfinite(Xa))):
        raise ValueError("y, X: contain NaN or infinite values")
    n_params = k + 1
    if n < n_params + 2:
        raise InsufficientData(
            f"mix: {n} period(s) for {n_params} parameters "
            f"(need at least {n_params + 2} periods: parameters + 2)"
        )
    design = np.column_stack([np.ones(n), Xa])
    all_names = ["intercept", *names]
    # scale columns before the rank test so large spend columns do not mask collinearity
    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0
    if np.linalg.matrix_rank(design / scale) < n_params:
        bad = _dependent_columns(design / scale, all_names)
        raise SingularDesign(
            f"mix: the design is singular; column(s) {bad} are constant or a linear combination "
            "of earlier columns — drop or merge them"
        )
    q, r = np.linalg.qr(design)
    beta = np.linalg.solve(r, q.T @ ya)
    resid = ya - design @ beta
    df = n - n_params
    rss = float(resid @ resid)
    sigma2 = rss / df
    r_inv = np.linalg.inv(r)
    cov = sigma2 * (r_inv @ r_inv.T)
    se = np.sqrt(np.diag(cov))
    tcrit = float(stats.t.ppf(0.5 + confidence / 2.0, df))
    with np.errstate(divide="ignore", invalid="ignore"):
        tvals = np.where(se > 0, beta / se, np.sign(beta) * np.inf)
    pvals = 2.0 * stats.t.sf(np.abs(tvals), df)
    tss = float(((ya - ya.mean()) ** 2).sum())
    r2 = 1.0 - rss / tss if tss > 0 else math.nan
    adj = 1.0 - (1.0 - r2) * (n - 1) / df if tss > 0 else math.nan
    if k > 0 and rss > 0 and tss > 0:
        f_stat = ((tss - rss) / k) / (rss / df)
        f_p = float(stats.f.sf(f_stat, k, df))
    else:
        f_stat, f_p = math.nan, math.nan
    coefs = tuple(
        Coefficient(
            name=nm,
            estimate=float(b),
            std_error=float(s),
            t=float(t),
            p_value=float(p),
            ci_low=float(b - tcrit * s),
            ci_high=float(b + tcrit * s),
        )
        for nm, b, s, t, p in zip(all_names, beta, se, tvals, pvals, strict=True)
    )
    return OlsResult(
        target=target,
        coefficients=coefs,
        n=n,
        df_residual=df,
        r_squared=r2,
        adj_r_squared=adj,
        residual_std_error=math.sqrt(sigma2),
        f_statistic=float(f_stat),
        f_p_value=f_p,
        confidence=confidence,
    )


def marketing_mix(
    per_period: pl.DataFrame,
    target: str,
    drivers: Sequence[str] | None = None,
    *,
    period_col: str = "period",
    confidence: float = 0.95,
) -> OlsResult:
    """OLS of ``target`` per period on the ``drivers`` columns (default: all other numeric ones).

    Missing driver values (no touches on that channel in a period) count as 0; a missing target
    is an error naming the periods.
    """
    if target not in per_period.columns:
        raise ValueError(f"mix: target column {target!r} not in {per_period.columns}")
    if drivers is None:
        drivers = [
            c
            for c, dt in per_period.schema.items()
            if c not in (target, period_col) and dt.is_numeric()
        ]
    missing = [c for c in drivers if c not in per_period.columns]
    if missing:
        raise ValueError(f"mix: driver column(s) {missing} not in the frame")
    if not drivers:
        raise InsufficientData("mix: no driver columns (need touches or spend per period)")
    nulls = per_period.filter(pl.col(target).is_null())
    if nulls.height:
        where = nulls[period_col].to_list()[:5] if period_col in nulls.columns else []
        raise ValueError(f"mix: target {target!r} is missing for period(s) {where}")
    X = per_period.select(pl.col(c).cast(pl.Float64).fill_null(0.0) for c in drivers).to_numpy()
    y = per_period[target].cast(pl.Float64).to_numpy()
    return ols(y, X, list(drivers), target=target, confidence=confidence)


def touches_per_period(
    touches: pl.DataFrame,
    *,
    period_col: str = "period",
    by: Sequence[str] = ("channel",),
    value_cols: Sequence[str] = ("touches",),
) -> pl.DataFrame:
    """Pivot long rows ``(period, *by, touches[, spend])`` into one row per period.

    Output columns are named ``"{value}:{key}"`` with ``key`` the ``by`` values joined by
    ``"/"`` (e.g. ``touches:email``, ``spend:email/spring-sale``); absent combinations are 0.
    Join the target per period onto the result and pass it to :func:`marketing_mix`.
    """
    needed = [period_col, *by, *value_cols]
    missing = [c for c in needed if c not in touches.columns]
    if missing:
        raise ValueError(f"mix: missing column(s) {missing}")
    key = pl.concat_str([pl.col(c).cast(pl.String).fill_null("none") for c in by], separator="/")
    long = (
        touches.lazy()
        .with_columns(key.alias("_key"))
        .group_by(period_col, "_key")
        .agg(pl.col(v).cast(pl.Float64).fill_null(0.0).sum() for v in value_cols)
        .collect()
    )
    wide: pl.DataFrame | None = None
    for v in value_cols:
        part = long.pivot(on="_key", index=period_col, values=v)
        part = part.rename({c: f"{v}:{c}" for c in part.columns if c != period_col})
        wide = part if wide is None else wide.join(part, on=period_col, how="full", coalesce=True)
    assert wide is not None
    return wide.with_columns(pl.exclude(period_col).fill_null(0.0)).sort(period_col)


# ---------------------------------------------------------------------------------------------
# Response rates
# ---------------------------------------------------------------------------------------------


def wilson_interval(
    successes: npt.ArrayLike, trials: npt.ArrayLike, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for a binomial proportion (vectorised; NaN where trials == 0).

    ``centre = (p̂ + z²/2n) / (1 + z²/n)``, ``half = z/(1 + z²/n) · sqrt(p̂(1-p̂)/n + z²/4n²)``.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        phat = k / n
        denom = 1.0 + z * z / n
        centre = (phat + z * z / (2.0 * n)) / denom
        half = z / denom * np.sqrt(phat * (1.0 - phat) / n + z * z / (4.0 * n * n))
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


@dataclass(frozen=True)
class ResponseRates:
    """Response rate per group with Wilson intervals (``rates`` frame) and JSON summary."""

    rates: pl.DataFrame
    group_cols: tuple[str, ...]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready rows (NaN rates for groups with nothing sent become null)."""
        return {
            "model": "response_rates",
            "group_by": list(self.group_cols),
            "confidence": self.confidence,
            "rows": self.rates.fill_nan(None).to_dicts(),
        }


def response_rates(
    outcomes: pl.DataFrame,
    *,
    group_cols: Sequence[str] = ("channel", "approach"),
    sent_col: str = "sent",
    responded_col: str = "responded",
    confidence: float = 0.95,
) -> ResponseRates:
    """Sum ``sent`` and ``responded`` per group; rate = responded / sent with a Wilson CI.

    Raises ``ValueError`` naming the group when responses exceed sends or counts are negative.
    """
    needed = [*group_cols, sent_col, responded_col]
    missing = [c for c in needed if c not in outcomes.columns]
    if missing:
        raise ValueError(f"response_rates: missing column(s) {missing}")
    summed = (
        outcomes.group_by(list(group_cols))
        .agg(
            pl.col(sent_col).fill_null(0).sum().cast(pl.Int64).alias("sent"),
            pl.col(responded_col).fill_null(0).sum().cast(pl.Int64).alias("responded"),
        )
        .sort(list(group_cols), nulls_last=True)
    )
    if summed.height == 0:
        raise InsufficientData("response_rates: no rows (need sent/responded per channel)")
    bad = summed.filter(
        (pl.col("responded") > pl.col("sent")) | (pl.col("sent") < 0) | (pl.col("responded") < 0)
    )
    if bad.height:
        raise ValueError(
            "response_rates: responded exceeds sent or a count is negative for "
            f"{bad.select(group_cols).to_dicts()[:5]}"
        )
    sent = summed["sent"].to_numpy()
    resp = summed["responded"].to_numpy()
    low, high = wilson_interval(resp, sent, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(sent > 0, resp / np.maximum(sent, 1), np.nan)
    rates = summed.with_columns(
        pl.Series("rate", rate, dtype=pl.Float64),
        pl.Series("ci_low", low, dtype=pl.Float64),
        pl.Series("ci_high", high, dtype=pl.Float64),
    )
    return ResponseRates(rates=rates, group_cols=tuple(group_cols), confidence=confidence)
