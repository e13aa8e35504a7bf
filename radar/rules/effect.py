"""The measured effect of each rule: treated (planned) vs hold-out success, lift and its CI.

Input: a frame of decisions (``action_id, rule_id, rule_version, customer_id, status,
decided_at``; only ``planned`` and ``held_out`` rows are used) and a frame of outcome events
(``customer_id, type, occurred_at`` and optionally ``response``). A decision is a *success* when
the customer has an outcome of the rule's ``success.event`` type (with ``success.response``, when
the rule names one) in ``decided_at < occurred_at <= decided_at + within_days``. The unit is the
decision: a customer decided on in two runs counts twice.

Per rule (and version), the treated success rate ``p1`` (planned) is compared with the hold-out
rate ``p0``: ``lift = p1 - p0`` with a Newcombe hybrid-score interval (method 10 of Newcombe 1998,
built from Wilson intervals; sound for small counts and rates near 0 or 1), and
``lift_ratio = p1 / p0``. ``incremental_successes = lift * treated`` estimates the successes the
contacts caused; ``contacts`` is the number of planned actions spent.

With ``as_of``, only *mature* decisions (whose success window has closed by ``as_of``) count, so a
young rule is not judged on windows still open. Timestamps without a zone are taken as UTC.

Note: a success event that only treated customers can produce (``campaign.responded`` to the
rule's own campaign) makes hold-out success 0 by construction; an outcome both groups can reach
(``purchase``) measures the rule's real effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from radar.rules.loader import RuleSet
from radar.rules.schema import Success

EFFECT_COLUMNS = (
    "rule_id",
    "rule_version",
    "event",
    "response",
    "within_days",
    "treated",
    "treated_successes",
    "treated_rate",
    "holdout",
    "holdout_successes",
    "holdout_rate",
    "lift",
    "lift_low",
    "lift_high",
    "lift_ratio",
    "significant",
    "incremental_successes",
    "contacts",
)


def _success_frame(success: Mapping[str, Success] | RuleSet) -> pl.DataFrame:
    if isinstance(success, RuleSet):
        defs = {r.id: r.rule.success for r in success.rules if r.rule.success is not None}
    else:
        defs = dict(success)
    return pl.DataFrame(
        {
            "rule_id": list(defs),
            "event": [s.event for s in defs.values()],
            "within_days": [s.within_days for s in defs.values()],
            "response": [s.response for s in defs.values()],
        },
        schema={
            "rule_id": pl.String,
            "event": pl.String,
            "within_days": pl.Int64,
            "response": pl.String,
        },
    )


def _utc(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    expr = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return expr.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    return expr.cast(pl.Datetime("us", "UTC"))


def _wilson(k: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def newcombe_interval(
    k1: Any, n1: Any, k0: Any, n0: Any, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference ``k1/n1 - k0/n0`` and its Newcombe hybrid-score interval (vectorised).

    Returns ``(difference, low, high)`` as float arrays; NaN where a group is empty.
    """
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    k1a, n1a = np.asarray(k1, dtype=float), np.asarray(n1, dtype=float)
    k0a, n0a = np.asarray(k0, dtype=float), np.asarray(n0, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p0 = k1a / n1a, k0a / n0a
        l1, u1 = _wilson(k1a, n1a, z)
        l0, u0 = _wilson(k0a, n0a, z)
        d = p1 - p0
        low = d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
        high = d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return d, low, high


def mark_successes(
    decisions: pl.DataFrame,
    outcomes: pl.DataFrame,
    success: Mapping[str, Success] | RuleSet,
    *,
    as_of: datetime | None = None,
) -> pl.DataFrame:
    """The planned and held-out decisions of rules with a success definition, each with
    ``success`` (bool), ``event``, ``response``, ``within_days`` and ``window_end``; with
    ``as_of``, only those whose window has closed."""
    defs = _success_frame(success)
    d = (
        decisions.filter(pl.col("status").cast(pl.String).is_in(["planned", "held_out"]))
        .with_columns(
            pl.col("rule_id").cast(pl.String),
            pl.col("rule_version").cast(pl.String),
            pl.col("status").cast(pl.String),
            pl.col("customer_id").cast(pl.String),
            pl.col("action_id").cast(pl.String),
            _utc(decisions, "decided_at").alias("decided_at"),
        )
        .join(defs, on="rule_id", how="inner")
        .with_columns(
            (pl.col("decided_at") + pl.duration(days=pl.col("within_days"))).alias("window_end")
        )
    )
    if as_of is not None:
        moment = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        d = d.filter(pl.col("window_end") <= pl.lit(moment.astimezone(UTC)))
    if "response" in outcomes.columns:
        response = pl.col("response").cast(pl.String)
    else:
        response = pl.lit(None, dtype=pl.String)
    events = outcomes.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("type").cast(pl.String).alias("event"),
        _utc(outcomes, "occurred_at").alias("occurred_at"),
        response.alias("outcome_response"),
    ).filter(pl.col("event").is_in(defs["event"].unique().implode()))
    hits = (
        d.select("action_id", "customer_id", "event", "response", "decided_at", "window_end")
        .join(events, on=["customer_id", "event"], how="inner")
        .filter(
            (pl.col("occurred_at") > pl.col("decided_at"))
            & (pl.col("occurred_at") <= pl.col("window_end"))
            & (pl.col("response").is_null() | (pl.col("outcome_response") == pl.col("response")))
        )
        .select("action_id")
        .unique()
    )
    return d.with_columns(pl.col("action_id").is_in(hits["action_id"].implode()).alias("success"))


def measure_effect(
    decisions: pl.DataFrame,
    outcomes: pl.DataFrame,
    success: Mapping[str, Success] | RuleSet,
    *,
    as_of: datetime | None = None,
    confidence: float = 0.95,
    by_version: bool = True,
) -> pl.DataFrame:
    """The effect of each rule (per version unless ``by_version=False``): one row per rule with
    :data:`EFFECT_COLUMNS`. ``success`` is the rule set, or a mapping rule id → success
    definition; rules without one are not measured."""
    marked = mark_successes(decisions, outcomes, success, as_of=as_of)
    keys = ["rule_id", "rule_version"] if by_version else ["rule_id"]
    treated = pl.col("status") == "planned"
    held = pl.col("status") == "held_out"
    grouped = (
        marked.group_by(keys)
        .agg(
            pl.col("event").first(),
            pl.col("response").first(),
            pl.col("within_days").first(),
            treated.sum().alias("treated"),
            (treated & pl.col("success")).sum().alias("treated_successes"),
            held.sum().alias("holdout"),
            (held & pl.col("success")).sum().alias("holdout_successes"),
        )
        .sort(keys)
    )
    if not by_version:
        grouped = grouped.with_columns(pl.lit(None, dtype=pl.String).alias("rule_version"))
    d, low, high = newcombe_interval(
        grouped["treated_successes"].to_numpy(),
        grouped["treated"].to_numpy(),
        grouped["holdout_successes"].to_numpy(),
        grouped["holdout"].to_numpy(),
        confidence,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        t_rate = grouped["treated_successes"].to_numpy() / grouped["treated"].to_numpy()
        h_rate = grouped["holdout_successes"].to_numpy() / grouped["holdout"].to_numpy()
        ratio = np.where(h_rate > 0, t_rate / h_rate, np.nan)
    result = grouped.with_columns(
        pl.Series("treated_rate", t_rate, dtype=pl.Float64),
        pl.Series("holdout_rate", h_rate, dtype=pl.Float64),
        pl.Series("lift", d, dtype=pl.Float64),
        pl.Series("lift_low", low, dtype=pl.Float64),
        pl.Series("lift_high", high, dtype=pl.Float64),
        pl.Series("lift_ratio", ratio, dtype=pl.Float64),
    ).with_columns(
        pl.col(c).fill_nan(None)
        for c in ("treated_rate", "holdout_rate", "lift", "lift_low", "lift_high", "lift_ratio")
    )
    return result.with_columns(
        ((pl.col("lift_low") > 0) | (pl.col("lift_high") < 0))
        .fill_null(False)
        .alias("significant"),
        (pl.col("lift") * pl.col("treated")).alias("incremental_successes"),
        pl.col("treated").alias("contacts"),
    ).select(EFFECT_COLUMNS)
