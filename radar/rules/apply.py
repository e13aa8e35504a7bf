"""Rules against an engine: publish, apply, preview, backtest, effect and the actions out.

This module wires the pure rules core (:mod:`radar.rules.planner`, :mod:`radar.rules.effect`) to
an :class:`~radar.engine.Engine`: it reads the DuckDB view and appends radar's decisions to the log.

**The decision point.** A run reads the view at a *decision point*:

- ``position`` — the highest log position of the events the decisions depend on, radar's *own*
  rule events (``ruleset.published``, ``action.*``) excluded. It is the ``view_position`` recorded
  on every decision and part of the deterministic action id, so re-running a rule set on a view
  that has only grown by radar's own decisions gives the same ids (and the store's idempotency on
  ``(source, event_id)`` stores nothing new);
- ``reference`` — "now" for the rules: the latest ``occurred_at`` of those events (so simulated
  or replayed histories work), or ``at`` when given. Relative columns (``days_since_…``) are
  measured at it and every decision event has it as ``occurred_at``. An ``at`` earlier than the
  latest event reads the *as-of* view (events that had occurred by ``at``).

**Apply** (:func:`apply_rules`) catches the view up, publishes the rule set when its hash differs
from the latest published one (a ``ruleset.published`` event with every rule's canonical text,
hash and version and what changed), plans every decision in one set-based query and appends one
event per decision — ``action.planned``, ``action.suppressed`` or ``action.held_out`` with its
provenance (rule id, version and hash, rule-set hash, view position, reason, the condition values,
run id) — built as JSON lines with polars and appended in atomic batches through the bulk
ingestor. The action id is the event id. A run that crashed half-way is resumed by applying again:
the batches already stored are duplicates; the history the planner reads excludes the run's own
earlier decisions (same rule-set hash and view position), so the resumed run decides as the
uninterrupted one would have.

Preview and backtest (:mod:`radar.rules.whatif`) plan without appending anything; the actions
listing and export and the effect measurement are in :mod:`radar.rules.actions`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl

from radar.domain.errors import RadarError
from radar.engine import Engine
from radar.ingest.pipeline import BatchResult, Ingestor, append_radar_lines, append_trusted
from radar.projections.customers import customer_rows_sql, radar_sql
from radar.rules.loader import RuleSet, load_ruleset
from radar.rules.planner import REASONS, plan_actions

SOURCE = "radar.rules"
#: The event type of each decision status.
ACTION_TYPES: dict[str, str] = {
    "planned": "action.planned",
    "suppressed": "action.suppressed",
    "held_out": "action.held_out",
}
#: radar's own rule events: they never move the decision point.
RULE_EVENT_TYPES: tuple[str, ...] = ("ruleset.published", *ACTION_TYPES.values())

_RULE_TYPES_SQL = "(" + ", ".join(f"'{t}'" for t in RULE_EVENT_TYPES) + ")"


def load_rules(folder: str | Path) -> RuleSet:
    """The rule set of a folder; raises :class:`~radar.rules.loader.RuleSetInvalid`."""
    return load_ruleset(folder)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive means UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ts(moment: datetime) -> str:
    """A SQL TIMESTAMPTZ literal (from a datetime, never from user text)."""
    return f"TIMESTAMPTZ '{as_utc(moment).isoformat()}'"


def _iso(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------------ decision point


@dataclass(frozen=True)
class DecisionPoint:
    """What a run reads: the view position, the reference moment and whether the live view is
    used (``False``: the as-of view at ``reference``)."""

    position: int
    reference: datetime
    live: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "reference": self.reference.isoformat(),
            "live": self.live,
        }


def decision_point(con: duckdb.DuckDBPyConnection, at: datetime | None = None) -> DecisionPoint:
    """The decision point of the view in ``con`` (see the module docstring)."""
    row = con.execute(
        f"SELECT max(position), max(occurred_at) FROM events WHERE type NOT IN {_RULE_TYPES_SQL}"
    ).fetchone()
    position = int(row[0]) if row and row[0] is not None else 0
    latest = as_utc(row[1]) if row and row[1] is not None else None
    if at is None:
        return DecisionPoint(position, latest or datetime.now(UTC), True)
    at = as_utc(at)
    if latest is None or at >= latest:
        return DecisionPoint(position, at, True)
    row = con.execute(
        f"SELECT max(position) FROM events WHERE type NOT IN {_RULE_TYPES_SQL} "
        f"AND occurred_at <= {_ts(at)}"
    ).fetchone()
    return DecisionPoint(int(row[0]) if row and row[0] is not None else 0, at, False)


def customers_sql(point: DecisionPoint) -> str:
    """SQL of the customers relation the rules read at ``point`` (relative columns included)."""
    if point.live:
        return radar_sql("customers", _ts(point.reference))
    rows = customer_rows_sql("events", f"occurred_at <= {_ts(point.reference)}")
    return radar_sql(f"({rows})", _ts(point.reference))


@contextmanager
def _temp_view(con: duckdb.DuckDBPyConnection, name: str, sql: str) -> Iterator[str]:
    """``sql`` as the temporary view ``name`` for the block (the planner reads each input
    once, so nothing is materialised ahead of its query)."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
    try:
        yield name
    finally:
        con.execute(f"DROP VIEW IF EXISTS {name}")


def _history_sql(point: DecisionPoint, exclude_ruleset: str | None) -> str:
    """Earlier planned and held-out decisions up to the reference (the planner's history),
    without the decisions of the run ``(exclude_ruleset, point.position)`` itself."""
    own = ""
    if exclude_ruleset is not None:
        if not all(c in "0123456789abcdef" for c in exclude_ruleset):
            raise RadarError(f"not a rule-set hash: {exclude_ruleset!r}")
        own = (
            f" AND NOT (ruleset_hash = '{exclude_ruleset}' "
            f"AND view_position = {int(point.position)})"
        )
    return (
        "SELECT customer_id, rule_id, channel, occurred_at, "
        "CASE WHEN type = 'action.planned' THEN 'planned' ELSE 'held_out' END AS status "
        "FROM events WHERE type IN ('action.planned', 'action.held_out') "
        f"AND occurred_at <= {_ts(point.reference)}{own}"
    )


def plan_at(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    point: DecisionPoint,
    *,
    history: pl.DataFrame | Literal["log"] | None = "log",
) -> pl.DataFrame:
    """The decisions of ``ruleset`` at ``point`` (nothing appended). ``history="log"`` reads the
    earlier decisions from the events table; a frame replaces it (a backtest's own)."""
    with ExitStack() as tables:
        customers = tables.enter_context(
            _temp_view(con, "__radar_rules_customers", customers_sql(point))
        )
        past: pl.DataFrame | str | None = history
        if isinstance(history, str):
            past = tables.enter_context(
                _temp_view(con, "__radar_rules_history", _history_sql(point, ruleset.hash))
            )
        return plan_actions(
            con,
            ruleset,
            reference=point.reference,
            position=point.position,
            customers=customers,
            action_history=past,
        )


# ----------------------------------------------------------------------------------- publishing


@dataclass(frozen=True)
class Publication:
    """The outcome of publishing: whether a new ``ruleset.published`` event was appended."""

    ruleset_hash: str
    published: bool
    previous_hash: str | None
    changes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ruleset_hash": self.ruleset_hash,
            "published": self.published,
            "previous_hash": self.previous_hash,
            "changes": self.changes,
        }


def published_rulesets(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every ``ruleset.published`` event in the view, oldest first:
    ``{position, occurred_at, ruleset_hash, rules, changes}``."""
    rows = con.execute(
        "SELECT position, occurred_at, ruleset_hash, CAST(rules AS VARCHAR), "
        "CAST(changes AS VARCHAR) FROM events WHERE type = 'ruleset.published' ORDER BY position"
    ).fetchall()
    return [
        {
            "position": int(p),
            "occurred_at": at,
            "ruleset_hash": h,
            "rules": json.loads(rules or "[]"),
            "changes": json.loads(changes or "{}"),
        }
        for p, at, h, rules, changes in rows
    ]


def ruleset_rules(ruleset: RuleSet) -> list[dict[str, Any]]:
    """The ``rules`` of a ``ruleset.published`` payload: each rule's id, version, hash, file
    and its canonical text (what the hash was taken over)."""
    return [
        {
            "id": r.id,
            "version": r.version,
            "hash": r.hash,
            "file": r.file,
            "file_hash": r.file_hash,
            "rule": r.canonical(),
        }
        for r in ruleset.rules
    ]


def ruleset_changes(ruleset: RuleSet, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """What changed vs the previous published set: added / removed / changed rules (with their
    versions), whether the policy changed, and the policy now in force."""
    policy = ruleset.policy.model_dump(mode="json") if ruleset.policy else None
    if previous is None:
        return {
            "previous_hash": None,
            "added": [r.id for r in ruleset.rules],
            "removed": [],
            "changed": [],
            "policy": policy,
            "policy_changed": policy is not None,
        }
    before = {r["id"]: r for r in previous.get("rules", [])}
    now = {r.id: r for r in ruleset.rules}
    changed = [
        {"id": i, "from_version": before[i].get("version"), "to_version": now[i].version}
        for i in now
        if i in before and before[i].get("hash") != now[i].hash
    ]
    old_policy = previous.get("changes", {}).get("policy")
    return {
        "previous_hash": previous.get("ruleset_hash"),
        "added": [i for i in now if i not in before],
        "removed": [i for i in before if i not in now],
        "changed": changed,
        "policy": policy,
        "policy_changed": old_policy != policy,
    }


def publish(
    engine: Engine, ruleset: RuleSet, *, at: datetime, view_position: int | None = None
) -> Publication:
    """Append ``ruleset.published`` when ``ruleset``'s hash is not the latest published one.

    The event's id is ``ruleset-<hash>-<view position>`` (idempotent for a retried publish; a set
    published again after another one is a new event). ``occurred_at`` is ``at``. The view should
    be caught up first (:func:`apply_rules` does).
    """
    con = engine.view
    history = published_rulesets(con)
    latest = history[-1] if history else None
    if latest is not None and latest["ruleset_hash"] == ruleset.hash:
        return Publication(ruleset.hash, False, latest["ruleset_hash"])
    position = engine.projector.position() if view_position is None else view_position
    changes = ruleset_changes(ruleset, latest)
    event = {
        "event_id": f"ruleset-{ruleset.hash}-{position}",
        "type": "ruleset.published",
        "occurred_at": _iso(at),
        "source": SOURCE,
        "data": {
            "ruleset_hash": ruleset.hash,
            "rules": ruleset_rules(ruleset),
            "changes": changes,
        },
    }
    [result] = engine.append([event])
    if result.status == "rejected":
        raise RadarError(f"cannot publish the rule set: {result.field}: {result.reason}")
    return Publication(ruleset.hash, True, latest["ruleset_hash"] if latest else None, changes)


# ------------------------------------------------------------------------------------- decisions


def summarize(decisions: pl.DataFrame) -> pl.DataFrame:
    """Per rule: candidates, planned, held out, suppressed and suppressions by reason."""
    d = decisions.with_columns(
        pl.col("rule_id").cast(pl.String),
        pl.col("status").cast(pl.String),
        pl.col("reason").cast(pl.String),
    )
    counts = [
        pl.len().alias("candidates"),
        (pl.col("status") == "planned").sum().alias("planned"),
        (pl.col("status") == "held_out").sum().alias("held_out"),
        (pl.col("status") == "suppressed").sum().alias("suppressed"),
    ]
    counts += [
        ((pl.col("status") == "suppressed") & (pl.col("reason") == r)).sum().alias(r)
        for r in REASONS
        if r != "holdout"
    ]
    return (
        d.group_by("rule_id")
        .agg(*counts)
        .with_columns(pl.exclude("rule_id").cast(pl.Int64))
        .sort("rule_id")
    )


#: The members of a decision's ``data`` taken from its rule and rule set, in payload order.
_RULE_MEMBERS = (
    "rule_id",
    "rule_version",
    "rule_hash",
    "ruleset_hash",
    "campaign_id",
    "offer",
    "template",
    "priority",
)


def _rule_members(ruleset: RuleSet) -> dict[str, str]:
    """Per rule id, the JSON members shared by all its decisions (escaped once per rule;
    no leading or trailing comma, null members left out)."""
    members = {}
    for r in ruleset.rules:
        a = r.rule.action
        values = (r.id, r.version, r.hash, ruleset.hash, a.campaign_id, a.offer, a.template)
        named: dict[str, Any] = dict(zip(_RULE_MEMBERS, (*values, a.priority), strict=True))
        text = json.dumps({k: v for k, v in named.items() if v is not None}, ensure_ascii=False)
        members[r.id] = text[1:-1]
    return members


def _event_parts(decisions: pl.DataFrame, ruleset: RuleSet) -> pl.DataFrame:
    """One row per distinct (rule, status, reason, view position) of ``decisions``: the
    event ``type``, the rule's ``channel`` and ``middle``, the part of ``data`` between the
    action id's closing quote and the condition values (a few hundred rows at most, whatever
    the number of decisions, so the per-row work is a join and one concatenation)."""
    keys = decisions.select("rule_id", "status", "reason", "position").unique()
    members = _rule_members(ruleset)
    channels = {r.id: r.rule.action.channel for r in ruleset.rules}
    rows = []
    for rule_id, status, reason, position in keys.iter_rows():
        tail = "" if reason is None else f',"reason":{json.dumps(reason)}'
        rows.append(
            {
                "type": ACTION_TYPES[status],
                "channel": channels[rule_id],
                "middle": f'",{members[rule_id]},"view_position":{position}{tail}'
                ',"condition_values":',
            }
        )
    parts = pl.DataFrame(
        rows, schema={"type": pl.String, "channel": pl.String, "middle": pl.String}
    )
    return pl.concat([keys, parts], how="horizontal")


def decision_frame(
    decisions: pl.DataFrame, ruleset: RuleSet, *, run_id: str, occurred_at: datetime
) -> pl.DataFrame:
    """The decision events as a typed envelope frame (set-based: no row loop), for
    :meth:`radar.ingest.pipeline.Ingestor.prepare_trusted`.

    ``event_id`` = ``action_id``; ``type`` by status; ``source`` = ``radar.rules``; ``channel``
    the rule's action channel; ``occurred_at`` the reference; ``data`` the provenance (canonical
    JSON: no nulls): action id, the rule's members, view position, reason (unless planned),
    condition values and run id, in that order. Action ids are hex digests (no escaping).
    """
    keys = ["rule_id", "status", "reason", "position"]
    frame = decisions.select("action_id", "customer_id", "condition_values", *keys).join(
        _event_parts(decisions, ruleset), on=keys, how="left", nulls_equal=True
    )
    data = pl.concat_str(
        pl.lit('{"action_id":"'),
        pl.col("action_id"),
        pl.col("middle"),
        pl.col("condition_values").fill_null("{}"),
        pl.lit(f',"run_id":{json.dumps(run_id)}}}'),
    )
    return frame.select(
        pl.col("action_id").alias("event_id"),
        "type",
        pl.col("customer_id").cast(pl.String),
        pl.lit(occurred_at).cast(pl.Datetime("us", "UTC")).alias("occurred_at"),
        pl.lit(SOURCE).alias("source"),
        "channel",
        pl.lit(None, dtype=pl.String).alias("direction"),
        data.alias("data"),
    )


def decision_lines(
    decisions: pl.DataFrame, ruleset: RuleSet, *, run_id: str, occurred_at: datetime
) -> pl.Series:
    """The decision events as public JSON envelopes (one per line), e.g. for export."""
    frame = decision_frame(decisions, ruleset, run_id=run_id, occurred_at=occurred_at)
    envelope = pl.struct(
        "event_id",
        "type",
        "customer_id",
        pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"),
        "source",
        "channel",
    ).struct.json_encode()
    return frame.select(
        (envelope.str.head(-1) + pl.lit(',"data":') + pl.col("data") + pl.lit("}")).alias("raw")
    ).to_series()


def append_lines(ingestor: Ingestor, lines: pl.Series, batch_size: int) -> BatchResult:
    """Append JSON envelope lines radar built (e.g. simulated outcomes) in atomic batches."""
    return append_radar_lines(ingestor, lines, batch_size, "radar.rules")


def run_id_for(ruleset_hash: str, position: int) -> str:
    """The run id: the same rule set at the same view position is the same run."""
    return "rules-" + hashlib.md5(f"{ruleset_hash}|{position}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ApplyResult:
    """What one apply did: the decision point, the publication, the decisions per rule and how
    many events were stored (``appended``) or were already there (``duplicates``)."""

    run_id: str
    point: DecisionPoint
    publication: Publication
    by_rule: pl.DataFrame
    planned: int
    suppressed: int
    held_out: int
    appended: int
    duplicates: int
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            **self.point.to_dict(),
            "ruleset": self.publication.to_dict(),
            "planned": self.planned,
            "suppressed": self.suppressed,
            "held_out": self.held_out,
            "appended": self.appended,
            "duplicates": self.duplicates,
            "rules": self.by_rule.to_dicts(),
            "seconds": self.seconds,
        }


def apply_rules(
    engine: Engine,
    ruleset: RuleSet,
    *,
    at: datetime | None = None,
    batch_size: int | None = None,
    project: bool = True,
) -> ApplyResult:
    """Publish (when new), plan and append every decision of ``ruleset`` (see module docs)."""
    import time

    timings: dict[str, float] = {}
    t = time.perf_counter()
    if project:
        engine.project()
    con = engine.view
    point = decision_point(con, at)
    timings["read"] = time.perf_counter() - t
    t = time.perf_counter()
    publication = publish(engine, ruleset, at=point.reference)
    timings["publish"] = time.perf_counter() - t
    t = time.perf_counter()
    decisions = plan_at(con, ruleset, point)
    timings["plan"] = time.perf_counter() - t
    t = time.perf_counter()
    run_id = run_id_for(ruleset.hash, point.position)
    events = decision_frame(decisions, ruleset, run_id=run_id, occurred_at=point.reference)
    timings["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    stored = append_trusted(engine.ingestor, events, batch_size or engine.settings.batch_size)
    timings["append"] = time.perf_counter() - t
    status = decisions["status"].cast(pl.String)
    return ApplyResult(
        run_id=run_id,
        point=point,
        publication=publication,
        by_rule=summarize(decisions),
        planned=int((status == "planned").sum()),
        suppressed=int((status == "suppressed").sum()),
        held_out=int((status == "held_out").sum()),
        appended=stored.accepted,
        duplicates=stored.duplicates,
        seconds={k: round(v, 3) for k, v in timings.items()},
    )
