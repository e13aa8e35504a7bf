"""Flat, backend-neutral descriptions of payload fields, read off the catalogue's JSON Schemas.

The set-based validator and encoder (DuckDB SQL) and the projection's typed columns are generated
from these specs, so they follow the pydantic models rather than a second hand-written copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from radar.domain.catalogue import CATALOGUE, PERSONAL, EventType


@dataclass(frozen=True)
class FieldSpec:
    """One payload field: JSON types allowed, constraints, default and personal marker."""

    name: str
    json_types: frozenset[str]  # string, number, integer, boolean, object, array
    nullable: bool
    required: bool
    personal: bool
    enum: tuple[str, ...] | None = None
    fmt: str | None = None  # "date" or "date-time"
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None

    @property
    def sql_type(self) -> str:
        """The DuckDB type of the projected column."""
        if self.fmt == "date":
            return "DATE"
        if self.fmt == "date-time":
            return "TIMESTAMPTZ"
        types = self.json_types
        if types <= {"integer"}:
            return "BIGINT"
        if types <= {"number", "integer"}:
            return "DOUBLE"
        if types == {"boolean"}:
            return "BOOLEAN"
        if types & {"object", "array"}:
            return "JSON"
        return "VARCHAR"


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        return _resolve(defs[ref.rsplit("/", 1)[-1]], defs)
    return node


_CONSTRAINT_KEYS = ("minLength", "maxLength", "minimum", "maximum", "ge", "le")


def _branches(
    node: dict[str, Any], defs: dict[str, Any], inherited: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The leaf schemas of a (nested) anyOf, each with the constraints stated above it.

    pydantic writes a constraint on a union (``Annotated[float | int, Field(ge=0)]``) as a
    non-standard ``ge``/``le`` next to the ``anyOf``; it applies to every branch.
    """
    node = _resolve(node, defs)
    here = {**(inherited or {}), **{k: node[k] for k in _CONSTRAINT_KEYS if k in node}}
    if "anyOf" in node:
        out: list[dict[str, Any]] = []
        for branch in node["anyOf"]:
            out.extend(_branches(branch, defs, here))
        return out
    return [{**node, **here}]


def _spec(name: str, prop: dict[str, Any], required: bool, defs: dict[str, Any]) -> FieldSpec:
    types: set[str] = set()
    nullable = False
    enum: list[str] | None = None
    constraints: dict[str, Any] = {}
    fmt = None
    for b in _branches(prop, defs):
        t = b.get("type")
        if t == "null":
            nullable = True
            continue
        if "enum" in b:
            enum = [*(enum or []), *b["enum"]]
            t = t or "string"
        if "const" in b:
            enum = [*(enum or []), b["const"]]
            t = t or "string"
        if t is None:  # Any
            types |= {"string", "number", "integer", "boolean", "object", "array"}
            nullable = True
            continue
        types.add(t)
        fmt = b.get("format", fmt)
        for key, dest in (
            ("minLength", "min_length"),
            ("maxLength", "max_length"),
            ("minimum", "minimum"),
            ("maximum", "maximum"),
            ("ge", "minimum"),
            ("le", "maximum"),
        ):
            if key in b:
                constraints[dest] = b[key]
    return FieldSpec(
        name=name,
        json_types=frozenset(types),
        nullable=nullable,
        required=required,
        personal=bool(prop.get(PERSONAL)),
        enum=tuple(enum) if enum is not None else None,
        fmt=fmt if fmt in ("date", "date-time") else None,
        default=prop.get("default"),
        **constraints,
    )


@cache
def payload_fields(type_name: str) -> tuple[FieldSpec, ...]:
    """The payload fields of one event type, in declaration order."""
    t: EventType = CATALOGUE[type_name]
    schema = t.payload.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    return tuple(
        _spec(name, prop, name in required, defs)
        for name, prop in schema.get("properties", {}).items()
    )


@cache
def fact_columns() -> dict[str, str]:
    """Union of the non-personal payload fields of all types → DuckDB column type.

    A field name means the same thing (and has the same type) in every type that uses it; a unit
    test checks this. Fields named like an envelope column get the prefix ``data_``.
    """
    from radar.domain.envelope import ENVELOPE_FIELDS

    out: dict[str, str] = {}
    for name in CATALOGUE:
        for f in payload_fields(name):
            if f.personal:
                continue
            col = f"data_{f.name}" if f.name in ENVELOPE_FIELDS else f.name
            out.setdefault(col, f.sql_type)
    return out


def column_for(field_name: str) -> str:
    """The fact-table column of a payload field (``channel`` → ``data_channel``)."""
    from radar.domain.envelope import ENVELOPE_FIELDS

    return f"data_{field_name}" if field_name in ENVELOPE_FIELDS else field_name
