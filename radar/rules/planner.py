"""The set-based decision: which customer gets which action, for all rules at once, in DuckDB.

Inputs: a relation of customers (one row per customer with the columns of
:data:`~radar.domain.columns.CUSTOMER_COLUMNS` the rules reference, relative columns already
computed for the reference moment), a relation ``action_history(customer_id, rule_id, channel,
occurred_at[, status])`` of earlier decisions, the reference moment, the view position and a
:class:`~radar.rules.loader.RuleSet`. The decision is one SQL query (no loop over customers):

1. Only rules *active* on the reference day (UTC date, ``active.from``/``until`` inclusive) run.
   Each customer whose condition is true (null counts as false) is a *candidate* of the rule.
2. ``suppressed`` / ``consent`` — the rule needs consent on a channel and the customer's
   ``consent_<channel>`` is not true (null: never stated, counts as not granted).
3. ``suppressed`` / ``frequency`` — the rule has ``limit.once_per_days: N`` and the history has a
   planned or held-out decision of the same rule for the customer in the N days up to the
   reference (``reference - N days < occurred_at <= reference``; a history row whose ``status``
   is ``suppressed`` does not count, and without a ``status`` column every row counts).
4. ``held_out`` / ``holdout`` — the customer falls in the rule's control group:
   ``bucket = int(md5(f"{rule_id}|{customer_id}")[:8], 16) % 10000`` and ``bucket < holdout·100``
   (see :func:`holdout_bucket`). The bucket depends only on rule id and customer, so a customer
   stays in (or out of) a rule's control group across runs and rule versions. The control group is
   drawn after consent and frequency, from the customers who could have been contacted, so that
   treated and held-out customers are comparable.
5. ``suppressed`` / ``pressure`` — with a global ``policy`` (at most K outbound per customer per N
   days), the remaining candidates of a customer are ranked by action priority (higher first, ties
   by rule id); the r-th is planned only when ``history + r <= K``, where history counts the
   customer's *planned* decisions in the N days up to the reference (rows whose ``status`` is
   ``held_out`` or ``suppressed`` do not count; without a ``status`` column every row counts).
   Held-out customers do not use up contact pressure.
6. Otherwise ``planned``.

The history should hold the planned *and* held-out decisions of earlier runs: both count for the
frequency limit (so a control customer is "virtually contacted" at the rule's cadence), only
planned ones count for contact pressure.

``action_id`` is deterministic: ``md5(f"{ruleset_hash}|{rule_id}|{customer_id}|{position}")``
(32 hex), so applying the same rule set at the same view position twice yields the same ids (the
store can use it as the idempotency key). ``condition_values`` is JSON text with the values of the
columns the rule's condition referenced, for provenance.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeAlias

import duckdb
import polars as pl
import pyarrow as pa

from radar.domain.errors import RadarError
from radar.rules.expression import quote_identifier
from radar.rules.loader import LoadedRule, RuleSet

Relation: TypeAlias = str | pl.DataFrame | pa.Table

HOLDOUT_BUCKETS = 10_000

#: The columns of the decision frame, in order.
DECISION_COLUMNS = (
    "action_id",
    "customer_id",
    "rule_id",
    "rule_version",
    "rule_hash",
    "ruleset_hash",
    "status",
    "reason",
    "channel",
    "campaign_id",
    "offer",
    "template",
    "priority",
    "condition_values",
    "position",
    "decided_at",
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}")


class PlannerInputError(RadarError):
    """The customers or history relation does not have the columns the rules need."""


def holdout_bucket(rule_id: str, customer_id: str) -> int:
    """The customer's hold-out bucket (0…9999) for a rule: first 8 hex of md5 mod 10000.

    The planner computes the same in DuckDB; a customer is held out when
    ``holdout_bucket(...) < holdout_percent * 100``.
    """
    digest = hashlib.md5(f"{rule_id}|{customer_id}".encode()).hexdigest()
    return int(digest[:8], 16) % HOLDOUT_BUCKETS


def action_id(ruleset_hash: str, rule_id: str, customer_id: str, position: int) -> str:
    """The deterministic id of a decision (the planner computes the same in DuckDB)."""
    return hashlib.md5(f"{ruleset_hash}|{rule_id}|{customer_id}|{position}".encode()).hexdigest()


def _sql_string(text: str) -> str:
    """A SQL string literal, for catalogue column names only (never user input)."""
    return "'" + text.replace("'", "''") + "'"


def _relation_sql(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise PlannerInputError(f"not a table or view name: {name!r}")
    return ".".join(quote_identifier(part) for part in name.split("."))


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, relation: Relation, tag: str) -> Iterator[str]:
    """SQL naming ``relation``: a table/view name as is, a frame registered for the call."""
    if isinstance(relation, str):
        yield _relation_sql(relation)
        return
    name = f"__radar_{tag}_{uuid.uuid4().hex[:12]}"
    con.register(name, relation)
    try:
        yield quote_identifier(name)
    finally:
        con.unregister(name)


def _columns_of(con: duckdb.DuckDBPyConnection, relation_sql: str) -> list[str]:
    return list(con.sql(f"SELECT * FROM {relation_sql} LIMIT 0").columns)


STATUSES = ("planned", "suppressed", "held_out")
REASONS = ("consent", "frequency", "pressure", "holdout")


def _rules_frame(rules: list[LoadedRule]) -> pl.DataFrame:
    """What the SQL needs of each rule (narrow; the strings are attached afterwards)."""
    order = sorted(range(len(rules)), key=lambda i: (-rules[i].rule.action.priority, rules[i].id))
    rank = {idx: n for n, idx in enumerate(order)}
    return pl.DataFrame(
        {
            "rule_idx": list(range(len(rules))),
            "rule_id": [r.id for r in rules],
            "pressure_rank": [rank[i] for i in range(len(rules))],
            "once_per_days": [r.rule.limit.once_per_days if r.rule.limit else None for r in rules],
            "holdout_bp": [round(r.rule.holdout * 100) for r in rules],
        },
        schema={
            "rule_idx": pl.Int32,
            "rule_id": pl.String,
            "pressure_rank": pl.Int32,
            "once_per_days": pl.Int32,
            "holdout_bp": pl.Int32,
        },
    )


def _rules_metadata(rules: list[LoadedRule], ruleset_hash: str) -> pl.DataFrame:
    """The per-rule columns of the decision frame (categorical: stored once per rule)."""
    cat = pl.Categorical()
    return pl.DataFrame(
        {
            "rule_idx": list(range(len(rules))),
            "rule_id": [r.id for r in rules],
            "rule_version": [r.version for r in rules],
            "rule_hash": [r.hash for r in rules],
            "ruleset_hash": [ruleset_hash] * len(rules),
            "channel": [r.rule.action.channel for r in rules],
            "campaign_id": [r.rule.action.campaign_id for r in rules],
            "offer": [r.rule.action.offer for r in rules],
            "template": [r.rule.action.template for r in rules],
            "priority": [r.rule.action.priority for r in rules],
        },
        schema={
            "rule_idx": pl.Int32,
            "rule_id": cat,
            "rule_version": cat,
            "rule_hash": cat,
            "ruleset_hash": cat,
            "channel": cat,
            "campaign_id": cat,
            "offer": cat,
            "template": cat,
            "priority": pl.Int64,
        },
    )


def _candidates_sql(rules: list[LoadedRule], customers: str, params: dict[str, Any]) -> str:
    """UNION ALL of one filtered scan per rule: (rule_idx, customer_id, consent_ok, values)."""
    parts = []
    for i, rule in enumerate(rules):
        compiled = rule.compile(param_prefix=f"r{i}_p", table_alias="c")
        params.update(compiled.params)
        if compiled.columns:
            pairs = ", ".join(
                f"{_sql_string(col)}, c.{quote_identifier(col)}" for col in compiled.columns
            )
            values = f"CAST(json_object({pairs}) AS VARCHAR)"
        else:
            values = "'{}'"
        consent = rule.consent_channel
        consent_ok = (
            f"COALESCE(c.{quote_identifier('consent_' + consent)}, false)" if consent else "true"
        )
        parts.append(
            f"SELECT CAST({i} AS INTEGER) AS rule_idx, CAST(c.customer_id AS VARCHAR) AS "
            f"customer_id, {consent_ok} AS consent_ok, {values} AS condition_values "
            f"FROM {customers} AS c WHERE COALESCE({compiled.sql}, false)"
        )
    return "\nUNION ALL\n".join(parts)


def _history_sql(history: str | None, has_status: bool, rules_table: str) -> str:
    """The earlier decisions up to the reference: (customer_id, rule_idx, occurred_at, repeats,
    counts) where ``repeats`` says whether the row counts for the frequency limit (planned or
    held out) and ``counts`` whether it counts toward contact pressure (planned)."""
    if history is None:
        return (
            "SELECT NULL::VARCHAR AS customer_id, NULL::INTEGER AS rule_idx, "
            "NULL::TIMESTAMPTZ AS occurred_at, NULL::BOOLEAN AS repeats, NULL::BOOLEAN AS counts "
            "WHERE false"
        )
    repeats = "COALESCE(h.status <> 'suppressed', true)" if has_status else "true"
    counts = "COALESCE(h.status NOT IN ('held_out', 'suppressed'), true)" if has_status else "true"
    return (
        "SELECT CAST(h.customer_id AS VARCHAR) AS customer_id, r.rule_idx, "
        f"CAST(h.occurred_at AS TIMESTAMPTZ) AS occurred_at, {repeats} AS repeats, "
        f"{counts} AS counts "
        f"FROM {history} AS h LEFT JOIN {rules_table} AS r ON r.rule_id = h.rule_id "
        "WHERE CAST(h.occurred_at AS TIMESTAMPTZ) <= $ref"
    )


def build_plan_sql(
    rules: list[LoadedRule],
    *,
    customers: str,
    history: str | None,
    history_has_status: bool,
    rules_table: str,
    with_pressure: bool,
    ordered: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The decision query and the parameters of the rule conditions (``$ref``, ``$position``,
    ``$ruleset_hash`` and, with pressure, ``$max_outbound`` and ``$per_days`` are bound by
    :func:`plan_actions`).

    The result is narrow: ``rule_idx`` (index into ``rules``), ``customer_id``, ``status_code``
    (index into :data:`STATUSES`), ``reason_code`` (index into :data:`REASONS`, null when
    planned), ``condition_values`` and ``action_id``.
    """
    params: dict[str, Any] = {}
    candidates = _candidates_sql(rules, customers, params)
    if with_pressure:
        decided = """,
recent AS (
    SELECT customer_id, count(*) AS n FROM hist
    WHERE counts AND occurred_at > $ref - to_days(CAST($per_days AS INTEGER))
    GROUP BY customer_id
),
ranked AS (
    SELECT s.*,
        CASE WHEN s.pre_code IS NULL THEN row_number() OVER (
            PARTITION BY s.customer_id, s.pre_code IS NULL ORDER BY s.pressure_rank) END AS rnk
    FROM s
),
decided AS (
    SELECT ranked.rule_idx, ranked.customer_id, ranked.condition_values,
        CASE WHEN ranked.pre_code IS NOT NULL THEN ranked.pre_code
             WHEN COALESCE(recent.n, 0) + ranked.rnk > $max_outbound THEN 2 END AS reason_code
    FROM ranked LEFT JOIN recent ON recent.customer_id = ranked.customer_id
)"""
    else:
        decided = """,
decided AS (
    SELECT s.rule_idx, s.customer_id, s.condition_values, s.pre_code AS reason_code FROM s
)"""
    sql = f"""
WITH cand AS (
{candidates}
),
hist AS (
{_history_sql(history, history_has_status, rules_table)}
),
too_soon AS (
    SELECT DISTINCT h.customer_id, h.rule_idx
    FROM hist AS h JOIN {rules_table} AS r ON r.rule_idx = h.rule_idx
    WHERE h.repeats AND r.once_per_days IS NOT NULL
      AND h.occurred_at > $ref - to_days(r.once_per_days)
),
s AS (
    SELECT c.rule_idx, c.customer_id, c.condition_values, r.pressure_rank,
        CASE WHEN NOT c.consent_ok THEN 0
             WHEN t.rule_idx IS NOT NULL THEN 1
             WHEN r.holdout_bp > 0 AND CAST(
                ('0x' || substr(md5(r.rule_id || '|' || c.customer_id), 1, 8)) AS BIGINT
             ) % {HOLDOUT_BUCKETS} < r.holdout_bp THEN 3
        END AS pre_code
    FROM cand AS c
    JOIN {rules_table} AS r ON r.rule_idx = c.rule_idx
    LEFT JOIN too_soon AS t ON t.customer_id = c.customer_id AND t.rule_idx = c.rule_idx
){decided}
SELECT d.rule_idx, d.customer_id,
    CAST(CASE WHEN d.reason_code IS NULL THEN 0 WHEN d.reason_code = 3 THEN 2 ELSE 1 END
        AS UTINYINT) AS status_code,
    CAST(d.reason_code AS UTINYINT) AS reason_code,
    d.condition_values,
    md5($ruleset_hash || '|' || r.rule_id || '|' || d.customer_id || '|'
        || CAST($position AS VARCHAR)) AS action_id
FROM decided AS d JOIN {rules_table} AS r ON r.rule_idx = d.rule_idx
{"ORDER BY d.rule_idx, d.customer_id" if ordered else ""}
"""
    return sql, params


def _empty_decisions(rules: list[LoadedRule], ruleset_hash: str) -> pl.DataFrame:
    narrow = pl.DataFrame(
        schema={
            "rule_idx": pl.Int32,
            "customer_id": pl.String,
            "status_code": pl.UInt8,
            "reason_code": pl.UInt8,
            "condition_values": pl.String,
            "action_id": pl.String,
        }
    )
    return _finish(narrow, rules, ruleset_hash, 0, datetime(1970, 1, 1, tzinfo=UTC))


def _finish(
    narrow: pl.DataFrame,
    rules: list[LoadedRule],
    ruleset_hash: str,
    position: int,
    reference: datetime,
) -> pl.DataFrame:
    """Attach the per-rule columns and decode the status and reason codes."""
    status = pl.Enum(STATUSES)
    reason = pl.Enum(REASONS)
    return (
        narrow.join(_rules_metadata(rules, ruleset_hash), on="rule_idx", how="left")
        .with_columns(
            pl.col("status_code")
            .replace_strict(dict(enumerate(STATUSES)), return_dtype=status)
            .alias("status"),
            pl.col("reason_code")
            .replace_strict(dict(enumerate(REASONS)), default=None, return_dtype=reason)
            .alias("reason"),
            pl.lit(position, dtype=pl.Int64).alias("position"),
            pl.lit(reference.astimezone(UTC), dtype=pl.Datetime("us", "UTC")).alias("decided_at"),
        )
        .select(DECISION_COLUMNS)
    )


def plan_actions(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    *,
    reference: datetime,
    position: int,
    customers: Relation = "customers",
    action_history: Relation | None = "action_history",
    ordered: bool = False,
) -> pl.DataFrame:
    """Decide, for every active rule and every customer matching it, what happens.

    ``customers`` / ``action_history`` are table or view names in ``con`` or frames (polars or
    Arrow, registered for the call); ``action_history=None`` means no earlier decisions.
    ``reference`` is the moment the view describes (naive: UTC). Returns a polars frame with
    :data:`DECISION_COLUMNS`, one row per (active rule, matching customer), in no particular
    order unless ``ordered`` (by rule in rule-set order, then customer id; it costs a sort).
    ``status`` and ``reason`` are polars Enums and the per-rule string columns (rule id,
    version, hashes, channel, campaign, offer, template) Categoricals, so that 5M decisions do
    not carry 5M copies of each: compare them with plain strings, or cast to ``pl.String``.
    """
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    day = reference.astimezone(UTC).date()
    rules = list(ruleset.active_on(day))
    if not rules:
        return _empty_decisions(rules, ruleset.hash)
    with (
        _registered(con, customers, "customers") as customers_sql,
        _registered(con, _rules_frame(rules), "rules") as rules_sql,
        _history_relation(con, action_history) as (history_sql, has_status),
    ):
        _check_customer_columns(con, customers_sql, rules)
        sql, params = build_plan_sql(
            rules,
            customers=customers_sql,
            history=history_sql,
            history_has_status=has_status,
            rules_table=rules_sql,
            with_pressure=ruleset.policy is not None,
            ordered=ordered,
        )
        params.update(ref=reference, position=position, ruleset_hash=ruleset.hash)
        if ruleset.policy is not None:
            params.update(
                max_outbound=ruleset.policy.max_outbound, per_days=ruleset.policy.per_days
            )
        table = con.sql(sql, params=params).to_arrow_table()
    narrow = pl.from_arrow(table)
    assert isinstance(narrow, pl.DataFrame)
    return _finish(narrow, rules, ruleset.hash, position, reference)


@contextmanager
def _history_relation(
    con: duckdb.DuckDBPyConnection, history: Relation | None
) -> Iterator[tuple[str | None, bool]]:
    if history is None:
        yield None, False
        return
    with _registered(con, history, "history") as sql:
        cols = set(_columns_of(con, sql))
        missing = {"customer_id", "rule_id", "occurred_at"} - cols
        if missing:
            raise PlannerInputError(f"action history lacks column(s): {', '.join(sorted(missing))}")
        yield sql, "status" in cols


def _check_customer_columns(
    con: duckdb.DuckDBPyConnection, customers_sql: str, rules: list[LoadedRule]
) -> None:
    have = set(_columns_of(con, customers_sql))
    need = {"customer_id"}
    for r in rules:
        need.update(r.condition.columns)
        if r.consent_channel:
            need.add(f"consent_{r.consent_channel}")
    missing = sorted(need - have)
    if missing:
        raise PlannerInputError(f"customers relation lacks column(s): {', '.join(missing)}")
