"""Why radar did what it did: the provenance chain of one action, read back from the log.

An action event (``action.planned`` / ``action.suppressed`` / ``action.held_out``) carries its
provenance: ``action_id``, ``rule_id``, ``rule_version``, ``rule_hash``, ``ruleset_hash``,
``view_position`` (the log position of the view the rule read), ``condition_values`` and
``run_id``. :func:`explain_action` follows each link:

* **rule** — the ``ruleset.published`` event with that ``ruleset_hash`` and the rule's entry in it;
* **conditions** — each recorded condition value next to the value reconstructed from the log:
  the customer's view row over the events the rule read (:func:`decision_view`: positions
  ``<= view_position`` plus earlier runs' rule events; relative columns measured at the action's
  business time, which is the run's reference moment);
* **analytics** — the customer's latest segment / score / lifecycle events at or before
  ``view_position`` (the groups and scores the rule could read) and the ``analysis.completed``
  runs they (and the action) name by ``run_id``;
* **evidence** — the customer's events that made up that view row (the most recent ones listed,
  all counted);
* **outcome** — what happened afterwards: the customer's events that reference the action
  (``data.action_id``) and any purchase or campaign response within ``outcome_days`` after it.

``checks`` lists the consistency checks an auditor needs (ruleset found and published before the
action, rule hash matches, the view position precedes the action, runs found, condition values
reproduced). An action id that is not in the log raises :class:`NotFound`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from radar.audit.asof import view_row
from radar.audit.history import require_store
from radar.domain.errors import NotFound, RadarError
from radar.domain.fieldspec import fact_columns
from radar.engine import Engine

ACTION_TYPES = ("action.planned", "action.suppressed", "action.held_out")
DERIVED_TYPES = ("segment.entered", "segment.left", "score.changed", "lifecycle.stage_changed")
OUTCOME_TYPES = ("purchase", "campaign.responded")
ENVELOPE = (
    "position",
    "type",
    "event_id",
    "customer_id",
    "occurred_at",
    "recorded_at",
    "source",
    "channel",
    "direction",
)
JSON_FACTS = {name for name, t in fact_columns().items() if t == "JSON"}


@dataclass(frozen=True)
class Check:
    """One consistency check of the provenance chain."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Explanation:
    """The provenance chain of one action (see the module docstring for each part)."""

    action: dict[str, Any]
    rule: dict[str, Any]
    conditions: list[dict[str, Any]]
    analytics: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    evidence: dict[str, Any]
    outcome: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    other_decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "rule": self.rule,
            "conditions": self.conditions,
            "analytics": self.analytics,
            "runs": self.runs,
            "evidence": self.evidence,
            "outcome": self.outcome,
            "checks": [c.to_dict() for c in self.checks],
            "consistent": self.consistent,
            "other_decisions": self.other_decisions,
        }


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or ()]
    out = []
    for row in cur.fetchall():
        d = dict(zip(names, row, strict=True))
        for k in JSON_FACTS:
            if isinstance(d.get(k), str):
                d[k] = json.loads(d[k])
        out.append(d)
    return out


def _event_dicts(
    con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], tail: str = ""
) -> list[dict[str, Any]]:
    """Events as envelope fields plus ``data``: their non-null payload facts."""
    facts = fact_columns()
    cols = ", ".join(f'"{c}"' for c in (*ENVELOPE, *facts))
    cur = con.execute(f"SELECT {cols} FROM events WHERE {where} {tail}", params)
    out = []
    for row in cur.fetchall():
        event = dict(zip(ENVELOPE, row[: len(ENVELOPE)], strict=True))
        data = {}
        for name, value in zip(facts, row[len(ENVELOPE) :], strict=True):
            if value is not None:
                key = name[len("data_") :] if name.startswith("data_") else name
                data[key] = json.loads(value) if name in JSON_FACTS else value
        event["data"] = data
        out.append(event)
    return out


def _types(names: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{n}'" for n in names) + ")"


def explain_action(
    engine: Engine, action_id: str, *, outcome_days: int = 30, evidence_limit: int = 50
) -> Explanation:
    """The provenance chain of ``action_id`` (NotFound when no action event has that id)."""
    if outcome_days < 0 or evidence_limit < 0:
        raise RadarError("outcome days and evidence limit must not be negative")
    require_store(engine)
    engine.project()
    con = engine.view
    decisions = _dicts(
        con.execute(
            "SELECT position, type, event_id, customer_id, occurred_at, recorded_at, source, "
            "channel, action_id, rule_id, rule_version, rule_hash, ruleset_hash, view_position, "
            "campaign_id, offer, template, priority, reason, condition_values, run_id "
            f"FROM events WHERE action_id = $id AND type IN {_types(ACTION_TYPES)} "
            "ORDER BY position",
            {"id": action_id},
        )
    )
    if not decisions:
        raise NotFound(f"no action {action_id!r} in the event log")
    action = decisions[0]
    cid = action["customer_id"]
    checks: list[Check] = []
    rule = _rule(con, action, checks)
    conditions = _conditions(con, action, checks)
    analytics, runs = _analytics(con, action, checks)
    evidence = _evidence(con, action, evidence_limit)
    outcome = _outcome(con, action, cid, outcome_days)
    return Explanation(
        action=action,
        rule=rule,
        conditions=conditions,
        analytics=analytics,
        runs=runs,
        evidence=evidence,
        outcome=outcome,
        checks=checks,
        other_decisions=decisions[1:],
    )


def _rule(
    con: duckdb.DuckDBPyConnection, action: dict[str, Any], checks: list[Check]
) -> dict[str, Any]:
    published = _dicts(
        con.execute(
            "SELECT position, event_id, occurred_at, recorded_at, ruleset_hash, rules, changes "
            "FROM events WHERE type = 'ruleset.published' AND ruleset_hash = $h "
            "ORDER BY position LIMIT 1",
            {"h": action["ruleset_hash"]},
        )
    )
    out: dict[str, Any] = {
        "rule_id": action["rule_id"],
        "rule_version": action["rule_version"],
        "rule_hash": action["rule_hash"],
        "ruleset_hash": action["ruleset_hash"],
        "ruleset": None,
        "entry": None,
    }
    if not published:
        checks.append(
            Check("ruleset_published", False, f"no ruleset.published {action['ruleset_hash']}")
        )
        return out
    ruleset = published[0]
    rules = ruleset.pop("rules") or []
    out["ruleset"] = ruleset
    checks.append(
        Check(
            "ruleset_published",
            ruleset["position"] < action["position"],
            f"published at position {ruleset['position']}, action at {action['position']}",
        )
    )
    entry = next(
        (r for r in rules if isinstance(r, dict) and action["rule_id"] in _ids(r)),
        None,
    )
    out["entry"] = entry
    if entry is None:
        checks.append(Check("rule_in_ruleset", False, f"rule {action['rule_id']} not listed"))
        return out
    stated = next((entry[k] for k in ("rule_hash", "hash", "file_hash") if k in entry), None)
    if stated is not None:
        checks.append(
            Check(
                "rule_hash",
                stated == action["rule_hash"],
                f"ruleset lists {stated}, action names {action['rule_hash']}",
            )
        )
    else:
        checks.append(Check("rule_in_ruleset", True, f"rule {action['rule_id']} is listed"))
    return out


def _ids(entry: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(entry.get(k) for k in ("rule_id", "id"))


def _conditions(
    con: duckdb.DuckDBPyConnection, action: dict[str, Any], checks: list[Check]
) -> list[dict[str, Any]]:
    position = int(action["view_position"])
    checks.append(
        Check(
            "view_before_action",
            position < int(action["position"]),
            f"the rule read the view at position {position}, the action is at {action['position']}",
        )
    )
    recorded = action.get("condition_values") or {}
    found = view_row(
        con, action["customer_id"], reference=action["occurred_at"], extra=decision_view(action)
    )
    rebuilt = {**found[0], **found[1]} if found else {}
    out = []
    for column, value in recorded.items():
        if column not in rebuilt:
            out.append(
                {"column": column, "recorded": value, "reconstructed": None, "matches": None}
            )
            continue
        again = rebuilt[column]
        out.append(
            {
                "column": column,
                "recorded": value,
                "reconstructed": again,
                "matches": _same(value, again),
            }
        )
    if out:
        bad = [c["column"] for c in out if c["matches"] is False]
        checks.append(
            Check(
                "conditions_reproduced",
                not bad,
                "all recorded condition values follow from the log at the view position"
                if not bad
                else f"differ from the log at position {position}: {', '.join(bad)}",
            )
        )
    return out


def decision_view(action: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The events the rule read: those up to ``view_position``, plus radar's own rule events
    (``ruleset.published``, ``action.*``) recorded before the action — ``view_position`` leaves
    them out — except the decisions of the action's own run (same rule set and view position),
    which were not in the view yet when the run planned."""
    rule_types = ("ruleset.published", *ACTION_TYPES)
    return (
        f"position <= $vp OR (type IN {_types(rule_types)} AND position < $ap "
        "AND NOT (ruleset_hash IS NOT DISTINCT FROM $rh AND view_position = $vp "
        f"AND type IN {_types(ACTION_TYPES)}))",
        {
            "vp": int(action["view_position"]),
            "ap": int(action["position"]),
            "rh": action["ruleset_hash"],
        },
    )


def _same(recorded: Any, again: Any) -> bool:
    if recorded is None or again is None:
        return recorded is None and again is None
    if isinstance(again, datetime):
        try:
            return datetime.fromisoformat(str(recorded)) == again
        except ValueError:
            return False
    if isinstance(again, bool) or isinstance(recorded, bool):
        return bool(recorded) == bool(again) and type(recorded) is type(again)
    if isinstance(again, int | float) and isinstance(recorded, int | float):
        return math.isclose(float(recorded), float(again), rel_tol=1e-9, abs_tol=1e-6)
    return str(recorded) == str(again)


def _analytics(
    con: duckdb.DuckDBPyConnection, action: dict[str, Any], checks: list[Check]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    derived = _dicts(
        con.execute(
            "SELECT position, type, occurred_at, recorded_at, segmentation, segment, score_name, "
            "value, previous, stage, previous_stage, run_id FROM events "
            f"WHERE customer_id = $cid AND position <= $p AND type IN {_types(DERIVED_TYPES)} "
            "QUALIFY row_number() OVER (PARTITION BY CASE "
            "WHEN type LIKE 'segment.%' THEN 'segment:' || segmentation "
            "WHEN type = 'score.changed' THEN 'score:' || score_name ELSE 'lifecycle' END "
            "ORDER BY occurred_at DESC, position DESC) = 1 ORDER BY position",
            {"cid": action["customer_id"], "p": int(action["view_position"])},
        )
    )
    derived = [{k: v for k, v in d.items() if v is not None} for d in derived]
    run_ids = sorted({d["run_id"] for d in derived} | ({action["run_id"]} - {None}))
    runs: list[dict[str, Any]] = []
    if run_ids:
        runs = _dicts(
            con.execute(
                "SELECT position, run_id, analysis, version, as_of, view_position, occurred_at, "
                "recorded_at, parameters, metrics FROM events "
                "WHERE type = 'analysis.completed' AND list_contains($ids, run_id) "
                "ORDER BY position",
                {"ids": run_ids},
            )
        )
        # The action's own run_id names the rules run (no analysis.completed): not required.
        required = {d["run_id"] for d in derived}
        missing = sorted(required - {r["run_id"] for r in runs})
        checks.append(
            Check(
                "analysis_runs_found",
                not missing,
                f"{len(runs)} analysis runs found"
                + (f"; missing: {', '.join(missing)}" if missing else ""),
            )
        )
    return derived, runs


def _evidence(con: duckdb.DuckDBPyConnection, action: dict[str, Any], limit: int) -> dict[str, Any]:
    params = {"cid": action["customer_id"], "p": int(action["view_position"])}
    where = "customer_id = $cid AND position <= $p"
    by_type = dict(
        con.execute(
            f"SELECT type, count(*) FROM events WHERE {where} GROUP BY type ORDER BY type", params
        ).fetchall()
    )
    total = sum(by_type.values())
    events = _event_dicts(con, where, params, f"ORDER BY position DESC LIMIT {int(limit)}")
    return {
        "view_position": params["p"],
        "events_total": int(total),
        "events_by_type": by_type,
        "events": events[::-1],
        "listed": len(events),
    }


def _outcome(
    con: duckdb.DuckDBPyConnection, action: dict[str, Any], cid: str, days: int
) -> dict[str, Any]:
    start: datetime = action["occurred_at"]
    not_action = f"type NOT IN {_types(ACTION_TYPES)}"
    linked = _event_dicts(
        con,
        f"customer_id = $cid AND action_id = $id AND {not_action}",
        {"cid": cid, "id": action["action_id"]},
        "ORDER BY occurred_at, position",
    )
    window = _event_dicts(
        con,
        f"customer_id = $cid AND type IN {_types(OUTCOME_TYPES)} AND occurred_at >= $t0 "
        "AND occurred_at <= $t1 AND action_id IS DISTINCT FROM $id",
        {"cid": cid, "id": action["action_id"], "t0": start, "t1": start + timedelta(days)},
        "ORDER BY occurred_at, position",
    )
    return {
        "window_days": days,
        "linked": linked,
        "within_window": window,
        "responded": any(e["type"] in OUTCOME_TYPES for e in linked) or bool(window),
    }
