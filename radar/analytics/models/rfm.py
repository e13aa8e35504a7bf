"""RFM: recency, frequency and monetary quintile scores and the usual named RFM groups.

Input is one row per customer: ``customer_id``, ``recency_days`` (days since the last purchase,
as of the analysis date), ``frequency`` (number of purchases, e.g. purchase days) and
``monetary`` (spend). Scores are quintiles 1–5, 5 best:

* ``f_score`` and ``m_score``: higher value → higher score; ``r_score``: *fewer* days since the
  last purchase → higher score (recency reversed).
* Score = ``1 + floor(5 · (rank_min − 1) / n)`` with ``rank_min`` the ascending "min" rank
  (ties share the lowest rank). Equal values therefore always get the same score, scores are
  monotone in the value, and the result does not depend on row order — ties are deterministic.
  With heavy ties (e.g. many customers with frequency 1) some quintiles can be empty.
* ``fm_score = floor((f_score + m_score) / 2 + 1/2)`` (the mean, halves rounded up).

Named groups from ``r_score`` (rows) and ``fm_score`` (columns), every cell mapped once::

    R \\ FM |  1               2                   3                   4            5
    -------+---------------------------------------------------------------------------------
      5    |  new             potential loyalist  potential loyalist  champions    champions
      4    |  promising       potential loyalist  potential loyalist  loyal        loyal
      3    |  about to sleep  about to sleep      need attention      loyal        loyal
      2    |  hibernating     hibernating         at risk             at risk      cannot lose
      1    |  lost            hibernating         at risk             at risk      cannot lose

(after the widely used R×F segment grid, with F·M in place of F and "lost" for the weakest cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from radar.analytics.models.errors import InsufficientData

SEGMENTS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential loyalist",
    "new",
    "promising",
    "need attention",
    "about to sleep",
    "at risk",
    "cannot lose",
    "hibernating",
    "lost",
)

#: ``SEGMENT_GRID[r_score][fm_score - 1]`` is the named group (see the module table).
SEGMENT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new", "potential loyalist", "potential loyalist", "champions", "champions"),
    4: ("promising", "potential loyalist", "potential loyalist", "loyal", "loyal"),
    3: ("about to sleep", "about to sleep", "need attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at risk", "at risk", "cannot lose"),
    1: ("lost", "hibernating", "at risk", "at risk", "cannot lose"),
}

REQUIRED_COLUMNS: tuple[str, ...] = ("customer_id", "recency_days", "frequency", "monetary")


def segment_of(r_score: int, fm_score: int) -> str:
    """The named group for one ``(r_score, fm_score)`` cell, both in 1..5."""
    if r_score not in SEGMENT_GRID or not 1 <= fm_score <= 5:
        raise ValueError(f"r_score, fm_score: must be in 1..5, got ({r_score}, {fm_score})")
    return SEGMENT_GRID[r_score][fm_score - 1]


def _quintile(expr: pl.Expr, n: pl.Expr) -> pl.Expr:
    rank = expr.rank(method="min")
    return (1 + ((rank - 1) * 5) // n).cast(pl.Int8)


@dataclass(frozen=True)
class RfmResult:
    """Per-customer scores (``scores``) and a JSON-ready summary (``to_dict``)."""

    scores: pl.DataFrame
    as_of: date | None = None

    def segment_counts(self) -> dict[str, int]:
        """Customers per named group, every group listed (0 when empty)."""
        counts = dict(self.scores.group_by("segment").len().select("segment", "len").iter_rows())
        return {s: int(counts.get(s, 0)) for s in SEGMENTS}

    def to_dict(self) -> dict[str, Any]:
        """Counts and mean recency/frequency/monetary per group, plus the score boundaries."""
        per_segment = (
            self.scores.group_by("segment")
            .agg(
                pl.len().alias("customers"),
                pl.col("recency_days").mean().alias("mean_recency_days"),
                pl.col("frequency").mean().alias("mean_frequency"),
                pl.col("monetary").mean().alias("mean_monetary"),
            )
            .sort("segment")
        )
        bounds = {}
        for value, score in (
            ("recency_days", "r_score"),
            ("frequency", "f_score"),
            ("monetary", "m_score"),
        ):
            bounds[score] = (
                self.scores.group_by(score)
                .agg(pl.col(value).min().alias("min"), pl.col(value).max().alias("max"))
                .sort(score)
                .rename({score: "score"})
                .to_dicts()
            )
        return {
            "model": "rfm",
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "n_customers": self.scores.height,
            "segment_counts": self.segment_counts(),
            "segments": per_segment.to_dicts(),
            "score_ranges": bounds,
        }


def rfm_scores(customers: pl.DataFrame, *, as_of: date | None = None) -> RfmResult:
    """Score every customer (see module docstring); one output row per input row.

    Output columns: the inputs, ``r_score``, ``f_score``, ``m_score``, ``fm_score``,
    ``rfm_code`` (e.g. ``"545"``) and ``segment``. Raises :class:`InsufficientData` for an empty
    frame and ``ValueError`` naming the column for missing columns, nulls or negative values.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in customers.columns]
    if missing:
        raise ValueError(f"rfm: missing column(s) {missing}")
    if customers.height == 0:
        raise InsufficientData("rfm: no customers (need at least 1 customer with a purchase)")
    for col in REQUIRED_COLUMNS[1:]:
        if customers[col].null_count():
            raise ValueError(f"rfm: {col} has null values")
        if (customers[col] < 0).any():
            raise ValueError(f"rfm: {col} has negative values")
    if customers["customer_id"].is_duplicated().any():
        raise ValueError("rfm: customer_id has duplicates (need one row per customer)")

    n = pl.len()
    grid = pl.DataFrame(
        {
            "r_score": [r for r in SEGMENT_GRID for _ in range(5)],
            "fm_score": [fm for _ in SEGMENT_GRID for fm in range(1, 6)],
            "segment": [seg for r in SEGMENT_GRID for seg in SEGMENT_GRID[r]],
        },
        schema={"r_score": pl.Int8, "fm_score": pl.Int8, "segment": pl.String},
    )
    scored = (
        customers.lazy()
        .with_columns(
            _quintile(-pl.col("recency_days").cast(pl.Float64), n).alias("r_score"),
            _quintile(pl.col("frequency").cast(pl.Float64), n).alias("f_score"),
            _quintile(pl.col("monetary").cast(pl.Float64), n).alias("m_score"),
        )
        .with_columns(
            ((pl.col("f_score").cast(pl.Int16) + pl.col("m_score") + 1) // 2)
            .cast(pl.Int8)
            .alias("fm_score"),
        )
        .with_columns(
            pl.concat_str(
                pl.col("r_score").cast(pl.String),
                pl.col("f_score").cast(pl.String),
                pl.col("m_score").cast(pl.String),
            ).alias("rfm_code"),
        )
        .join(grid.lazy(), on=["r_score", "fm_score"], how="left", maintain_order="left")
        .collect()
    )
    return RfmResult(scores=scored, as_of=as_of)


def rfm_inputs_from_purchases(
    purchases: pl.DataFrame,
    as_of: date,
    *,
    customer_col: str = "customer_id",
    day_col: str = "purchase_day",
    amount_col: str = "amount",
) -> pl.DataFrame:
    """Build the RFM input from purchases on or before ``as_of``, counted per purchase day.

    ``recency_days`` = days from the last purchase day to ``as_of``; ``frequency`` = distinct
    purchase days; ``monetary`` = total spend.
    """
    missing = [c for c in (customer_col, day_col, amount_col) if c not in purchases.columns]
    if missing:
        raise ValueError(f"purchases: missing column(s) {missing}")
    day = pl.col(day_col).cast(pl.Date)
    return (
        purchases.lazy()
        .filter(day <= pl.lit(as_of))
        .group_by(pl.col(customer_col).alias("customer_id"))
        .agg(
            (pl.lit(as_of) - day.max()).dt.total_days().alias("recency_days"),
            day.n_unique().cast(pl.Int64).alias("frequency"),
            pl.col(amount_col).cast(pl.Float64).sum().alias("monetary"),
        )
        .sort("customer_id")
        .collect()
    )
