"""What-if runs of a rule set: preview (now) and backtest (over past as-of views).

Neither appends anything. :func:`preview_rules` plans the rule set on the current view (or as of
``at``) and reports per rule the customers it would hit, overlaps with other rules, suppressions by
reason (consent, frequency cap, contact pressure) and hold-outs, and a sample of customers.
:func:`backtest_rules` replays the rule set at a cadence over the as-of views of the past and
reports who would have been contacted and what their outcomes in the real log were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from radar.domain.errors import RadarError
from radar.engine import Engine
from radar.rules.actions import outcome_events
from radar.rules.apply import DecisionPoint, as_utc, decision_point, plan_at, summarize
from radar.rules.effect import mark_successes
from radar.rules.loader import RuleSet


@dataclass(frozen=True)
class Preview:
    """What applying would do now: per rule counts (with ``overlap``: candidates also selected by
    another rule), pairwise overlaps, and a sample of customers per rule."""

    point: DecisionPoint
    ruleset_hash: str
    by_rule: pl.DataFrame
    overlap: pl.DataFrame
    sample: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.point.to_dict(),
            "ruleset_hash": self.ruleset_hash,
            "rules": self.by_rule.to_dicts(),
            "overlap": self.overlap.to_dicts(),
            "sample": self.sample.to_dicts(),
        }


def overlaps(decisions: pl.DataFrame) -> pl.DataFrame:
    """Pairs of rules selecting the same customers: ``rule_id, other_rule_id, customers``."""
    pairs = decisions.select(pl.col("rule_id").cast(pl.String), "customer_id").unique()
    return (
        pairs.join(pairs, on="customer_id", suffix="_other")
        .filter(pl.col("rule_id") != pl.col("rule_id_other"))
        .group_by("rule_id", "rule_id_other")
        .agg(pl.len().cast(pl.Int64).alias("customers"))
        .rename({"rule_id_other": "other_rule_id"})
        .sort("rule_id", "customers", "other_rule_id", descending=[False, True, False])
    )


def preview_rules(
    engine: Engine, ruleset: RuleSet, *, at: datetime | None = None, sample: int = 5
) -> Preview:
    """Plan ``ruleset`` on the current view (or as of ``at``) without appending anything."""
    engine.project()
    con = engine.view
    point = decision_point(con, at)
    decisions = plan_at(con, ruleset, point)
    by_rule = summarize(decisions)
    shared = (
        decisions.select(pl.col("rule_id").cast(pl.String), "customer_id")
        .with_columns(pl.col("rule_id").n_unique().over("customer_id").alias("_n"))
        .filter(pl.col("_n") > 1)
        .group_by("rule_id")
        .agg(pl.len().cast(pl.Int64).alias("overlap"))
    )
    by_rule = by_rule.join(shared, on="rule_id", how="left").with_columns(
        pl.col("overlap").fill_null(0)
    )
    picked = (
        decisions.select(
            pl.col("rule_id").cast(pl.String),
            "customer_id",
            pl.col("status").cast(pl.String),
            pl.col("reason").cast(pl.String),
            "condition_values",
        )
        .sort("rule_id", "customer_id")
        .group_by("rule_id", maintain_order=True)
        .head(sample)
    )
    return Preview(point, ruleset.hash, by_rule, overlaps(decisions), picked)


# ----------------------------------------------------------------------------------- backtest


@dataclass(frozen=True)
class Backtest:
    """A replay of a rule set over past as-of views: the decisions of every run (with
    ``success``: the rule's success event followed in the real log), counts per run and rule,
    and outcomes per rule. Nothing is appended."""

    moments: list[datetime]
    decisions: pl.DataFrame
    by_run: pl.DataFrame
    by_rule: pl.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "moments": [m.isoformat() for m in self.moments],
            "runs": self.by_run.to_dicts(),
            "rules": self.by_rule.to_dicts(),
        }


def parse_every(text: str) -> timedelta:
    """A cadence like ``30d``, ``2w``, ``12h`` (a bare number is days)."""
    raw = text.strip().lower()
    units = {"d": 1.0, "w": 7.0, "h": 1 / 24}
    unit = raw[-1] if raw and raw[-1] in units else "d"
    number = raw[:-1] if raw and raw[-1] in units else raw
    try:
        value = float(number)
    except ValueError:
        raise RadarError(f"--every: cannot read {text!r} (use e.g. 30d, 2w or 12h)") from None
    if value <= 0:
        raise RadarError(f"--every: must be positive, got {text!r}")
    return timedelta(days=value * units[unit])


def backtest_moments(start: datetime, end: datetime, every: timedelta) -> list[datetime]:
    """``start``, ``start + every``, … up to and including ``end``."""
    start, end = as_utc(start), as_utc(end)
    if end < start:
        raise RadarError(f"--to {end.isoformat()} is before --from {start.isoformat()}")
    out = []
    moment = start
    while moment <= end:
        out.append(moment)
        moment += every
    if len(out) > 1000:
        raise RadarError(f"{len(out)} runs: choose a longer --every or a shorter period")
    return out


def backtest_rules(
    engine: Engine, ruleset: RuleSet, *, start: datetime, end: datetime, every: timedelta
) -> Backtest:
    """Replay ``ruleset`` at ``start``, ``start + every``, … ``end`` over the as-of views.

    Each run reads the view as of its moment; the frequency limits and contact pressure see the
    backtest's own earlier decisions (what would have happened), not the real ones. A decision
    is a success when the rule's success event followed in the real log within the window.
    """
    engine.project()
    con = engine.view
    moments = backtest_moments(start, end, every)
    runs: list[pl.DataFrame] = []
    history: pl.DataFrame | None = None
    for moment in moments:
        point = decision_point(con, moment)
        if point.live:  # at or after the latest event: still a past view, read as of it
            point = DecisionPoint(point.position, point.reference, False)
        decisions = plan_at(con, ruleset, point, history=history)
        # two runs may read the same view position: make the ids unique per run
        stamp = moment.strftime("@%Y%m%dT%H%M%S")
        runs.append(
            decisions.with_columns(
                pl.lit(moment).alias("run_at"), (pl.col("action_id") + pl.lit(stamp))
            )
        )
        made = decisions.filter(pl.col("status").cast(pl.String).is_in(["planned", "held_out"]))
        made = made.select(
            "customer_id",
            pl.col("rule_id").cast(pl.String),
            pl.col("channel").cast(pl.String),
            pl.col("decided_at").alias("occurred_at"),
            pl.col("status").cast(pl.String),
        )
        history = made if history is None else pl.concat([history, made])
    decisions = pl.concat(runs) if runs else pl.DataFrame()
    cast = decisions.with_columns(
        pl.col(c).cast(pl.String)
        for c in ("rule_id", "rule_version", "rule_hash", "ruleset_hash", "channel", "status")
    )
    success_events = sorted({r.rule.success.event for r in ruleset.rules if r.rule.success})
    marked = mark_successes(cast, outcome_events(con, success_events), ruleset)
    by_run = (
        pl.concat(
            [
                summarize(d).with_columns(pl.lit(m).alias("run_at"))
                for d, m in zip(runs, moments, strict=True)
            ]
        )
        .select("run_at", pl.exclude("run_at"))
        .sort("run_at", "rule_id")
    )
    planned = pl.col("status") == "planned"
    held = pl.col("status") == "held_out"
    outcomes = marked.group_by("rule_id").agg(
        planned.sum().cast(pl.Int64).alias("would_contact"),
        pl.col("customer_id").filter(planned).n_unique().cast(pl.Int64).alias("customers"),
        (planned & pl.col("success")).sum().cast(pl.Int64).alias("successes"),
        held.sum().cast(pl.Int64).alias("held_out"),
        (held & pl.col("success")).sum().cast(pl.Int64).alias("held_out_successes"),
    )
    totals = by_run.group_by("rule_id").agg(
        pl.len().cast(pl.Int64).alias("runs"),
        pl.col("candidates").sum(),
        pl.col("suppressed").sum(),
    )
    by_rule = (
        totals.join(outcomes, on="rule_id", how="left")
        .with_columns(
            (pl.col("successes") / pl.col("would_contact")).fill_nan(None).alias("success_rate"),
            (pl.col("held_out_successes") / pl.col("held_out"))
            .fill_nan(None)
            .alias("held_out_rate"),
        )
        .sort("rule_id")
    )
    keep = ["run_at", "action_id", "customer_id", "rule_id", "rule_version", "status", "reason"]
    detail = cast.select(*keep, pl.col("channel"), "condition_values").join(
        marked.select("action_id", "success"), on="action_id", how="left"
    )
    return Backtest(moments, detail, by_run, by_rule)
