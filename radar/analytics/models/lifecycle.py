"""Lifecycle stages per period; Markov transition matrix, forecast, stationary shares, backtest.

Stages (one per customer per period, from the period the customer is first known)
---------------------------------------------------------------------------------
Per customer and period ``p`` (index in a regular grid, default calendar months):
``n`` = purchases in ``p``; ``a`` = number of periods with a purchase up to and including ``p``;
``gap`` = periods since the last period with a purchase (0 when ``n > 0``);
``prev_gap`` (only when ``n > 0``) = periods between ``p`` and the previous period with a purchase.
Thresholds (:class:`StageRules`, defaults for months): ``at_risk_after = 3``,
``lapsed_after = 6``, ``retained_after = 3``.

=============  ==============================================================================
stage          rule (first matching row wins)
=============  ==============================================================================
(absent)       periods before the customer is known (registration or first purchase)
prospect       known, never purchased (``a = 0``)
new            purchases this period and it is the first period with purchases (``a = 1``)
won_back       purchases this period after a pause of ``prev_gap ≥ lapsed_after`` periods
developing     purchases this period, ``2 ≤ a < retained_after``
retained       purchases this period, ``a ≥ retained_after``
(carried)      no purchase, ``1 ≤ gap < at_risk_after``: the stage of the last period with
               purchases is kept (a "new" customer stays new in a quiet month)
at_risk        no purchase, ``at_risk_after ≤ gap < lapsed_after``
lapsed         no purchase, ``gap ≥ lapsed_after``
=============  ==============================================================================

Everything is set-based in polars (window expressions over customers); there is no Python loop.

Markov model
------------
``Q[i, j]`` = share of observed transitions from stage i in period p to stage j in period p+1
(row-normalised counts over every customer present in both periods). A stage never observed as a
"from" stage gets a self-loop row (``Q[i, i] = 1``: absorbing, listed in ``unobserved_stages``),
so Q stays stochastic. Forecast: ``P(t+k) = P(t)·Q^k`` for the customers known at t — new arrivals
after t are not modelled (shares of today's population). Stationary distribution: the solution of
``π(Q − I) = 0, Σπ = 1`` (least squares on the stacked system); it is unique when the eigenvalue 1
of Q is simple (``stationary_unique``). With absorbing stages or several closed classes it is not
unique; the solution given is then one of them, and ``P(t)·Q^k`` for large k is the better long-run
answer for a given start.

Backtest: Q is estimated from transitions whose target period is at or before the cut, the shares
at the cut (customers known then) are forecast ``1..horizon`` periods ahead and compared with the
shares those same customers actually had; reported as the absolute error per stage and step, and
the mean absolute error (MAE) per stage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl

from radar.analytics.models.errors import InsufficientData

STAGES: tuple[str, ...] = (
    "prospect",
    "new",
    "developing",
    "retained",
    "at_risk",
    "lapsed",
    "won_back",
)
_INDEX = {s: i for i, s in enumerate(STAGES)}


@dataclass(frozen=True)
class StageRules:
    """Thresholds of the stage table, in periods (see the module docstring)."""

    at_risk_after: int = 3
    lapsed_after: int = 6
    retained_after: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.at_risk_after < self.lapsed_after:
            raise ValueError("lifecycle: need 1 ≤ at_risk_after < lapsed_after")
        if self.retained_after < 2:
            raise ValueError("lifecycle: retained_after must be at least 2")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def activity_panel(
    registrations: pl.DataFrame,
    purchases: pl.DataFrame,
    *,
    every: str = "1mo",
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> pl.DataFrame:
    """Dense panel ``customer_id, period, period_index, purchases`` from the first known period.

    ``registrations``: ``customer_id, registered_at``; ``purchases``: ``customer_id, occurred_at``
    (one row per purchase). Periods are ``occurred_at`` truncated to ``every``; the grid runs from
    ``start`` (default: the earliest period) to ``end`` (default: the latest). Customers known only
    from purchases enter at their first purchase. Events outside the grid are ignored.
    """
    for name, frame, cols in (
        ("registrations", registrations, ["customer_id", "registered_at"]),
        ("purchases", purchases, ["customer_id", "occurred_at"]),
    ):
        lacking = [c for c in cols if c not in frame.columns]
        if lacking:
            raise InsufficientData(f"lifecycle: {name} frame lacks columns {lacking}")
    regs = registrations.select(
        "customer_id", pl.col("registered_at").cast(pl.Datetime("us")).dt.truncate(every)
    ).drop_nulls()
    buys = purchases.select(
        "customer_id",
        pl.col("occurred_at").cast(pl.Datetime("us")).dt.truncate(every).alias("period"),
    ).drop_nulls()
    if regs.height + buys.height == 0:
        raise InsufficientData("lifecycle: no registrations and no purchases")
    seen = pl.concat([regs["registered_at"], buys["period"]])
    lo = _as_datetime(start, every) if start is not None else seen.min()
    hi = _as_datetime(end, every) if end is not None else seen.max()
    assert isinstance(lo, datetime) and isinstance(hi, datetime)
    grid = pl.datetime_range(lo, hi, interval=every, eager=True, time_unit="us").alias("period")
    index_of = pl.DataFrame({"period": grid}).with_row_index("period_index")
    index_of = index_of.with_columns(pl.col("period_index").cast(pl.Int64))
    counts = (
        buys.filter(pl.col("period").is_between(lo, hi))
        .group_by("customer_id", "period")
        .agg(pl.len().cast(pl.Int64).alias("purchases"))
        .join(index_of, on="period", how="left")
    )
    entry = (
        pl.concat([regs.rename({"registered_at": "period"}), counts.select(buys.columns)])
        .group_by("customer_id")
        .agg(pl.col("period").min().alias("entry"))
        .filter(pl.col("entry") <= hi)
        .with_columns(pl.max_horizontal("entry", pl.lit(lo)).alias("entry"))
        .join(index_of.rename({"period": "entry"}), on="entry", how="left")
        .sort("customer_id")
        .with_row_index("_code")
    )
    counts = counts.join(entry.select("customer_id", "_code"), on="customer_id", how="inner")
    panel = (
        entry.select(
            "_code",
            pl.int_ranges("period_index", grid.len(), dtype=pl.Int64).alias("period_index"),
        )
        .explode("period_index")
        .join(
            counts.select("_code", "period_index", "purchases"),
            on=["_code", "period_index"],
            how="left",
        )
        .sort("_code", "period_index")
    )
    return panel.select(
        entry["customer_id"].gather(panel["_code"]).alias("customer_id"),
        grid.gather(panel["period_index"]).alias("period"),
        "period_index",
        pl.col("purchases").fill_null(0),
    )


def assign_stages(panel: pl.DataFrame, rules: StageRules | None = None) -> pl.DataFrame:
    """Add ``stage`` to a panel with ``customer_id, period_index, purchases`` (see the table).

    The panel must hold every period of a customer from the first known one (as
    :func:`activity_panel` builds it); stage is a string from :data:`STAGES`.
    """
    r = rules or StageRules()
    lacking = [c for c in ("customer_id", "period_index", "purchases") if c not in panel.columns]
    if lacking:
        raise InsufficientData(f"lifecycle: activity panel lacks columns {lacking}")
    active = pl.col("purchases") > 0
    by = "customer_id"
    df = panel.sort(by, "period_index").with_columns(
        active.cast(pl.Int64).cum_sum().over(by).alias("_a"),
        pl.when(active).then(pl.col("period_index")).forward_fill().over(by).alias("_last"),
    )
    df = df.with_columns(
        (pl.col("period_index") - pl.col("_last")).alias("_gap"),
        (pl.col("period_index") - pl.col("_last").shift(1).over(by)).alias("_prev_gap"),
    )
    on_purchase = (
        pl.when(pl.col("_a") == 1)
        .then(pl.lit("new"))
        .when(pl.col("_prev_gap") >= r.lapsed_after)
        .then(pl.lit("won_back"))
        .when(pl.col("_a") < r.retained_after)
        .then(pl.lit("developing"))
        .otherwise(pl.lit("retained"))
    )
    df = df.with_columns(
        pl.when(active).then(on_purchase).forward_fill().over(by).alias("_carried")
    )
    stage = (
        pl.when(pl.col("_a") == 0)
        .then(pl.lit("prospect"))
        .when(pl.col("_gap") >= r.lapsed_after)
        .then(pl.lit("lapsed"))
        .when(pl.col("_gap") >= r.at_risk_after)
        .then(pl.lit("at_risk"))
        .otherwise(pl.col("_carried"))
    )
    return df.with_columns(stage.alias("stage")).drop(
        "_a", "_last", "_gap", "_prev_gap", "_carried"
    )


@dataclass(frozen=True, eq=False)
class TransitionMatrix:
    """Q (rows: from, columns: to, in :data:`STAGES` order) with the counts it came from."""

    q: np.ndarray
    counts: np.ndarray
    unobserved_stages: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": list(STAGES),
            "q": self.q.tolist(),
            "counts": self.counts.astype(int).tolist(),
            "unobserved_stages": list(self.unobserved_stages),
        }


def transition_counts(stages: pl.DataFrame, *, until_index: int | None = None) -> np.ndarray:
    """Counts of stage i at period p → stage j at p+1 (both present), optionally only for target
    periods ``≤ until_index``."""
    ordered = stages.select("customer_id", "period_index", "stage").sort(
        "customer_id", "period_index"
    )
    follows = (pl.col("customer_id").shift(-1) == pl.col("customer_id")) & (
        pl.col("period_index").shift(-1) == pl.col("period_index") + 1
    )
    pairs = ordered.select(
        "period_index",
        pl.col("stage").alias("from"),
        pl.col("stage").shift(-1).alias("to"),
        follows.alias("_ok"),
    ).filter(pl.col("_ok"))
    agg = pairs.group_by("from", "to").agg(pl.len().alias("n"))
    counts = np.zeros((len(STAGES), len(STAGES)))
    for f, t, n in agg.iter_rows():  # at most 49 rows
        counts[_INDEX[f], _INDEX[t]] = n
    return counts


def transition_matrix(counts: np.ndarray) -> TransitionMatrix:
    """Row-normalise counts; unobserved rows become self-loops (see the module docstring)."""
    counts = np.asarray(counts, dtype=float)
    totals = counts.sum(axis=1)
    q = np.zeros_like(counts)
    seen = totals > 0
    q[seen] = counts[seen] / totals[seen, None]
    unseen = np.flatnonzero(~seen)
    q[unseen, unseen] = 1.0
    names = (
        tuple(STAGES[i] for i in unseen)
        if counts.shape[0] == len(STAGES)
        else tuple(str(i) for i in unseen)
    )
    return TransitionMatrix(q=q, counts=counts, unobserved_stages=names)


def forecast_shares(p0: np.ndarray, q: np.ndarray, steps: int) -> np.ndarray:
    """Rows k = 0..steps of ``P(t+k) = P(t)·Q^k``."""
    out = [np.asarray(p0, dtype=float)]
    for _ in range(steps):
        out.append(out[-1] @ q)
    return np.vstack(out)


def stationary_distribution(q: np.ndarray) -> tuple[np.ndarray, bool]:
    """(π with πQ = π and Σπ = 1, whether it is unique); see the module docstring."""
    m = q.shape[0]
    a = np.vstack([q.T - np.eye(m), np.ones((1, m))])
    b = np.append(np.zeros(m), 1.0)
    pi = np.linalg.lstsq(a, b, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)
    pi = pi / pi.sum()
    eig = np.linalg.eigvals(q)
    unique = int(np.sum(np.abs(eig - 1.0) < 1e-9)) == 1
    return pi, unique


def stage_shares(stages: pl.DataFrame, period_index: int) -> np.ndarray:
    """Share of each stage among customers present at ``period_index``."""
    return _shares(stages.filter(pl.col("period_index") == period_index))


def _shares(rows: pl.DataFrame) -> np.ndarray:
    counts = np.zeros(len(STAGES))
    for s, n in rows.group_by("stage").agg(pl.len()).iter_rows():
        counts[_INDEX[s]] = n
    total = counts.sum()
    return counts / total if total else counts


@dataclass(frozen=True, eq=False)
class Backtest:
    """Forecast from the cut vs what the same customers did; ``errors`` is tidy
    (step, stage, forecast, actual, abs_error)."""

    cut_index: int
    horizon: int
    errors: pl.DataFrame
    mae: dict[str, float]
    mae_overall: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "cut_index": self.cut_index,
            "horizon": self.horizon,
            "errors": self.errors.to_dicts(),
            "mae": dict(self.mae),
            "mae_overall": self.mae_overall,
        }


def backtest(stages: pl.DataFrame, cut_index: int, horizon: int) -> Backtest:
    """Estimate Q up to ``cut_index``, forecast ``horizon`` periods, compare with actual shares."""
    last = int(stages["period_index"].to_numpy().max())
    if cut_index + horizon > last:
        raise InsufficientData(
            f"lifecycle: backtest needs {horizon} periods after the cut (index {cut_index}); "
            f"the data ends {last - cut_index} periods after it"
        )
    counts = transition_counts(stages, until_index=cut_index)
    if counts.sum() == 0:
        raise InsufficientData("lifecycle: no stage transitions before the backtest cut")
    q = transition_matrix(counts).q
    cohort = stages.filter(pl.col("period_index") == cut_index).select("customer_id")
    if cohort.height == 0:
        raise InsufficientData(f"lifecycle: no customers known at the cut (index {cut_index})")
    followed = stages.join(cohort, on="customer_id", how="semi")
    fc = forecast_shares(_shares(followed.filter(pl.col("period_index") == cut_index)), q, horizon)
    rows = []
    for k in range(1, horizon + 1):  # one loop per period, not per customer
        actual = _shares(followed.filter(pl.col("period_index") == cut_index + k))
        for i, s in enumerate(STAGES):
            rows.append((k, s, float(fc[k, i]), float(actual[i])))
    errors = pl.DataFrame(
        rows, schema=["step", "stage", "forecast", "actual"], orient="row"
    ).with_columns((pl.col("forecast") - pl.col("actual")).abs().alias("abs_error"))
    mae_by = errors.group_by("stage").agg(pl.col("abs_error").mean())
    mae = dict(zip(mae_by["stage"].to_list(), mae_by["abs_error"].to_list(), strict=True))
    return Backtest(
        cut_index=cut_index,
        horizon=horizon,
        errors=errors,
        mae={s: float(mae[s]) for s in STAGES},
        mae_overall=float(errors["abs_error"].to_numpy().mean()),
    )


@dataclass(frozen=True, eq=False)
class LifecycleAnalysis:
    """Result of :func:`analyse_lifecycle`; the per-customer ``stages`` frame is an attribute,
    ``current`` holds each customer's stage in the last period."""

    rules: StageRules
    periods: int
    last_period: datetime | None
    shares: np.ndarray
    transitions: TransitionMatrix
    forecast: np.ndarray
    stationary: np.ndarray
    stationary_unique: bool
    backtest: Backtest | None
    stages: pl.DataFrame
    current: pl.DataFrame
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": self.rules.to_dict(),
            "stages": list(STAGES),
            "periods": self.periods,
            "last_period": self.last_period.isoformat() if self.last_period else None,
            "shares": dict(zip(STAGES, self.shares.tolist(), strict=True)),
            "transitions": self.transitions.to_dict(),
            "forecast": [
                {"step": k, **dict(zip(STAGES, row.tolist(), strict=True))}
                for k, row in enumerate(self.forecast)
            ],
            "stationary": dict(zip(STAGES, self.stationary.tolist(), strict=True)),
            "stationary_unique": self.stationary_unique,
            "backtest": self.backtest.to_dict() if self.backtest else None,
            "notes": list(self.notes),
        }


def analyse_lifecycle(
    panel: pl.DataFrame,
    *,
    rules: StageRules | None = None,
    forecast_steps: int = 6,
    backtest_horizon: int = 3,
) -> LifecycleAnalysis:
    """Stages, Q from all transitions, forecast from the last period, stationary shares and a
    backtest with the cut ``backtest_horizon`` periods before the end (skipped with a note when
    there is too little history)."""
    r = rules or StageRules()
    stages = assign_stages(panel, r)
    if stages.height == 0:
        raise InsufficientData("lifecycle: the activity panel is empty")
    counts = transition_counts(stages)
    if counts.sum() == 0:
        raise InsufficientData(
            "lifecycle: no period-to-period transitions (need at least two periods of history)"
        )
    tm = transition_matrix(counts)
    index = stages["period_index"].to_numpy()
    last, first = int(index.max()), int(index.min())
    shares = stage_shares(stages, last)
    pi, unique = stationary_distribution(tm.q)
    notes: list[str] = []
    bt: Backtest | None = None
    try:
        bt = backtest(stages, last - backtest_horizon, backtest_horizon)
    except InsufficientData as exc:
        notes.append(f"backtest skipped: {exc}")
    current = stages.filter(pl.col("period_index") == last).select(
        "customer_id", *(["period"] if "period" in stages.columns else []), "stage"
    )
    last_period = None
    if "period" in stages.columns:
        value = stages.filter(pl.col("period_index") == last)["period"][0]
        last_period = value if isinstance(value, datetime) else None
    return LifecycleAnalysis(
        rules=r,
        periods=last - first + 1,
        last_period=last_period,
        shares=shares,
        transitions=tm,
        forecast=forecast_shares(shares, tm.q, forecast_steps),
        stationary=pi,
        stationary_unique=unique,
        backtest=bt,
        stages=stages,
        current=current,
        notes=tuple(notes),
    )


def _as_datetime(value: date | datetime, every: str) -> datetime:
    dt = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    out = pl.Series([dt]).cast(pl.Datetime("us")).dt.truncate(every)[0]
    assert isinstance(out, datetime)
    return out
