"""Churn as survival: Kaplan–Meier curves, a Cox model, and per-customer churn risk (lifelines).

Churn definition (:class:`ChurnDefinition`, a configurable setting)
-------------------------------------------------------------------
Time runs from ``first_seen`` (day 0 of the relationship); durations are in days (float).

- **Contractual customers** (``contractual`` true) churn at an explicit cancellation — the
  ``contractual_event`` type (default ``contract.cancelled``) whose time the feature layer puts in
  ``cancelled_at``. Churned: ``duration = cancelled_at − first_seen``. Not (yet) cancelled at
  ``as_of``: censored at ``as_of`` (``duration = as_of − first_seen``). A cancellation after
  ``as_of`` is ignored (the view as of that moment).
- **Non-contractual customers** churn silently. Convention: the churn TIME is the last activity,
  and churn is OBSERVED when ``as_of − last_activity > inactivity_days`` (default 180). A customer
  still active is censored at ``as_of − inactivity_days`` (not at ``as_of``): that is the last
  moment at which a churn could already have been observed, so censoring is administrative and
  independent of the outcome (censoring at ``as_of`` would count the final ``inactivity_days`` as
  survived and bias S(t) upward). Customers who arrived less than ``inactivity_days`` before
  ``as_of`` get duration 0 (censored) and add nothing to the estimates until they are older.
  A missing ``last_activity`` counts as activity at ``first_seen``.

Rows without ``first_seen`` or first seen after ``as_of`` are left out.

Models
------
- :func:`kaplan_meier` — S(t) overall (group ``"all"``) and per group, with 95 % CIs (lifelines'
  exponential Greenwood), as a tidy frame ``group, t, survival, ci_lower, ci_upper, at_risk``.
- :func:`fit_cox` — Cox proportional hazards (lifelines ``CoxPHFitter``, ``penalizer=0.01`` for
  stability): hazard ratios with 95 % CIs and p-values, and the concordance index. String columns
  are one-hot encoded against their most frequent value. Above ``max_fit_rows`` customers the model
  is fitted on a seeded random sample of that many (the estimates are the same up to sampling
  noise; fitting cost grows faster than linearly) and then applied to all customers.
- :meth:`CoxModel.predict` — for customers not churned, with ``age = as_of − first_seen``
  (both kinds; for non-contractual customers "still active" is read as surviving to now) and
  ``S(t|x) = exp(−H0(t)·exp((x − x̄)·β))``:
  ``churn_probability = 1 − S(age + horizon_days | x) / S(age | x)`` (default 90 days) and
  ``expected_remaining_days = ∫₀ᴴ S(age + u | x) / S(age | x) du`` — the mean remaining lifetime
  RESTRICTED to ``H = lifetime_horizon_days`` (default 1095, three years; an unrestricted mean does
  not exist when S does not reach 0), integrated by the trapezoid rule on a 7-day grid.
  The baseline H0 is held flat after the longest observed follow-up (no information there), so for
  customers older than that the risk is a lower bound; ``beyond_follow_up`` flags them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from lifelines import CoxPHFitter, KaplanMeierFitter
from threadpoolctl import threadpool_limits

from radar.analytics.models.errors import InsufficientData

MIN_COX_CUSTOMERS = 10
MIN_COX_EVENTS = 5
_DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class ChurnDefinition:
    """When a customer counts as churned; see the module docstring for the exact convention."""

    contractual_event: str = "contract.cancelled"
    inactivity_days: int = 180

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def survival_data(
    customers: pl.DataFrame,
    definition: ChurnDefinition | None = None,
    *,
    as_of: datetime | None = None,
) -> pl.DataFrame:
    """Per-customer ``duration`` (days), ``event`` (churned), ``age_days`` and ``churn_kind``.

    ``customers`` has ``customer_id``, ``first_seen``, ``last_activity``, ``cancelled_at``,
    ``contractual`` and ``as_of`` (datetimes; ``as_of`` may instead be given as the argument, which
    then wins). Other columns (covariates, segment) are passed through.
    """
    d = definition or ChurnDefinition()
    need = ["customer_id", "first_seen", "last_activity", "cancelled_at", "contractual"]
    if as_of is None:
        need.append("as_of")
    lacking = [c for c in need if c not in customers.columns]
    if lacking:
        raise InsufficientData(f"churn: the customer frame lacks columns {lacking}")
    frame = customers.with_columns(
        (pl.lit(as_of) if as_of is not None else pl.col("as_of")).alias("as_of")
    )
    ts = pl.Datetime("us")
    first = pl.col("first_seen").cast(ts)
    now = pl.col("as_of").cast(ts)
    cancelled = pl.col("cancelled_at").cast(ts)
    cancelled = pl.when(cancelled <= now).then(cancelled)
    last = pl.min_horizontal(pl.coalesce(pl.col("last_activity").cast(ts), first), now)
    horizon = now - pl.duration(days=d.inactivity_days)
    contractual = pl.col("contractual").fill_null(False).cast(pl.Boolean)
    event = (
        pl.when(contractual).then(cancelled.is_not_null()).otherwise(last < horizon).alias("event")
    )
    end = (
        pl.when(contractual)
        .then(pl.coalesce(cancelled, now))
        .otherwise(pl.when(last < horizon).then(last).otherwise(pl.max_horizontal(horizon, first)))
    )
    days = (end - first).dt.total_microseconds() / _DAY_US
    return (
        frame.filter(first.is_not_null() & (first <= now))
        .with_columns(
            pl.max_horizontal(days, pl.lit(0.0)).alias("duration"),
            event,
            ((now - first).dt.total_microseconds() / _DAY_US).alias("age_days"),
        )
        .with_columns(
            pl.when(pl.col("event"))
            .then(pl.when(contractual).then(pl.lit("cancelled")).otherwise(pl.lit("inactive")))
            .alias("churn_kind")
        )
    )


def kaplan_meier(
    data: pl.DataFrame,
    group_column: str | None = None,
    *,
    duration_column: str = "duration",
    event_column: str = "event",
    step_days: float | None = 1.0,
) -> pl.DataFrame:
    """Tidy Kaplan–Meier curves: ``group, t, survival, ci_lower, ci_upper, at_risk``.

    Always has the ``"all"`` group; with ``group_column`` also one curve per (non-null) value.
    The curves are read on a grid ``t = 0, step_days, 2·step_days, …`` up to the longest duration
    (the step function's value at each t; ``at_risk`` = customers with duration ≥ t), which keeps
    the frame small when durations are continuous; ``step_days=None`` gives every event time.
    """
    _require(data, [duration_column, event_column], "Kaplan–Meier")
    if data.height < 2:
        raise InsufficientData(
            f"churn: Kaplan–Meier needs at least 2 customers with a duration, got {data.height}"
        )
    grid = None
    if step_days is not None:
        longest = float(data[duration_column].cast(pl.Float64).to_numpy().max())
        grid = np.arange(0.0, longest + step_days, step_days)
    parts = [_km_curve("all", data, duration_column, event_column, grid)]
    if group_column is not None:
        _require(data, [group_column], "Kaplan–Meier")
        sub = data.filter(pl.col(group_column).is_not_null())
        for (value,), part in sorted(
            sub.partition_by(group_column, as_dict=True).items(), key=lambda kv: str(kv[0])
        ):
            parts.append(_km_curve(str(value), part, duration_column, event_column, grid))
    return pl.concat(parts)


def median_survival(curves: pl.DataFrame) -> dict[str, float | None]:
    """Per group the first t with S(t) ≤ 0.5, or None when the curve stays above one half."""
    med = curves.filter(pl.col("survival") <= 0.5).group_by("group").agg(pl.col("t").min())
    found = dict(zip(med["group"].to_list(), med["t"].to_list(), strict=True))
    return {g: found.get(g) for g in curves["group"].unique(maintain_order=True).to_list()}


def _km_curve(
    label: str, part: pl.DataFrame, dcol: str, ecol: str, grid: np.ndarray | None
) -> pl.DataFrame:
    durations = part[dcol].cast(pl.Float64).to_numpy()
    if grid is not None:  # a group's curve ends at its own longest duration
        grid = grid[grid <= durations.max()]
    kmf = KaplanMeierFitter().fit(durations, part[ecol].cast(pl.Boolean).to_numpy(), timeline=grid)
    sf = kmf.survival_function_.iloc[:, 0].to_numpy()
    ci = kmf.confidence_interval_survival_function_.to_numpy()
    t = kmf.survival_function_.index.to_numpy().astype(float)
    ordered = np.sort(durations)
    at_risk = ordered.size - np.searchsorted(ordered, t, side="left")
    return pl.DataFrame(
        {
            "group": [label] * t.size,
            "t": t,
            "survival": sf.astype(float),
            "ci_lower": ci[:, 0].astype(float),
            "ci_upper": ci[:, 1].astype(float),
            "at_risk": at_risk.astype(np.int64),
        }
    )


@dataclass(frozen=True)
class HazardRatio:
    """exp(β) of one (encoded) covariate with its 95 % CI and p-value."""

    covariate: str
    coef: float
    hazard_ratio: float
    ci_lower: float
    ci_upper: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class CoxModel:
    """A fitted Cox model that can predict for any customer frame with the same covariates."""

    covariates: tuple[str, ...]
    encoded: tuple[str, ...]
    levels: dict[str, tuple[str, ...]]
    means: np.ndarray
    coefficients: np.ndarray
    baseline_t: np.ndarray
    baseline_cumhaz: np.ndarray
    hazard_ratios: tuple[HazardRatio, ...]
    concordance: float
    n_fit: int
    n_events: int
    n_customers: int
    penalizer: float
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "covariates": list(self.covariates),
            "hazard_ratios": [h.to_dict() for h in self.hazard_ratios],
            "concordance": self.concordance,
            "n_fit": self.n_fit,
            "n_events": self.n_events,
            "n_customers": self.n_customers,
            "penalizer": self.penalizer,
            "max_follow_up_days": float(self.baseline_t[-1]) if self.baseline_t.size else 0.0,
            "notes": list(self.notes),
        }

    def cumulative_hazard(self, t: np.ndarray, partial_hazard: np.ndarray) -> np.ndarray:
        """H(t|x) for arrays broadcast together (step function, flat after the last time)."""
        idx = np.searchsorted(self.baseline_t, t, side="right") - 1
        h0 = np.where(idx >= 0, self.baseline_cumhaz[np.clip(idx, 0, None)], 0.0)
        return np.asarray(h0 * partial_hazard)

    def partial_hazard(self, data: pl.DataFrame) -> np.ndarray:
        x = _design(data, self.covariates, self.levels)
        return np.asarray(np.exp((x - self.means) @ self.coefficients))

    def predict(
        self,
        data: pl.DataFrame,
        *,
        horizon_days: float = 90.0,
        lifetime_horizon_days: float = 1095.0,
        age_column: str = "age_days",
        grid_days: float = 7.0,
    ) -> pl.DataFrame:
        """``customer_id, age_days, partial_hazard, churn_probability, expected_remaining_days,
        beyond_follow_up`` for customers not churned (``event`` false when that column exists)."""
        alive = data.filter(~pl.col("event")) if "event" in data.columns else data
        _require(alive, ["customer_id", age_column], "churn prediction")
        ph = self.partial_hazard(alive)
        age = alive[age_column].cast(pl.Float64).to_numpy()
        h_age = self.cumulative_hazard(age, ph)
        churn = 1.0 - np.exp(-(self.cumulative_hazard(age + horizon_days, ph) - h_age))
        grid = np.append(np.arange(0.0, lifetime_horizon_days, grid_days), lifetime_horizon_days)
        remaining = np.zeros(age.size)
        chunk = 20_000
        for s in range(0, age.size, chunk):  # chunks bound the (customers × grid) matrix
            a, p, h = age[s : s + chunk, None], ph[s : s + chunk, None], h_age[s : s + chunk, None]
            cond = np.exp(-(self.cumulative_hazard(a + grid[None, :], p) - h))
            remaining[s : s + chunk] = np.trapezoid(cond, grid, axis=1)
        last_t = self.baseline_t[-1] if self.baseline_t.size else 0.0
        return alive.select("customer_id", age_column).with_columns(
            pl.Series("partial_hazard", ph),
            pl.Series("churn_probability", np.clip(churn, 0.0, 1.0)),
            pl.Series("expected_remaining_days", remaining),
            pl.Series("beyond_follow_up", age + horizon_days > last_t),
        )


def fit_cox(
    data: pl.DataFrame,
    covariates: Sequence[str],
    *,
    duration_column: str = "duration",
    event_column: str = "event",
    penalizer: float = 0.01,
    max_fit_rows: int = 20_000,
    seed: int = 0,
) -> CoxModel:
    """Fit a Cox model on ``data`` (see :func:`survival_data`); see the module docstring."""
    _require(data, [duration_column, event_column, *covariates], "the Cox model")
    n_events_all = int(data[event_column].cast(pl.Int64).sum() or 0)
    if data.height < MIN_COX_CUSTOMERS:
        raise InsufficientData(
            f"churn: the Cox model needs at least {MIN_COX_CUSTOMERS} customers, got {data.height}"
        )
    if n_events_all < MIN_COX_EVENTS:
        raise InsufficientData(
            f"churn: the Cox model needs at least {MIN_COX_EVENTS} observed churns, "
            f"got {n_events_all}"
        )
    notes: list[str] = []
    fit_rows = data
    if data.height > max_fit_rows:
        fit_rows = data.sample(n=max_fit_rows, seed=seed)
        notes.append(f"fitted on a random sample of {max_fit_rows} of {data.height} customers")
    levels: dict[str, tuple[str, ...]] = {}
    for c in covariates:
        dtype = data.schema[c]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            counts = fit_rows[c].cast(pl.String).drop_nulls().value_counts(sort=True)
            levels[c] = tuple(sorted(counts[c].to_list()[1:]))  # most frequent = reference
    x = _design(fit_rows, covariates, levels)
    encoded = _encoded_names(covariates, levels)
    varying = x.std(axis=0) > 1e-12
    if not varying.all():
        dropped = [encoded[i] for i in np.flatnonzero(~varying)]
        notes.append(f"constant covariates left out: {dropped}")
    if not varying.any():
        raise InsufficientData(f"churn: no covariate varies across customers ({list(covariates)})")
    cols = [encoded[i] for i in np.flatnonzero(varying)]
    frame = pd.DataFrame(x[:, varying], columns=cols)
    frame["_duration"] = fit_rows[duration_column].cast(pl.Float64).to_numpy()
    frame["_event"] = fit_rows[event_column].cast(pl.Int64).to_numpy()
    with threadpool_limits(limits=1):  # small matrices: BLAS threads only contend
        cph = CoxPHFitter(penalizer=penalizer).fit(frame, "_duration", "_event")
    summ = cph.summary
    ratios = tuple(
        HazardRatio(
            covariate=c,
            coef=float(summ.loc[c, "coef"]),
            hazard_ratio=float(summ.loc[c, "exp(coef)"]),
            ci_lower=float(summ.loc[c, "exp(coef) lower 95%"]),
            ci_upper=float(summ.loc[c, "exp(coef) upper 95%"]),
            p_value=float(summ.loc[c, "p"]),
        )
        for c in cols
    )
    beta = np.zeros(len(encoded))
    beta[varying] = cph.params_.loc[cols].to_numpy()
    base = cph.baseline_cumulative_hazard_
    return CoxModel(
        covariates=tuple(covariates),
        encoded=tuple(encoded),
        levels=levels,
        means=x.mean(axis=0),
        coefficients=beta,
        baseline_t=base.index.to_numpy().astype(float),
        baseline_cumhaz=base.iloc[:, 0].to_numpy().astype(float),
        hazard_ratios=ratios,
        concordance=float(cph.concordance_index_),
        n_fit=fit_rows.height,
        n_events=int(frame["_event"].sum()),
        n_customers=data.height,
        penalizer=penalizer,
        notes=tuple(notes),
    )


@dataclass(frozen=True, eq=False)
class ChurnAnalysis:
    """Everything of :func:`analyse_churn`. ``to_dict`` holds the curves, medians, the Cox model
    and a summary of the predictions; the per-customer ``predictions`` frame is an attribute."""

    definition: ChurnDefinition
    n_customers: int
    n_churned: int
    curves: pl.DataFrame
    cox: CoxModel | None
    predictions: pl.DataFrame | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        pred = None
        if self.predictions is not None and self.predictions.height:
            p = self.predictions
            pred = {
                "n": p.height,
                "mean_churn_probability": float(p["churn_probability"].to_numpy().mean()),
                "mean_expected_remaining_days": float(
                    p["expected_remaining_days"].to_numpy().mean()
                ),
                "n_beyond_follow_up": int(p["beyond_follow_up"].sum()),
            }
        return {
            "definition": self.definition.to_dict(),
            "n_customers": self.n_customers,
            "n_churned": self.n_churned,
            "kaplan_meier": self.curves.to_dicts(),
            "median_survival_days": median_survival(self.curves),
            "cox": self.cox.to_dict() if self.cox is not None else None,
            "predictions": pred,
            "notes": list(self.notes),
        }


def analyse_churn(
    customers: pl.DataFrame,
    covariates: Sequence[str],
    *,
    definition: ChurnDefinition | None = None,
    group_column: str | None = None,
    as_of: datetime | None = None,
    horizon_days: float = 90.0,
    lifetime_horizon_days: float = 1095.0,
    seed: int = 0,
) -> ChurnAnalysis:
    """Build survival data, Kaplan–Meier curves, the Cox model and per-customer predictions.

    The Cox part is skipped with a note (``cox``/``predictions`` None) when there are too few
    churns for it; too few customers for any curve raises :class:`InsufficientData`.
    """
    d = definition or ChurnDefinition()
    data = survival_data(customers, d, as_of=as_of)
    curves = kaplan_meier(data, group_column)
    notes: list[str] = []
    cox: CoxModel | None = None
    predictions: pl.DataFrame | None = None
    try:
        cox = fit_cox(data, covariates, seed=seed)
    except InsufficientData as exc:
        notes.append(str(exc))
    if cox is not None:
        predictions = cox.predict(
            data, horizon_days=horizon_days, lifetime_horizon_days=lifetime_horizon_days
        )
    return ChurnAnalysis(
        definition=d,
        n_customers=data.height,
        n_churned=int(data["event"].sum()),
        curves=curves,
        cox=cox,
        predictions=predictions,
        notes=tuple(notes),
    )


def _design(
    data: pl.DataFrame, covariates: Sequence[str], levels: dict[str, tuple[str, ...]]
) -> np.ndarray:
    exprs: list[pl.Expr] = []
    for c in covariates:
        if c in levels:
            col = pl.col(c).cast(pl.String)
            exprs.extend(
                (col == v).fill_null(False).cast(pl.Float64).alias(f"{c}={v}") for v in levels[c]
            )
        else:
            exprs.append(pl.col(c).cast(pl.Float64))
    if not exprs:
        return np.zeros((data.height, 0))
    x = np.asarray(data.select(exprs).to_numpy(), dtype=float).reshape(data.height, -1)
    if np.isnan(x).any():
        raise InsufficientData(
            f"churn: covariates have missing values; fill them first ({list(covariates)})"
        )
    return x


def _encoded_names(covariates: Sequence[str], levels: dict[str, tuple[str, ...]]) -> list[str]:
    out: list[str] = []
    for c in covariates:
        if c in levels:
            out.extend(f"{c}={v}" for v in levels[c])
        else:
            out.append(c)
    return out


def _require(data: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    lacking = [c for c in columns if c not in data.columns]
    if lacking:
        raise InsufficientData(f"churn: {what} needs columns {lacking}")
