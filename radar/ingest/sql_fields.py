"""Payload checks and payload encoding as column-wise SQL, generated from the catalogue.

Every payload field name of the catalogue becomes a column: one ``json_transform`` of the
payload fills them all (the JSON text of each member, NULL when absent or null) and
``json_keys`` tells which members are present. Per event type, the field checks are then a
``coalesce`` of CASE expressions in declaration order — the first problem wins — and the facts
and personal objects are concatenations in that same order. Nothing is unnested, joined or
aggregated, so the cost grows with the rows, not with rows × members.

Messages and precedence are those of the catalogue: a repeated member first, then an unknown
member, then the fields in declaration order (a missing required field, a wrong JSON type, then
the field's constraints). ``tests/contract/test_validators_agree.py`` holds this to the pydantic
models.
"""

from __future__ import annotations

import json
from functools import cache

from radar.domain.catalogue import CATALOGUE
from radar.domain.fieldspec import FieldSpec, payload_fields

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
_NUMERIC = ("DOUBLE", "UBIGINT", "BIGINT", "HUGEINT")


def lit(value: object) -> str:
    """A SQL literal for a catalogue constant (strings quoted, numbers as they are)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def in_list(values: list[str] | tuple[str, ...]) -> str:
    """A parenthesised SQL list of literals, for ``x IN (…)``."""
    return "(" + ", ".join(lit(v) for v in values) + ")"


def duck_types(f: FieldSpec) -> list[str]:
    """The ``json_type`` names a value of ``f`` may have."""
    return sorted({d for k in f.json_types for d in _DUCK_TYPES[k]})


def expected(f: FieldSpec) -> str:
    """What ``f`` expects, for messages ("a number", "a string or a list", …)."""
    kinds = sorted(f.json_types)
    return " or ".join(
        _NAMES[k] for k in kinds if not (k == "integer" and "number" in f.json_types)
    )


def default_json(f: FieldSpec) -> str | None:
    """The JSON text of ``f``'s default filled into the stored facts (None: no default)."""
    if f.default is None or isinstance(f.default, dict | list):
        return None
    return json.dumps(f.default)


@cache
def field_names() -> tuple[str, ...]:
    """Every payload field name of the catalogue, each once."""
    return tuple(sorted({f.name for t in CATALOGUE for f in payload_fields(t)}))


def _col(name: str) -> str:
    """SQL: member ``name``'s JSON text (NULL when absent or null)."""
    return f'payload."{name}"'


def _present(name: str) -> str:
    """SQL: the payload has member ``name`` (a null member has no JSON text, and only a payload
    that spells ``null`` can have one)."""
    spelt = f"coalesce(data_nulls AND list_contains(data_keys, {lit(name)}), FALSE)"
    return f"({_col(name)} IS NOT NULL OR {spelt})"


def fields_sql(source: str = "env") -> str:
    """SELECT ``source``'s rows with the payload's member names (``data_keys``), whether it
    spells ``null`` (``data_nulls``) and ``payload``: per catalogue field name the member's
    JSON text."""
    structure = json.dumps({n: "JSON" for n in field_names()}).replace("'", "''")
    return f"""
    SELECT e.*,
        CASE WHEN e.t_data = 'OBJECT' THEN json_keys(e.data) END AS data_keys,
        contains(CAST(e.data AS VARCHAR), 'null') AS data_nulls,
        CASE WHEN e.t_data = 'OBJECT' THEN json_transform(e.data, '{structure}') END AS payload
    FROM {source} e"""


def _kind_test(f: FieldSpec) -> str:
    """SQL: a non-null member of ``f`` has a JSON type ``f`` does not allow. Members are
    re-serialised JSON, so a string is exactly a text that opens with a quote; other kinds ask
    ``json_type``."""
    allowed, j = duck_types(f), _col(f.name)
    if allowed == ["VARCHAR"]:
        return f"NOT starts_with({j}, '\"')"
    return f"json_type({j}) NOT IN {in_list(allowed)}"


def _value_error(f: FieldSpec) -> str:
    """CASE: the problem with a present member of ``f`` (NULL when it is fine). Evaluated only
    on rows of ``f``'s type, so the JSON functions run for the members a row can have."""
    j = _col(f.name)
    kind, atom = f"json_type({j})", f"json_extract_string({j}, '$')"
    allowed = duck_types(f)
    need = "'expected ' || " + lit(expected(f))
    arms = [f"WHEN {j} IS NULL THEN " + ("NULL" if f.nullable else need)]
    arms.append(f"WHEN {_kind_test(f)} THEN {need}")
    if f.enum is not None:
        arms.append(
            f"WHEN {atom} NOT IN {in_list(list(f.enum))} THEN "
            f"'must be one of ' || {lit(', '.join(f.enum))}"
        )
    if f.fmt == "date":
        arms.append(f"WHEN try_cast({atom} AS DATE) IS NULL THEN 'expected a date (YYYY-MM-DD)'")
    if f.fmt == "date-time":
        arms.append(
            f"WHEN try_cast({atom} AS TIMESTAMPTZ) IS NULL THEN 'expected an ISO 8601 date-time'"
        )
    is_text = "" if allowed == ["VARCHAR"] else f"{kind} = 'VARCHAR' AND "
    for length, op, words in ((f.min_length, "<", "at least"), (f.max_length, ">", "at most")):
        if length is not None:
            arms.append(
                f"WHEN {is_text}length({atom}) {op} {length} "
                f"THEN 'must have {words} {length} characters'"
            )
    is_number = "" if set(allowed) <= set(_NUMERIC) else f"{kind} IN {in_list(_NUMERIC)} AND "
    for bound, op, words in ((f.minimum, "<", "at least"), (f.maximum, ">", "at most")):
        if bound is not None:
            limit = f"CAST({float(bound)!r} AS DOUBLE)"
            arms.append(
                f"WHEN {is_number}TRY_CAST({atom} AS DOUBLE) {op} {limit} "
                f"THEN 'must be {words} ' || {limit}"
            )
    return "CASE " + " ".join(arms) + " END"


def _field_error(f: FieldSpec) -> str:
    """CASE: ``data.<name>: <problem>`` for ``f`` (NULL when it is fine)."""
    missing = lit(f"data.{f.name}: missing required field") if f.required else "NULL"
    return (
        f"CASE WHEN NOT {_present(f.name)} THEN {missing} "
        f"ELSE {lit(f'data.{f.name}: ')} || {_value_error(f)} END"
    )


def _keys_error(type_name: str) -> str:
    """CASE: a repeated member, else the first member ``type_name`` does not have. Cheap for
    a good payload: it has exactly as many members as it has fields of its type."""
    fields = payload_fields(type_name)
    names = [f.name for f in fields]
    known = " + ".join(f"CAST({_present(n)} AS INTEGER)" for n in names) if names else "0"
    repeated = "list_filter(data_keys, lambda k, i: list_position(data_keys, k) < i)"
    unknown = (
        f"list_filter(data_keys, lambda k: k NOT IN {in_list(names)})" if names else "data_keys"
    )
    return (
        f"CASE WHEN len(data_keys) = {known} THEN NULL "
        f"WHEN len({repeated}) > 0 THEN 'data.' || {repeated}[1] || ': repeated field' "
        f"ELSE 'data.' || {unknown}[1] || ': unknown field' END"
    )


def _per_type(expression: object) -> str:
    """``CASE type WHEN … END`` with ``expression(type_name)`` per catalogue type."""
    assert callable(expression)
    arms = " ".join(f"WHEN {lit(name)} THEN {expression(name)}" for name in CATALOGUE)
    return f"CASE type {arms} END"


def data_error_sql() -> str:
    """SQL: the first problem of a row's payload, ``data.<field>: <problem>`` (NULL: none)."""

    def first_problem(type_name: str) -> str:
        checks = [_keys_error(type_name), *(_field_error(f) for f in payload_fields(type_name))]
        return f"coalesce({', '.join(checks)})"

    return _per_type(first_problem)


def _member(f: FieldSpec) -> str:
    """The ``"name":value`` text of ``f`` in the stored facts (its default when absent or null;
    NULL when it has neither)."""
    given = f"{lit(json.dumps(f.name) + ':')} || {_col(f.name)}"
    fallback = default_json(f)
    if fallback is None:
        return f"CASE WHEN {_col(f.name)} IS NOT NULL THEN {given} END"
    stored = f"{lit(json.dumps(f.name) + ':')} || CAST({lit(fallback)} AS JSON)"
    return f"CASE WHEN {_col(f.name)} IS NOT NULL THEN {given} ELSE {stored} END"


def object_sql(personal: bool) -> str:
    """SQL: the JSON object of a valid row's non-personal facts (``{}`` when none) or, with
    ``personal``, of its personal fields (NULL when none)."""

    def members(type_name: str) -> str:
        parts = [_member(f) for f in payload_fields(type_name) if f.personal == personal]
        if not parts:
            return "NULL"
        return f"nullif(concat_ws(',', {', '.join(parts)}), '')"

    inner = _per_type(members)
    if personal:
        return f"'{{' || {inner} || '}}'"
    return f"'{{' || coalesce({inner}, '') || '}}'"
