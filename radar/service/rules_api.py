"""The service's use of :mod:`radar.rules`: list, check, preview and measure rule files.

Nothing here appends: a preview decides over the current view and only counts the decisions per
rule (marketers see no customer ids); the effect is measured from the decisions and outcomes
already in the log, with the success definitions of the rule files.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from radar.domain.catalogue import CATALOGUE
from radar.ingest.sql_codec import lit
from radar.projections.customers import radar_sql
from radar.rules.loader import (
    RuleError,
    RuleSet,
    RuleSetInvalid,
    load_rule_sources,
    load_ruleset,
)

OUTCOME_TYPES = tuple(n for n, t in CATALOGUE.items() if t.written_by == "operational")


#: Where radar.rules offers its engine-level functions (the first found is used).
PREVIEW = (("radar.rules.whatif", "preview_rules"), ("radar.rules.apply", "preview_rules"))
EFFECT = (
    ("radar.rules.actions", "rule_effect"),
    ("radar.rules.effect", "rule_effect"),
    ("radar.rules.apply", "rule_effect"),
)


def find_function(candidates: Iterable[tuple[str, str]]) -> Callable[..., Any] | None:
    """The first of ``(module, name)`` that exists, or None (that part of radar is absent)."""
    for module_name, name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name == module_name:
                continue
            raise
        function = getattr(module, name, None)
        if callable(function):
            return function
    return None


def _errors(e: RuleSetInvalid) -> list[dict[str, Any]]:
    return [
        {"file": x.file, "line": x.line, "rule_id": x.rule_id, "message": x.message}
        for x in e.errors
    ]


def load(folder: Path, sources: Iterable[tuple[str, bytes]] | None = None) -> RuleSet:
    """The rule set of ``sources`` when given, else of the rules folder (RuleSetInvalid)."""
    try:
        return load_rule_sources(list(sources)) if sources is not None else load_ruleset(folder)
    except (yaml.YAMLError, UnicodeDecodeError) as e:  # text the YAML reader cannot even read
        raise RuleSetInvalid(
            [RuleError("<request>", None, None, f"unreadable YAML: {e}")]
        ) from None


def check(folder: Path, sources: Iterable[tuple[str, bytes]] | None = None) -> dict[str, Any]:
    """Whether the rule files load; every error with file, line and rule."""
    try:
        ruleset = load(folder, sources)
    except RuleSetInvalid as e:
        return {"valid": False, "errors": _errors(e), "rules": 0, "hash": None}
    return {"valid": True, "errors": [], "rules": len(ruleset), "hash": ruleset.hash}


def describe(folder: Path) -> dict[str, Any]:
    """The rules of the folder (their canonical form) or the errors that stop them loading."""
    try:
        ruleset = load_ruleset(folder)
    except RuleSetInvalid as e:
        return {"folder": str(folder), "valid": False, "errors": _errors(e), "rules": []}
    return {
        "folder": str(folder),
        "valid": True,
        "hash": ruleset.hash,
        "errors": [],
        "rules": [
            {"id": r.id, "hash": r.hash, "file": r.file, "line": r.line, **r.canonical()}
            for r in ruleset
        ],
    }


def preview(
    con: duckdb.DuckDBPyConnection, ruleset: RuleSet, position: int, reference: datetime | None
) -> dict[str, Any]:
    """What applying ``ruleset`` to the view now would decide: counts per rule and status."""
    from radar.rules.planner import plan_actions

    ref = reference or datetime.now(UTC)
    if ref.tzinfo is None:
        ref = ref.replace(tzinfo=UTC)
    moment = lit(ref.astimezone(UTC).isoformat())
    con.execute(
        "CREATE OR REPLACE TEMP VIEW radar_preview_customers AS "
        + radar_sql("customers", f"CAST({moment} AS TIMESTAMPTZ)")
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW radar_preview_history AS SELECT customer_id, rule_id, "
        "occurred_at, replace(type, 'action.', '') AS status FROM events "
        "WHERE type IN ('action.planned', 'action.held_out', 'action.suppressed')"
    )
    decisions = plan_actions(
        con,
        ruleset,
        reference=ref,
        position=position,
        customers="radar_preview_customers",
        action_history="radar_preview_history",
    )
    counts = (
        decisions.select(pl.col("rule_id").cast(pl.String), pl.col("status").cast(pl.String))
        .group_by("rule_id", "status")
        .len()
    )
    per_rule: dict[str, dict[str, int]] = {r.id: {} for r in ruleset}
    for rule_id, status, n in counts.iter_rows():
        per_rule.setdefault(rule_id, {})[status] = int(n)
    return {
        "hash": ruleset.hash,
        "reference": ref.isoformat(),
        "view_position": position,
        "decisions": decisions.height,
        "rules": [{"rule_id": k, "counts": v} for k, v in per_rule.items()],
    }


def effect(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, Any]:
    """Per rule: treated vs hold-out success rates, lift with its interval (radar.rules.effect)."""
    from radar.rules.effect import measure_effect

    try:
        ruleset = load_ruleset(folder)
    except RuleSetInvalid as e:
        return {"valid": False, "errors": _errors(e), "rules": []}
    decisions = con.sql(
        "SELECT action_id, rule_id, rule_version, customer_id, "
        "replace(type, 'action.', '') AS status, occurred_at AS decided_at FROM events "
        "WHERE type IN ('action.planned', 'action.held_out')"
    ).pl()
    if decisions.height == 0:
        return {"valid": True, "errors": [], "rules": []}
    outcomes = con.sql(
        "SELECT customer_id, type, occurred_at, response FROM events "
        "WHERE customer_id IN (SELECT DISTINCT customer_id FROM events "
        "WHERE type IN ('action.planned', 'action.held_out')) AND type IN ("
        + ", ".join(lit(t) for t in OUTCOME_TYPES)
        + ")"
    ).pl()
    table = measure_effect(decisions, outcomes, ruleset, as_of=datetime.now(UTC))
    rows = [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in table.to_dicts()
    ]
    return {"valid": True, "errors": [], "rules": rows}
