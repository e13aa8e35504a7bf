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
from radar.rules.schema import Policy

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

#: The outcome code of a (rule, customer) pair in the per-customer row: the index into
#: :data:`REASONS` when suppressed or held out, ``_PLANNED`` when planned (null: no candidate).
_PLANNED = len(REASONS)
_CONSENT, _FREQUENCY, _PRESSURE, _HOLDOUT = range(len(REASONS))
#: Rules per BIGINT word of the per-customer bit masks (bits 0…62: never the sign bit).
_WORD_BITS = 63
_CID = "__radar_cid"
_RECENT = "__radar_recent"


def _rules_frame(rules: list[LoadedRule]) -> pl.DataFrame:
    """What the history join needs of each rule: its index, id and frequency limit."""
    return pl.DataFrame(
        {
            "rule_idx": list(range(len(rules))),
            "rule_id": [r.id for r in rules],
            "once_per_days": [r.rule.limit.once_per_days if r.rule.limit else None for r in rules],
        },
        schema={"rule_idx": pl.Int32, "rule_id": pl.String, "once_per_days": pl.Int32},
    )


def pressure_order(rules: list[LoadedRule]) -> list[int]:
    """Each rule's place in the contact-pressure order (0 first): higher action priority
    first, ties by rule id."""
    order = sorted(range(len(rules)), key=lambda i: (-rules[i].rule.action.priority, rules[i].id))
    place = [0] * len(rules)
    for n, idx in enumerate(order):
        place[idx] = n
    return place


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


def _history_sql(history: str | None, has_status: bool, rules_table: str) -> str:
    """The earlier decisions up to the reference: (customer_id, rule_idx, once_per_days,
    occurred_at, repeats, counts) where ``repeats`` says whether the row counts for the
    frequency limit (planned or held out) and ``counts`` whether it counts toward contact
    pressure (planned). ``rule_idx`` is null for a rule that is not in the run."""
    if history is None:
        return (
            "SELECT NULL::VARCHAR AS customer_id, NULL::INTEGER AS rule_idx, "
            "NULL::INTEGER AS once_per_days, NULL::TIMESTAMPTZ AS occurred_at, "
            "NULL::BOOLEAN AS repeats, NULL::BOOLEAN AS counts WHERE false"
        )
    repeats = "COALESCE(h.status <> 'suppressed', true)" if has_status else "true"
    counts = "COALESCE(h.status NOT IN ('held_out', 'suppressed'), true)" if has_status else "true"
    return (
        "SELECT CAST(h.customer_id AS VARCHAR) AS customer_id, r.rule_idx, r.once_per_days, "
        f"CAST(h.occurred_at AS TIMESTAMPTZ) AS occurred_at, {repeats} AS repeats, "
        f"{counts} AS counts "
        f"FROM {history} AS h LEFT JOIN {rules_table} AS r ON r.rule_id = h.rule_id "
        "WHERE CAST(h.occurred_at AS TIMESTAMPTZ) <= $ref"
    )


def _past_sql(words: int, with_pressure: bool) -> str:
    """Per customer with history: ``__radar_recent``, the decisions counting toward contact
    pressure in the policy's ``$per_days`` window (0 without a policy), and
    ``__radar_soon<w>``, the bit mask of the rules (bit ``rule_idx % 63`` of word
    ``rule_idx // 63``) whose frequency limit the customer's history still blocks."""
    soon = "".join(
        f", bit_or(CAST(1 AS BIGINT) << (rule_idx % {_WORD_BITS})) FILTER (WHERE repeats "
        f"AND rule_idx // {_WORD_BITS} = {w} AND once_per_days IS NOT NULL "
        f"AND occurred_at > $ref - to_days(once_per_days)) AS __radar_soon{w}"
        for w in range(words)
    )
    recent = (
        "count(*) FILTER (WHERE counts AND occurred_at > $ref - to_days(CAST($per_days AS "
        "INTEGER)))"
        if with_pressure
        else "CAST(0 AS BIGINT)"
    )
    return f"SELECT customer_id, {recent} AS {_RECENT}{soon} FROM hist GROUP BY customer_id"


def _holdout_sql(rule: LoadedRule, i: int, params: dict[str, Any]) -> str | None:
    """SQL true when customer ``__radar_cid`` is in rule ``i``'s control group (see
    :func:`holdout_bucket`), or None for a rule without a holdout."""
    basis_points = round(rule.rule.holdout * 100)
    if basis_points <= 0:
        return None
    params[f"h{i}"] = f"{rule.id}|"
    return (
        f"CAST(('0x' || substr(md5($h{i} || {_CID}), 1, 8)) AS BIGINT) % {HOLDOUT_BUCKETS} "
        f"< {int(basis_points)}"
    )


def _outcome_sql(rule: LoadedRule, i: int, params: dict[str, Any], history: bool) -> str:
    """Rule ``i``'s outcome code for the customer row ``c`` before contact pressure: null
    (condition not true), consent, frequency, holdout or ``_PLANNED`` (eligible)."""
    compiled = rule.compile(param_prefix=f"r{i}_p", table_alias="c")
    params.update(compiled.params)
    whens = [f"WHEN NOT COALESCE({compiled.sql}, false) THEN NULL"]
    if rule.consent_channel:
        consent = quote_identifier("consent_" + rule.consent_channel)
        whens.append(f"WHEN NOT COALESCE(c.{consent}, false) THEN {_CONSENT}")
    if history and rule.rule.limit is not None:
        word, bit = divmod(i, _WORD_BITS)
        whens.append(f"WHEN (COALESCE(p.__radar_soon{word}, 0) >> {bit}) & 1 = 1 THEN {_FREQUENCY}")
    holdout = _holdout_sql(rule, i, params)
    if holdout is not None:
        whens.append(f"WHEN {holdout} THEN {_HOLDOUT}")
    return f"CAST(CASE {' '.join(whens)} ELSE {_PLANNED} END AS UTINYINT) AS __radar_o{i}"


def _pressure_sql(place: list[int]) -> tuple[str, str]:
    """The contact-pressure stage over the outcome columns: the select list of the eligible
    rules' bit masks (in pressure order, ``__radar_e<w>``) and that of each rule's final code
    ``__radar_d<i>`` — eligible and ``recent + eligible rules before it >= $max_outbound``
    becomes a pressure suppression."""
    words = -(-len(place) // _WORD_BITS)
    masks = []
    for w in range(words):
        bits = [
            f"CASE WHEN __radar_o{i} = {_PLANNED} THEN CAST({1 << (p % _WORD_BITS)} AS BIGINT) "
            "ELSE CAST(0 AS BIGINT) END"
            for i, p in enumerate(place)
            if p // _WORD_BITS == w
        ]
        masks.append(f"({' | '.join(bits)}) AS __radar_e{w}")
    finals = []
    for i, p in enumerate(place):
        word, bit = divmod(p, _WORD_BITS)
        before = [f"CAST(bit_count(__radar_e{w}) AS BIGINT)" for w in range(word)]
        before.append(f"CAST(bit_count(__radar_e{word} & {(1 << bit) - 1}) AS BIGINT)")
        finals.append(
            f"CASE WHEN __radar_o{i} = {_PLANNED} AND {_RECENT} + {' + '.join(before)} "
            f">= $max_outbound THEN CAST({_PRESSURE} AS UTINYINT) ELSE __radar_o{i} END "
            f"AS __radar_d{i}"
        )
    return ", ".join(masks), ", ".join(finals)


def _branch_sql(rule: LoadedRule, i: int, code: str, keyed: bool) -> str:
    """The decisions of rule ``i``: one row per customer of ``decided`` whose ``code`` column
    is not null, with the narrow columns of :func:`build_plan_sql` (condition values as a JSON
    object when ``keyed``, else as a JSON array in the order of the condition's columns)."""
    columns = rule.condition.columns
    if columns and keyed:
        pairs = ", ".join(f"{_sql_string(c)}, d.{quote_identifier(c)}" for c in columns)
        values = f"CAST(json_object({pairs}) AS VARCHAR)"
    elif columns:
        items = ", ".join(f"d.{quote_identifier(c)}" for c in columns)
        values = f"CAST(json_array({items}) AS VARCHAR)"
    else:
        values = "'{}'" if keyed else "'[]'"
    return (
        f"SELECT CAST({i} AS INTEGER) AS rule_idx, d.{_CID} AS customer_id, "
        f"CAST(CASE d.{code} WHEN {_PLANNED} THEN 0 WHEN {_HOLDOUT} THEN 2 ELSE 1 END "
        f"AS UTINYINT) AS status_code, NULLIF(d.{code}, {_PLANNED}) AS reason_code, "
        f"{values} AS condition_values, md5($a{i} || d.{_CID} || $a_end) AS action_id "
        f"FROM decided AS d WHERE d.{code} IS NOT NULL"
    )


def _history_ctes(
    history: str | None, has_status: bool, rules_table: str, words: int, with_pressure: bool
) -> tuple[str, str, str]:
    """The history's part of the decision query: the ``hist`` and ``past`` CTEs (with a
    leading comma), the join of ``past`` onto the customer row ``c`` and the SQL of the
    customer's recent planned count (all empty / 0 without history)."""
    if history is None:
        return "", "", "CAST(0 AS BIGINT)"
    ctes = (
        f",\nhist AS (\n{_history_sql(history, has_status, rules_table)}\n),\n"
        f"past AS (\n{_past_sql(words, with_pressure)}\n)"
    )
    return ctes, f"LEFT JOIN past AS p ON p.customer_id = c.{_CID}", f"COALESCE(p.{_RECENT}, 0)"


def _plan_params(
    rules: list[LoadedRule],
    *,
    policy: Policy | None,
    reference: datetime,
    ruleset_hash: str,
    position: int,
    history: bool,
) -> dict[str, Any]:
    """The parameters of the decision query other than the conditions' literals: the
    action-id prefix per rule and suffix, and those of the history and the policy."""
    params: dict[str, Any] = {"a_end": f"|{position}"}
    params.update({f"a{i}": f"{ruleset_hash}|{rule.id}|" for i, rule in enumerate(rules)})
    if history:
        params["ref"] = reference
    if policy is not None:
        params["max_outbound"] = policy.max_outbound
        if history:
            params["per_days"] = policy.per_days
    return params


def build_plan_sql(
    rules: list[LoadedRule],
    *,
    customers: str,
    history: str | None,
    history_has_status: bool,
    rules_table: str,
    policy: Policy | None,
    reference: datetime,
    ruleset_hash: str,
    position: int,
    keyed: bool = True,
) -> tuple[str, dict[str, Any]]:
    """The decision query and all its parameters.

    The query works per customer: one pass over ``customers`` computes every rule's outcome
    code (the customer's history joined once, as a count and bit masks), the pressure cap
    ranks a customer's eligible rules by a popcount over a bit mask in pressure order (no
    window, no sort), and one filtered scan per rule of that materialised per-customer result
    emits the decisions. The result is narrow: ``rule_idx`` (index into ``rules``),
    ``customer_id``, ``status_code`` (index into :data:`STATUSES`), ``reason_code`` (index into
    :data:`REASONS`, null when planned), ``condition_values`` (JSON text: an object of the
    condition's columns, or with ``keyed=False`` an array of their values in the order of
    ``rule.condition.columns``) and ``action_id``. It assumes one row per customer id (as the
    view's ``customers`` has).
    """
    params = _plan_params(
        rules,
        policy=policy,
        reference=reference,
        ruleset_hash=ruleset_hash,
        position=position,
        history=history is not None,
    )
    outcomes = ", ".join(
        _outcome_sql(r, i, params, history is not None) for i, r in enumerate(rules)
    )
    carried = sorted({c for r in rules for c in r.condition.columns})
    carry = "".join(f", c.{quote_identifier(c)}" for c in carried)
    words = -(-len(rules) // _WORD_BITS)
    past, join, recent = _history_ctes(
        history, history_has_status, rules_table, words, policy is not None
    )
    kept = ", ".join([_CID, *(quote_identifier(c) for c in carried)])
    if policy is not None:
        masks, finals = _pressure_sql(pressure_order(rules))
        decided = f"SELECT {kept}, {finals} FROM (SELECT *, {masks} FROM flags)"
        code = "__radar_d"
    else:
        decided, code = f"SELECT * EXCLUDE ({_RECENT}) FROM flags", "__radar_o"
    branches = "\nUNION ALL\n".join(
        _branch_sql(r, i, f"{code}{i}", keyed) for i, r in enumerate(rules)
    )
    sql = f"""
WITH base AS (
    SELECT CAST(c.customer_id AS VARCHAR) AS {_CID}, * FROM {customers} AS c
){past},
flags AS (
    SELECT c.{_CID}{carry}, {recent} AS {_RECENT}, {outcomes}
    FROM base AS c {join}
),
decided AS MATERIALIZED (
    {decided}
)
SELECT * FROM (
{branches}
)"""
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
    """Attach the per-rule columns and decode the status and reason codes (gathers by
    index from per-rule and per-code series: no join, no string per row)."""
    meta = _rules_metadata(rules, ruleset_hash).drop("rule_idx")
    statuses = pl.Series(STATUSES, dtype=pl.Enum(STATUSES))
    reasons = pl.Series(REASONS, dtype=pl.Enum(REASONS))
    return narrow.select(
        "action_id",
        "customer_id",
        *(pl.lit(meta[c]).gather(pl.col("rule_idx")).alias(c) for c in meta.columns),
        pl.lit(statuses).gather(pl.col("status_code")).alias("status"),
        pl.lit(reasons).gather(pl.col("reason_code")).alias("reason"),
        "condition_values",
        pl.lit(position, dtype=pl.Int64).alias("position"),
        pl.lit(reference.astimezone(UTC), dtype=pl.Datetime("us", "UTC")).alias("decided_at"),
    ).select(DECISION_COLUMNS)


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
    reference = _aware(reference)
    with _plan_query(con, ruleset, reference, position, customers, action_history) as query:
        if query is None:
            return _empty_decisions([], ruleset.hash)
        rules, sql, params = query
        if ordered:
            sql += "\nORDER BY rule_idx, customer_id"
        table = con.sql(sql, params=params).to_arrow_table()
    narrow = pl.from_arrow(table)
    assert isinstance(narrow, pl.DataFrame)
    return _finish(narrow, rules, ruleset.hash, position, reference)


#: The columns of the chunk frame of :func:`plan_chunks`, in order.
CHUNK_COLUMNS = (
    "rule_id",
    "status",
    "reason",
    "chunk",
    "size",
    "customer_ids",
    "condition_values",
)


def plan_chunks(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    *,
    reference: datetime,
    position: int,
    per_chunk: int,
    customers: Relation = "customers",
    action_history: Relation | None = "action_history",
) -> pl.DataFrame:
    """The decisions of :func:`plan_actions` in *chunks* of about ``per_chunk`` decisions of
    one rule, status and reason (:data:`CHUNK_COLUMNS`): a few thousand rows for millions of
    decisions, each holding its decisions as JSON text.

    A (rule, status, reason) with ``n`` decisions has ``ceil(n / per_chunk)`` chunks; a
    decision's chunk is its action id's first 60 bits modulo that number (so the same
    decisions always make the same chunks), and a chunk lists its decisions in that order.
    ``size`` is the chunk's number of decisions, ``customer_ids`` the customer ids as JSON
    strings and ``condition_values`` the values of the rule's condition columns as JSON arrays
    (in the order of ``rule.condition.columns``), each joined with commas (the inside of a
    JSON array).
    Rows are ordered by rule (rule-set order), status, reason (planned first) and chunk.
    """
    reference = _aware(reference)
    with _plan_query(
        con, ruleset, reference, position, customers, action_history, keyed=False
    ) as query:
        if query is None:
            return pl.DataFrame(schema=dict.fromkeys(CHUNK_COLUMNS, pl.String)).cast(
                {"chunk": pl.Int64, "size": pl.Int64}
            )
        rules, sql, params = query
        table = con.sql(sql, params=params).to_arrow_table()
    narrow = pl.from_arrow(table)
    assert isinstance(narrow, pl.DataFrame)
    return _chunks(narrow, rules, per_chunk)


def _chunks(narrow: pl.DataFrame, rules: list[LoadedRule], per_chunk: int) -> pl.DataFrame:
    """The chunk frame of :func:`plan_chunks` from the narrow decision rows (polars: one
    group-by, no row loop)."""
    keys = ["rule_idx", "status_code", "reason_code"]
    order = pl.col("action_id").str.slice(0, 15).str.to_integer(base=16)  # 60 bits of md5
    chunks = (pl.len().over(keys) + per_chunk - 1) // per_chunk
    customer = pl.struct(pl.col("customer_id").alias("c")).struct.json_encode().str.slice(5)
    grouped = (
        narrow.with_columns(order.alias("order"))
        .with_columns((pl.col("order") % chunks).alias("chunk"))
        .group_by([*keys, "chunk"])
        .agg(
            customer.str.head(-1).sort_by("order").str.join(",").alias("customer_ids"),
            pl.col("condition_values").sort_by("order").str.join(",").alias("condition_values"),
            pl.len().alias("size"),
        )
        .sort([*keys, "chunk"], nulls_last=False)
    )
    ids = pl.Series([r.id for r in rules], dtype=pl.String)
    return grouped.select(
        pl.lit(ids).gather(pl.col("rule_idx")).alias("rule_id"),
        pl.lit(pl.Series(STATUSES)).gather(pl.col("status_code")).alias("status"),
        pl.lit(pl.Series(REASONS)).gather(pl.col("reason_code")).alias("reason"),
        pl.col("chunk").cast(pl.Int64),
        pl.col("size").cast(pl.Int64),
        "customer_ids",
        "condition_values",
    )


def _aware(reference: datetime) -> datetime:
    return reference.replace(tzinfo=UTC) if reference.tzinfo is None else reference


@contextmanager
def _plan_query(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    reference: datetime,
    position: int,
    customers: Relation,
    action_history: Relation | None,
    *,
    keyed: bool = True,
) -> Iterator[tuple[list[LoadedRule], str, dict[str, Any]] | None]:
    """The narrow decision query of the rules active on the reference day, its parameters and
    those rules, with its inputs registered in ``con`` for the block (None: no active rule)."""
    rules = list(ruleset.active_on(reference.astimezone(UTC).date()))
    if not rules:
        yield None
        return
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
            policy=ruleset.policy,
            reference=reference,
            ruleset_hash=ruleset.hash,
            position=position,
            keyed=keyed,
        )
        yield rules, sql, params


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
