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
hash and version and what changed), plans every decision in one set-based query and appends the
decisions as ``actions.decided`` events: one per rule, outcome (planned, suppressed or held out)
and reason, and chunk of at most :data:`DECISIONS_PER_EVENT` customers, each with the provenance
(rule id, version and hash, rule-set hash, view position, reason, run id) and per customer the
condition values — built with polars (no row loop) and appended in atomic batches through the
bulk ingestor. The projection gives every decision its own row in the view, as an
``action.planned``, ``action.suppressed`` or ``action.held_out`` with the action id as its event
id, so everything downstream (the action queue, explain, effect, the customers' contact counts)
reads one row per decision. Recording 5M decisions as 5M events would take the store a minute;
as ≈ 5,000 events it takes about a second (``bench/bench_rules_apply.py``).

A run that crashed half-way is resumed by applying again: the events already stored are
duplicates (their ids are digests of the run and the chunk, and a decision's chunk is a digest of
its action id); the history the planner reads excludes the run's own earlier decisions (same
rule-set hash and view position), so the resumed run decides as the uninterrupted one would have.

Preview and backtest (:mod:`radar.rules.whatif`) plan without appending anything; the actions
listing and export and the effect measurement are in :mod:`radar.rules.actions`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
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
from radar.projections.decode import DECIDED
from radar.rules.loader import RuleSet, load_ruleset
from radar.rules.planner import REASONS, plan_actions, plan_chunks

SOURCE = "radar.rules"
#: The event type of each decision status.
ACTION_TYPES: dict[str, str] = {
    "planned": "action.planned",
    "suppressed": "action.suppressed",
    "held_out": "action.held_out",
}
#: radar's own rule events: they never move the decision point (:data:`DECIDED` records a rule's
#: decisions many customers at a time; the view gives each its own row of an ``ACTION_TYPES`` type).
RULE_EVENT_TYPES: tuple[str, ...] = ("ruleset.published", DECIDED, *ACTION_TYPES.values())

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


def _plan(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    point: DecisionPoint,
    history: pl.DataFrame | Literal["log"] | None,
    planner: Callable[..., pl.DataFrame],
    **options: Any,
) -> pl.DataFrame:
    """``planner`` (:func:`~radar.rules.planner.plan_actions` or
    :func:`~radar.rules.planner.plan_chunks`) on the customers and the action history at
    ``point``: ``history="log"`` reads the earlier decisions from the events table, a frame
    replaces it (a backtest's own)."""
    with ExitStack() as tables:
        customers = tables.enter_context(
            _temp_view(con, "__radar_rules_customers", customers_sql(point))
        )
        past: pl.DataFrame | str | None = history
        if isinstance(history, str):
            past = tables.enter_context(
                _temp_view(con, "__radar_rules_history", _history_sql(point, ruleset.hash))
            )
        return planner(
            con,
            ruleset,
            reference=point.reference,
            position=point.position,
            customers=customers,
            action_history=past,
            **options,
        )


def plan_at(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    point: DecisionPoint,
    *,
    history: pl.DataFrame | Literal["log"] | None = "log",
) -> pl.DataFrame:
    """The decisions of ``ruleset`` at ``point``, one row each (nothing appended).
    ``history="log"`` reads the earlier decisions from the events table; a frame replaces it
    (a backtest's own)."""
    return _plan(con, ruleset, point, history, plan_actions)


def chunks_at(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    point: DecisionPoint,
    *,
    history: pl.DataFrame | Literal["log"] | None = "log",
) -> pl.DataFrame:
    """The decisions of :func:`plan_at` in chunks of at most about
    :data:`DECISIONS_PER_EVENT` (:func:`radar.rules.planner.plan_chunks`): one chunk is one
    ``actions.decided`` event."""
    return _plan(con, ruleset, point, history, plan_chunks, per_chunk=DECISIONS_PER_EVENT)


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


def summarize(decisions: pl.DataFrame, count: str | None = None) -> pl.DataFrame:
    """Per rule: candidates, planned, held out, suppressed and suppressions by reason. Each row
    of ``decisions`` is one decision, or ``count`` decisions when that column is named (a chunk
    frame: ``count="size"``)."""
    d = decisions.with_columns(
        pl.col("rule_id").cast(pl.String),
        pl.col("status").cast(pl.String),
        pl.col("reason").cast(pl.String),
        (pl.col(count) if count else pl.lit(1, dtype=pl.Int64)).alias("__n"),
    )
    n = pl.col("__n")
    counts = [
        n.sum().alias("candidates"),
        n.filter(pl.col("status") == "planned").sum().alias("planned"),
        n.filter(pl.col("status") == "held_out").sum().alias("held_out"),
        n.filter(pl.col("status") == "suppressed").sum().alias("suppressed"),
    ]
    counts += [
        n.filter((pl.col("status") == "suppressed") & (pl.col("reason") == r)).sum().alias(r)
        for r in REASONS
        if r != "holdout"
    ]
    return (
        d.group_by("rule_id")
        .agg(*counts)
        .with_columns(pl.exclude("rule_id").cast(pl.Int64))
        .sort("rule_id")
    )


#: At most this many decisions go into one ``actions.decided`` event.
DECISIONS_PER_EVENT = 1_000
#: The decision events of one append transaction hold about this many decisions.
DECISIONS_PER_TRANSACTION = 200_000


def _group_heads(
    groups: pl.DataFrame, ruleset: RuleSet, run_id: str, position: int
) -> pl.DataFrame:
    """Per (rule, status, reason) of ``groups``: the rule's channel and the ``data`` of its
    ``actions.decided`` events up to the opening of the customer id list, canonical JSON in
    payload order, no nulls (a few hundred rows at most, whatever the number of decisions)."""
    by_id = {r.id: r for r in ruleset.rules}
    rows = []
    for rule_id, status, reason in groups.iter_rows():
        r = by_id[rule_id]
        a = r.rule.action
        members = {
            "rule_id": r.id,
            "rule_version": r.version,
            "rule_hash": r.hash,
            "ruleset_hash": ruleset.hash,
            "view_position": position,
            "campaign_id": a.campaign_id,
            "offer": a.offer,
            "template": a.template,
            "priority": a.priority,
            "reason": reason,
            "decision": status,
            "run_id": run_id,
            "condition_columns": list(r.condition.columns),
        }
        given = {k: v for k, v in members.items() if v is not None}
        text = json.dumps(given, ensure_ascii=False, separators=(",", ":"))
        rows.append({"channel": a.channel, "head": text[:-1] + ',"decisions":{"customer_id":['})
    heads = pl.DataFrame(rows, schema={"channel": pl.String, "head": pl.String})
    return pl.concat([groups, heads], how="horizontal")


def decided_events(
    chunks: pl.DataFrame, ruleset: RuleSet, *, run_id: str, position: int, occurred_at: datetime
) -> pl.DataFrame:
    """The chunks of :func:`chunks_at` as ``actions.decided`` events: the envelope columns of
    :meth:`radar.ingest.pipeline.Ingestor.prepare_trusted`, and ``size``, how many decisions
    each event holds.

    The event id is a digest of run id, rule, status, reason and chunk (a rerun stores nothing
    new); ``channel`` is the rule's action channel, ``occurred_at`` the reference, ``data`` the
    provenance (canonical JSON: no nulls) with the decisions as parallel lists of customer ids
    and condition values (the action ids follow from them: see
    :func:`radar.domain.catalogue.decision_action_id`).
    """
    keys = ["rule_id", "status", "reason"]
    heads = _group_heads(chunks.select(keys).unique(maintain_order=True), ruleset, run_id, position)
    events = chunks.join(heads, on=keys, how="left", nulls_equal=True, maintain_order="left")
    digest = pl.concat_str(
        pl.lit(run_id),
        *(pl.col(k).cast(pl.String).fill_null("") for k in (*keys, "chunk")),
        separator="|",
    ).map_batches(_md5_hex, return_dtype=pl.String)
    data = pl.concat_str(
        "head",
        "customer_ids",
        pl.lit('],"condition_values":['),
        "condition_values",
        pl.lit("]}}"),
    )
    return events.select(
        (pl.lit("decided-") + digest).alias("event_id"),
        pl.lit(DECIDED).alias("type"),
        pl.lit(None, dtype=pl.String).alias("customer_id"),
        pl.lit(occurred_at).cast(pl.Datetime("us", "UTC")).alias("occurred_at"),
        pl.lit(SOURCE).alias("source"),
        "channel",
        pl.lit(None, dtype=pl.String).alias("direction"),
        data.alias("data"),
        "size",
    )


def _md5_hex(texts: pl.Series) -> pl.Series:
    """md5 hex digests of a (short) string column: one per event, not per decision."""
    return pl.Series([hashlib.md5(t.encode()).hexdigest() for t in texts.to_list()])


def decision_frame(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    point: DecisionPoint,
    *,
    run_id: str,
    history: pl.DataFrame | Literal["log"] | None = "log",
) -> pl.DataFrame:
    """The ``actions.decided`` events of ``ruleset`` at ``point`` as a typed envelope frame
    (for :meth:`radar.ingest.pipeline.Ingestor.prepare_trusted`; nothing appended)."""
    chunks = chunks_at(con, ruleset, point, history=history)
    events = decided_events(
        chunks, ruleset, run_id=run_id, position=point.position, occurred_at=point.reference
    )
    return events.drop("size")


def decision_lines(frame: pl.DataFrame) -> pl.Series:
    """The events of :func:`decision_frame` as public JSON envelopes (one per line)."""
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
    chunks = chunks_at(con, ruleset, point)
    timings["plan"] = time.perf_counter() - t
    t = time.perf_counter()
    run_id = run_id_for(ruleset.hash, point.position)
    events = decided_events(
        chunks, ruleset, run_id=run_id, position=point.position, occurred_at=point.reference
    )
    timings["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    per_transaction = max(1, DECISIONS_PER_TRANSACTION // DECISIONS_PER_EVENT)
    stored = append_trusted(engine.ingestor, events.drop("size"), batch_size or per_transaction)
    timings["append"] = time.perf_counter() - t
    sizes = events["size"]
    repeated = int(sizes.gather([line - 1 for line in stored.duplicate_lines]).sum())
    by_rule = summarize(chunks, count="size")
    return ApplyResult(
        run_id=run_id,
        point=point,
        publication=publication,
        by_rule=by_rule,
        planned=int(by_rule["planned"].sum()),
        suppressed=int(by_rule["suppressed"].sum()),
        held_out=int(by_rule["held_out"].sum()),
        appended=int(sizes.sum()) - repeated,
        duplicates=repeated,
        seconds={k: round(v, 3) for k, v in timings.items()},
    )
