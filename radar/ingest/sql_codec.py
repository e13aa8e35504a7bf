"""Set-based validation and encoding of raw events in DuckDB, generated from the catalogue.

The envelope is checked against a small table ``cat_types`` (one row per event type: envelope
rules, topic); the payload by column-wise SQL generated from the pydantic models
(:mod:`radar.ingest.sql_fields`): one JSON member column per catalogue field name, checked and
encoded per type in declaration order — no per-member rows, joins or aggregates.

* :data:`VALIDATE_STEPS` leave ``checked(line_no, error, …)`` — ``error`` is NULL for a valid row,
  else ``"field: reason"`` (the first problem, envelope before payload, fields in order);
* :data:`ENCODE_SQL` turns the valid rows into staged store rows: the state body in the library's
  JSON (facts only, defaults filled, nulls dropped) and the personal fields as plain JSON
  (``pii_plain``) for the caller to encrypt.

``tests/contract/test_validators_agree.py`` feeds the same good and bad events to this validator
and to the pydantic models and requires the same verdict.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import ENVELOPE_FIELDS, MAX_EVENT_BYTES, SYSTEM_STREAM_PREFIX
from radar.domain.events import TOPICS, class_version
from radar.domain.vocabulary import CHANNELS, DIRECTIONS
from radar.ingest.sql_fields import data_error_sql, fields_sql, in_list, lit, object_sql

ENVELOPE_STRUCTURE = "{" + ", ".join(f'"{f}": "JSON"' for f in ENVELOPE_FIELDS) + "}"


def catalogue_tables() -> dict[str, pa.Table]:
    """The catalogue's event types as an Arrow table ``cat_types`` (envelope rules, topic)."""
    types = [
        {
            "type": name,
            "customer_required": t.customer,
            "channel_required": t.channel_required,
            "direction_rule": t.direction,
            "default_direction": t.direction if t.direction in DIRECTIONS else None,
            "topic": TOPICS[name],
            "class_version": class_version(name),
        }
        for name, t in CATALOGUE.items()
    ]
    return {"cat_types": pa.Table.from_pylist(types)}


def install_catalogue(con: duckdb.DuckDBPyConnection) -> None:
    """Create the catalogue tables (TEMP) in ``con``."""
    for name, table in catalogue_tables().items():
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")


def _s(member: str) -> str:
    """Column with the text of an envelope member (NULL when absent or JSON null)."""
    return f"s_{member}"


def _t(member: str) -> str:
    """Column with the JSON type of an envelope member (NULL when absent)."""
    return f"t_{member}"


def _member_columns(member: str) -> str:
    """``t_<member>`` (its JSON type, NULL when absent or null) and ``s_<member>`` (its text)
    of an envelope member. The members are re-serialised JSON, so a string is exactly a text
    that opens with a quote, and one without a backslash is its own text between the quotes:
    the JSON functions run only for the rare other members."""
    m = f'e."{member}"'
    plain = f"starts_with({m}, '\"') AND NOT contains({m}, '\\')"
    return (
        f"CASE WHEN starts_with({m}, '\"') THEN 'VARCHAR' ELSE json_type({m}) END AS t_{member}, "
        f"CASE WHEN {plain} THEN {m}[2:-2] ELSE json_extract_string({m}, '$') END AS s_{member}"
    )


_MEMBERS = (
    ", ".join(_member_columns(m) for m in ENVELOPE_FIELDS if m != "data")
    + ", CASE WHEN starts_with(e.\"data\", '{') THEN 'OBJECT' ELSE json_type(e.\"data\") END"
    + " AS t_data"
)


def _envelope_error() -> str:
    """The first envelope problem of a parsed row joined to its ``cat_types`` row ``ct``."""
    unknown = f"list_filter(keys, lambda k: k NOT IN {in_list(list(ENVELOPE_FIELDS))})"
    checks = [
        (f"len({unknown}) > 0", f"{unknown}[1] || ': unknown field'"),
        (
            f"{_t('type')} IS NULL OR {_t('type')} <> 'VARCHAR'",
            "'type: missing or non-string event type'",
        ),
        ("ct.type IS NULL", f"'type: unknown event type ' || to_json({_s('type')})"),
        (f"{_t('event_id')} NOT IN ('VARCHAR', 'NULL')", "'event_id: expected a string'"),
        (
            f"length({_s('event_id')}) NOT BETWEEN 1 AND 200",
            "'event_id: must have 1 to 200 characters'",
        ),
        (f"{_t('source')} IS NULL OR {_t('source')} = 'NULL'", "'source: required'"),
        (f"{_t('source')} <> 'VARCHAR'", "'source: expected a string'"),
        (
            f"length({_s('source')}) NOT BETWEEN 1 AND 100",
            "'source: must have 1 to 100 characters'",
        ),
        (f"{_t('occurred_at')} IS NULL OR {_t('occurred_at')} = 'NULL'", "'occurred_at: required'"),
        (
            f"{_t('occurred_at')} <> 'VARCHAR' OR try_cast({_s('occurred_at')} AS TIMESTAMPTZ) "
            "IS NULL",
            "'occurred_at: expected an ISO 8601 date-time'",
        ),
        (
            f"{_t('channel')} NOT IN ('VARCHAR', 'NULL') OR {_s('channel')} NOT IN "
            f"{in_list(list(CHANNELS))}",
            lit("channel: must be one of " + ", ".join(CHANNELS)),
        ),
        (
            f"{_t('direction')} NOT IN ('VARCHAR', 'NULL') OR {_s('direction')} NOT IN "
            f"{in_list(list(DIRECTIONS))}",
            "'direction: must be inbound or outbound'",
        ),
        (
            f"ct.customer_required AND ({_t('customer_id')} IS NULL OR "
            f"{_t('customer_id')} = 'NULL')",
            "'customer_id: required for this event type'",
        ),
        (f"{_t('customer_id')} NOT IN ('VARCHAR', 'NULL')", "'customer_id: expected a string'"),
        (
            f"length({_s('customer_id')}) NOT BETWEEN 1 AND 100",
            "'customer_id: must have 1 to 100 characters'",
        ),
        (
            f"starts_with({_s('customer_id')}, {lit(SYSTEM_STREAM_PREFIX)})",
            lit(f"customer_id: may not start with {SYSTEM_STREAM_PREFIX!r}"),
        ),
        (f"ct.channel_required AND {_s('channel')} IS NULL", "'channel: required for ' || ct.type"),
        (
            f"ct.direction_rule = 'required' AND {_s('direction')} IS NULL",
            "'direction: required for ' || ct.type || ' (inbound or outbound)'",
        ),
        (
            f"ct.direction_rule = 'none' AND {_s('direction')} IS NOT NULL",
            "'direction: ' || ct.type || ' has no direction'",
        ),
        (
            f"ct.default_direction IS NOT NULL AND {_s('direction')} <> ct.default_direction",
            "'direction: ' || ct.type || ' is always ' || ct.default_direction",
        ),
        (f"{_t('data')} NOT IN ('OBJECT', 'NULL')", "'data: must be an object'"),
    ]
    arms = "\n            ".join(f"WHEN {c} THEN {m}" for c, m in checks)
    return f"CASE\n            {arms}\n        END"


def validate_steps(source: str = "raw_in") -> list[str]:
    """Statements that leave the TEMP table ``checked``: one row per input row with ``error``
    (NULL when valid) and, for a valid row, its envelope members, ``facts`` and ``pii``. One
    statement, so DuckDB streams the batch through every stage without storing it between."""
    return [
        f"""CREATE OR REPLACE TEMP TABLE checked AS
        WITH v AS (
            SELECT line_no, raw, json_valid(raw) AS valid,
                   starts_with(ltrim(raw), '{{') AS object
            FROM {source}
        ), parsed AS (
            SELECT line_no, strlen(raw) AS bytes, CASE WHEN valid THEN raw END AS j,
                CASE WHEN valid AND object
                    THEN json_transform(raw, '{ENVELOPE_STRUCTURE}') END AS e,
                CASE WHEN valid AND object THEN json_keys(raw) END AS keys
            FROM v
        ), m AS (
            SELECT line_no, bytes, j, j IS NULL AS malformed, e IS NULL AS not_object, keys,
                   e."data" AS data, {_MEMBERS}
            FROM parsed
        ), env AS (
            SELECT m.* EXCLUDE (j),
                CASE WHEN m.s_event_id IS NULL THEN 'radar-' || md5(CAST(m.j AS VARCHAR)) END
                    AS content_id,
                ct.type AS type, ct.topic, ct.default_direction, ct.class_version,
                CASE
                    WHEN m.bytes > {MAX_EVENT_BYTES}
                        THEN 'event: oversized (' || m.bytes || ' bytes > {MAX_EVENT_BYTES})'
                    WHEN m.malformed THEN 'event: malformed JSON'
                    WHEN m.not_object THEN 'event: must be a JSON object'
                    ELSE {_envelope_error()}
                END AS error
            FROM m LEFT JOIN cat_types ct ON ct.type = m.s_type
        ), f AS ({fields_sql("env")}
        ), d AS (
            SELECT *, CASE WHEN error IS NULL THEN {data_error_sql()} END AS data_error FROM f
        )
        SELECT * EXCLUDE (error, data_error, keys, data, data_keys, data_nulls, payload),
            coalesce(error, data_error) AS error,
            CASE WHEN error IS NULL AND data_error IS NULL THEN {object_sql(False)} END AS facts,
            CASE WHEN error IS NULL AND data_error IS NULL THEN {object_sql(True)} END AS pii
        FROM d""",
    ]


def _iso_utc(ts: str) -> str:
    """SQL for Python's ``datetime.isoformat()`` of a UTC TIMESTAMPTZ (session time zone UTC)."""
    return (
        f"strftime({ts}, '%Y-%m-%dT%H:%M:%S') || "
        f"CASE WHEN microsecond({ts}) % 1000000 <> 0 THEN "
        f"'.' || lpad(CAST(microsecond({ts}) % 1000000 AS VARCHAR), 6, '0') ELSE '' END "
        "|| '+00:00'"
    )


ENCODE_SQL = f"""
WITH valid AS (
    SELECT * FROM checked WHERE error IS NULL
), rows AS (
    SELECT v.line_no, v.type, v.topic, v.class_version, v.facts, v.pii,
        coalesce(v.s_event_id, v.content_id) AS event_id,
        v.s_customer_id AS customer_id,
        v.s_source AS source,
        v.s_channel AS channel,
        coalesce(v.s_direction, v.default_direction) AS direction,
        CAST(v.s_occurred_at AS TIMESTAMPTZ) AS occurred_at
    FROM valid v
)
SELECT line_no, source, event_id,
    coalesce(customer_id, '{SYSTEM_STREAM_PREFIX}' || type) AS stream,
    topic, customer_id, occurred_at, type,
    '"type":' || to_json(type)
    || ',"event_id":' || to_json(event_id)
    || ',"customer_id":' || coalesce(to_json(customer_id)::VARCHAR, 'null')
    || ',"occurred_at":{{"_type_":"datetime_iso","_data_":"' || {_iso_utc("occurred_at")} || '"}}'
    || ',"source":' || to_json(source)
    || ',"channel":' || coalesce(to_json(channel)::VARCHAR, 'null')
    || ',"direction":' || coalesce(to_json(direction)::VARCHAR, 'null')
    || ',"data":' || coalesce(facts::VARCHAR, '{{}}')
    || CASE WHEN class_version > 1 THEN ',"class_version":' || class_version ELSE '' END AS head,
    pii::VARCHAR AS pii_plain
FROM rows
"""
