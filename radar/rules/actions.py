"""Actions out, outcomes in, and the effect measured from them.

:func:`list_actions` lists the decisions in the log; a planned action is *open* until an event
that is not a decision carries its id in ``data.action_id`` (a ``campaign.sent``, ``contact``,
``campaign.responded`` or ``purchase`` reported by an operational system); :func:`export_actions`
writes them as JSONL or CSV for that system. :func:`rule_effect` measures every rule (and
version) on the decisions and outcomes in the log, with the success definitions of the published
rule sets (:func:`success_definitions`), so it needs no rule files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl

from radar.domain.errors import RadarError
from radar.engine import Engine
from radar.rules.apply import ACTION_TYPES, decision_point, published_rulesets
from radar.rules.effect import measure_effect
from radar.rules.loader import RuleSet
from radar.rules.schema import Success

ACTION_STATUSES = ("open", "done", "planned", "held_out", "suppressed", "all")
ActionStatus = Literal["open", "done", "planned", "held_out", "suppressed", "all"]
_ACTION_TYPES_SQL = "(" + ", ".join(f"'{t}'" for t in ACTION_TYPES.values()) + ")"


def outcome_events(con: duckdb.DuckDBPyConnection, events: list[str]) -> pl.DataFrame:
    """The events of the given types (``customer_id, type, occurred_at, response``): the
    outcomes a rule's success is measured on."""
    if not events:
        return pl.DataFrame(
            schema={
                "customer_id": pl.String,
                "type": pl.String,
                "occurred_at": pl.Datetime("us", "UTC"),
                "response": pl.String,
            }
        )
    names = ", ".join("'" + e.replace("'", "''") + "'" for e in events)
    return con.sql(
        "SELECT customer_id, type, occurred_at, response FROM events "
        f"WHERE customer_id IS NOT NULL AND type IN ({names})"
    ).pl()


def success_definitions(
    con: duckdb.DuckDBPyConnection, ruleset: RuleSet | None = None
) -> dict[str, Success]:
    """Success definition per rule id: from the published rule sets in the log (later ones win),
    then from ``ruleset`` (the rule files now) for the rules it has."""
    defs: dict[str, Success] = {}
    for published in published_rulesets(con):
        for entry in published["rules"]:
            success = entry.get("rule", {}).get("success")
            if success is not None:
                defs[entry["id"]] = Success.model_validate(success)
    if ruleset is not None:
        for r in ruleset.rules:
            if r.rule.success is not None:
                defs[r.id] = r.rule.success
    return defs


def logged_decisions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The planned and held-out decisions in the log (the input of :func:`rule_effect`)."""
    return con.sql(
        "SELECT action_id, customer_id, rule_id, rule_version, "
        "CASE WHEN type = 'action.planned' THEN 'planned' ELSE 'held_out' END AS status, "
        "occurred_at AS decided_at FROM events "
        "WHERE type IN ('action.planned', 'action.held_out')"
    ).pl()


def rule_effect(
    engine: Engine,
    ruleset: RuleSet | None = None,
    *,
    by_version: bool = True,
    mature_only: bool = False,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """The effect per rule (and version): treated vs hold-out success rate, lift with its
    confidence interval, contacts spent (:func:`radar.rules.effect.measure_effect`). With
    ``mature_only``, only decisions whose success window closed by the view's reference."""
    engine.project()
    con = engine.view
    defs = success_definitions(con, ruleset)
    events = sorted({s.event for s in defs.values()})
    as_of = decision_point(con).reference if mature_only else None
    return measure_effect(
        logged_decisions(con),
        outcome_events(con, events),
        defs,
        as_of=as_of,
        confidence=confidence,
        by_version=by_version,
    )


# ------------------------------------------------------------------------------------ actions

ACTION_COLUMNS = (
    "action_id",
    "status",
    "customer_id",
    "channel",
    "campaign_id",
    "offer",
    "template",
    "priority",
    "rule_id",
    "rule_version",
    "ruleset_hash",
    "view_position",
    "reason",
    "planned_at",
    "outcome_at",
    "run_id",
)


def list_actions(
    con: duckdb.DuckDBPyConnection,
    *,
    status: ActionStatus = "open",
    channel: str | None = None,
    campaign: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Decisions in the log with :data:`ACTION_COLUMNS`, by priority then planned time.

    ``status``: ``open`` (planned, no outcome reported yet), ``done`` (planned, an outcome
    references it), ``planned`` (both), ``held_out``, ``suppressed`` or ``all``.
    """
    if status not in ACTION_STATUSES:
        raise RadarError(f"unknown status {status!r}: use one of {', '.join(ACTION_STATUSES)}")
    where = []
    params: dict[str, Any] = {}
    if status in ("open", "done"):
        where.append(f"status = '{status}'")
    elif status == "planned":
        where.append("status IN ('open', 'done')")
    elif status != "all":
        where.append(f"status = '{status}'")
    if channel is not None:
        where.append("channel = $channel")
        params["channel"] = channel
    if campaign is not None:
        where.append("campaign_id = $campaign")
        params["campaign"] = campaign
    sql = f"""
WITH outcome AS (
    SELECT action_id, min(occurred_at) AS outcome_at FROM events
    WHERE action_id IS NOT NULL AND type NOT IN {_ACTION_TYPES_SQL} GROUP BY action_id
),
decision AS (
    SELECT d.action_id,
        CASE d.type WHEN 'action.planned' THEN
            CASE WHEN o.action_id IS NULL THEN 'open' ELSE 'done' END
            WHEN 'action.held_out' THEN 'held_out' ELSE 'suppressed' END AS status,
        d.customer_id, d.channel, d.campaign_id, d.offer, d.template, d.priority, d.rule_id,
        d.rule_version, d.ruleset_hash, d.view_position, d.reason, d.occurred_at AS planned_at,
        CASE WHEN d.type = 'action.planned' THEN o.outcome_at END AS outcome_at, d.run_id
    FROM events AS d LEFT JOIN outcome AS o ON o.action_id = d.action_id
    WHERE d.type IN {_ACTION_TYPES_SQL}
)
SELECT * FROM decision {"WHERE " + " AND ".join(where) if where else ""}
ORDER BY priority DESC, planned_at, action_id
{f"LIMIT {int(limit)}" if limit is not None else ""}
"""
    return con.sql(sql, params=params).pl().select(ACTION_COLUMNS)


def export_actions(actions: pl.DataFrame, path: Path) -> int:
    """Write actions as JSONL (``.jsonl``/``.ndjson``/``.json``) or CSV (``.csv``); returns the
    number of actions written. Times are ISO 8601 UTC."""
    suffix = path.suffix.lower()
    out = actions.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        for c, t in actions.schema.items()
        if isinstance(t, pl.Datetime)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".jsonl", ".ndjson", ".json"):
        out.write_ndjson(path)
    elif suffix == ".csv":
        out.write_csv(path)
    else:
        raise RadarError(f"{path}: unknown export format {suffix!r} (use .jsonl or .csv)")
    return out.height
