"""Set-based validation and encoding of raw events in DuckDB, driven by catalogue tables.

The catalogue is loaded into two small tables — ``cat_types`` (one row per event type: envelope
rules, topic) and ``cat_fields`` (one row per payload field: JSON types, constraints, default,
personal marker) — generated from the pydantic models via :mod:`radar.domain.fieldspec`. Raw rows
``(line_no, raw)`` are parsed once; their payload members are unnested and joined to
``cat_fields``, so every check is one generic relational expression instead of per-type code:

* :data:`VALIDATE_STEPS` leave ``checked(line_no, error, …)`` — ``error`` is NULL for a valid row,
  else ``"field: reason"`` (the first problem, envelope before payload, fields in order);
* :data:`ENCODE_SQL` turns the valid rows into staged store rows: the state body in the library's
  JSON (facts only, defaults filled, nulls dropped) and the personal fields as plain JSON
  (``pii_plain``) for the caller to encrypt.

``tests/contract/test_validators_agree.py`` feeds the same good and bad events to this validator
and to the pydantic models and requires the same verdict.
"""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import ENVELOPE_FIELDS, MAX_EVENT_BYTES, SYSTEM_STREAM_PREFIX
from radar.domain.events import TOPICS, class_version
from radar.domain.fieldspec import payload_fields
from radar.domain.vocabulary import CHANNELS, DIRECTIONS

_DUCK_TYPES = {
    "string": ("VARCHAR",),
    "number": ("DOUBLE", "UBIGINT", "BIGINT", "HUGEINT"),
    "integer": ("UBIGINT", "BIGINT", "HUGEINT"),
    "boolean": ("BOOLEAN",),
    "object": ("OBJECT",),
    "array": ("ARRAY",),
}
_NAMES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}
ENVELOPE_STRUCTURE = "{" + ", ".join(f'"{f}": "JSON"' for f in ENVELOPE_FIELDS) + "}"


def lit(value: object) -> str:
    """A SQL literal for a catalogue constant (strings quoted, numbers as they are)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _in(values: list[str] | tuple[str, ...]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


def catalogue_tables() -> dict[str, pa.Table]:
    """The catalogue as two Arrow tables: ``cat_types`` and ``cat_fields``."""
    types = []
    fields = []
    for name, t in CATALOGUE.items():
        specs = payload_fields(name)
        types.append(
            {
                "type": name,
                "customer_required": t.customer,
                "channel_required": t.channel_required,
                "direction_rule": t.direction,
                "default_direction": t.direction if t.direction in DIRECTIONS else None,
                "topic": TOPICS[name],
                "class_version": class_version(name),
            }
        )
        for ord_, f in enumerate(specs):
            kinds = sorted(f.json_types)
            expected = " or ".join(
                _NAMES[k] for k in kinds if not (k == "integer" and "number" in f.json_types)
            )
            fields.append(
                {
                    "type": name,
                    "name": f.name,
                    "key_json": json.dumps(f.name) + ":",
                    "ord": ord_,
                    "duck_types": sorted({d for k in kinds for d in _DUCK_TYPES[k]}),
                    "expected": expected,
                    "required": f.required,
                    "nullable": f.nullable,
                    "personal": f.personal,
                    "enum": list(f.enum) if f.enum is not None else None,
                    "fmt": f.fmt,
                    "min_length": f.min_length,
                    "max_length": f.max_length,
                    "minimum": float(f.minimum) if f.minimum is not None else None,
                    "maximum": float(f.maximum) if f.maximum is not None else None,
                    "default_json": (
                        json.dumps(f.default)
                        if f.default is not None and not isinstance(f.default, dict | list)
                        else None
                    ),
                }
            )
    return {"cat_types": pa.Table.from_pylist(types), "cat_fields": pa.Table.from_pylist(fields)}


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
    unknown = f"list_filter(keys, lambda k: k NOT IN {_in(list(ENVELOPE_FIELDS))})"
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
            f"{_in(list(CHANNELS))}",
            lit("channel: must be one of " + ", ".join(CHANNELS)),
        ),
        (
            f"{_t('direction')} NOT IN ('VARCHAR', 'NULL') OR {_s('direction')} NOT IN "
            f"{_in(list(DIRECTIONS))}",
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


_FIELD_ERROR = """CASE
        WHEN f.name IS NULL THEN 'unknown field'
        WHEN kv.type_of = 'NULL'
            THEN CASE WHEN f.nullable THEN NULL ELSE 'expected ' || f.expected END
        WHEN NOT list_contains(f.duck_types, kv.type_of) THEN 'expected ' || f.expected
        WHEN f.enum IS NOT NULL AND NOT list_contains(f.enum, kv.atom)
            THEN 'must be one of ' || array_to_string(f.enum, ', ')
        WHEN f.fmt = 'date' AND try_cast(kv.atom AS DATE) IS NULL
            THEN 'expected a date (YYYY-MM-DD)'
        WHEN f.fmt = 'date-time' AND try_cast(kv.atom AS TIMESTAMPTZ) IS NULL
            THEN 'expected an ISO 8601 date-time'
        WHEN kv.type_of = 'VARCHAR' AND length(kv.atom) < f.min_length
            THEN 'must have at least ' || f.min_length || ' characters'
        WHEN kv.type_of = 'VARCHAR' AND length(kv.atom) > f.max_length
            THEN 'must have at most ' || f.max_length || ' characters'
        WHEN kv.type_of IN ('DOUBLE', 'UBIGINT', 'BIGINT', 'HUGEINT')
             AND TRY_CAST(kv.atom AS DOUBLE) < f.minimum
            THEN 'must be at least ' || f.minimum
        WHEN kv.type_of IN ('DOUBLE', 'UBIGINT', 'BIGINT', 'HUGEINT')
             AND TRY_CAST(kv.atom AS DOUBLE) > f.maximum
            THEN 'must be at most ' || f.maximum
    END"""


def validate_steps(source: str = "raw_in") -> list[str]:
    """Statements that leave TEMP tables ``parsed``, ``pairs`` and ``checked``."""
    return [
        f"""CREATE OR REPLACE TEMP TABLE parsed AS
        WITH v AS (
            SELECT line_no, raw, json_valid(raw) AS valid,
                   starts_with(ltrim(raw), '{{') AS object
            FROM {source}
        )
        SELECT line_no, strlen(raw) AS bytes, CASE WHEN valid THEN raw END AS j,
            CASE WHEN valid AND object THEN json_transform(raw, '{ENVELOPE_STRUCTURE}') END AS e,
            CASE WHEN valid AND object THEN json_keys(raw) END AS keys
        FROM v""",
        f"""CREATE OR REPLACE TEMP TABLE env AS
        WITH m AS (
            SELECT line_no, bytes, j, j IS NULL AS malformed, e IS NULL AS not_object, keys,
                   e."data" AS data, {_MEMBERS}
            FROM parsed
        )
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
        FROM m LEFT JOIN cat_types ct ON ct.type = m.s_type""",
        """CREATE OR REPLACE TEMP TABLE pairs AS
        WITH m AS (
            SELECT line_no, type, json_transform(data, '"MAP(VARCHAR, JSON)"') AS members,
                -- a member given twice makes the map NULL: JSON parsers disagree on which one
                -- wins, so the payload is refused by that member's name before anything else
                CASE WHEN members IS NULL THEN list_filter(
                    json_keys(data), lambda k, i: list_position(json_keys(data), k) < i)[1]
                END AS repeated
            FROM env WHERE error IS NULL AND t_data = 'OBJECT'
        ), unnested AS (
            SELECT line_no, type, repeated IS NOT NULL AS twice,
                   unnest(coalesce(map_keys(members), [repeated])) AS key,
                   unnest(coalesce(map_values(members), [NULL::JSON])) AS value
            FROM m
        ), kv AS (
            SELECT line_no, type, twice, key, value,
                   coalesce(json_type(value), 'NULL') AS type_of,
                   json_extract_string(value, '$') AS atom
            FROM unnested
        )
        SELECT kv.line_no, kv.type, kv.key AS name, kv.value AS value, kv.type_of AS jtype,
               CASE WHEN kv.twice THEN -2 ELSE f.ord END AS ord, f.personal, f.key_json,
               CASE WHEN kv.twice THEN 'repeated field' ELSE {field_error} END AS error
        FROM kv LEFT JOIN cat_fields f ON f.type = kv.type AND f.name = kv.key""".replace(
            "{field_error}", _FIELD_ERROR
        ),
        """CREATE OR REPLACE TEMP TABLE checked AS
        WITH missing AS (
            SELECT env.line_no, f.ord, f.name, 'missing required field' AS error
            FROM env JOIN cat_fields f ON f.type = env.type AND f.required
            WHERE env.error IS NULL AND NOT EXISTS (
                SELECT 1 FROM pairs p WHERE p.line_no = env.line_no AND p.name = f.name)
        ), data_errors AS (
            SELECT line_no, arg_min(
                'data.' || name || ': ' || error,
                coalesce(ord, -1) * 2 + CASE WHEN error = 'missing required field' THEN 1 ELSE 0 END
            ) AS error
            FROM (SELECT line_no, ord, name, error FROM pairs WHERE error IS NOT NULL
                  UNION ALL SELECT line_no, ord, name, error FROM missing)
            GROUP BY line_no
        )
        SELECT env.* EXCLUDE (error, keys, data), coalesce(env.error, d.error) AS error
        FROM env LEFT JOIN data_errors d USING (line_no)""",
    ]


def _iso_utc(ts: str) -> str:
    """SQL for Python's ``datetime.isoformat()`` of a UTC TIMESTAMPTZ (session time zone UTC)."""
    return (
        f"strftime({ts}, '%Y-%m-%dT%H:%M:%S') || "
        f"CASE WHEN microsecond({ts}) % 1000000 <> 0 THEN "
        f"'.' || lpad(CAST(microsecond({ts}) % 1000000 AS VARCHAR), 6, '0') ELSE '' END "
        "|| '+00:00'"
    )


def _ordered_object(which: str) -> str:
    """SQL aggregate: the JSON object of the ``members`` rows matching ``which``, in ``ord``."""
    members = f"list({{'o': ord, 't': key_json || value}}) FILTER (WHERE {which})"
    return (
        f"'{{' || array_to_string(list_transform(list_sort({members}), lambda m: m.t), ',') || '}}'"
    )


ENCODE_SQL = f"""
WITH valid AS (
    SELECT * FROM checked WHERE error IS NULL
), members AS (
    -- the given payload members (JSON nulls dropped), then the defaults of absent fields
    SELECT line_no, key_json, value, ord, personal FROM pairs
    WHERE error IS NULL AND jtype <> 'NULL'
    UNION ALL
    SELECT v.line_no, f.key_json, f.default_json::JSON, f.ord, f.personal
    FROM valid v JOIN cat_fields f ON f.type = v.type AND f.default_json IS NOT NULL
    WHERE NOT EXISTS (SELECT 1 FROM pairs p WHERE p.line_no = v.line_no AND p.name = f.name
                      AND p.jtype <> 'NULL')
), objects AS (
    -- members in catalogue order: an unordered list sorted per row is cheaper than an ordered
    -- aggregate (which sorts every member of the batch)
    SELECT line_no,
        {_ordered_object("NOT personal")} AS facts,
        {_ordered_object("personal")} AS pii
    FROM members GROUP BY line_no
), rows AS (
    SELECT v.line_no, v.type, v.topic, v.class_version, o.facts, o.pii,
        coalesce(v.s_event_id, v.content_id) AS event_id,
        v.s_customer_id AS customer_id,
        v.s_source AS source,
        v.s_channel AS channel,
        coalesce(v.s_direction, v.default_direction) AS direction,
        CAST(v.s_occurred_at AS TIMESTAMPTZ) AS occurred_at
    FROM valid v LEFT JOIN objects o ON o.line_no = v.line_no
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
