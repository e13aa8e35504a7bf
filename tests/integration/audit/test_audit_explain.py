"""``explain_action``: from an action back to its rule, conditions, analyses and evidence, and
forward to its outcome."""

from __future__ import annotations

from typing import Any

import pytest
from audit_factories import (
    RULES,
    action,
    analysis,
    buy,
    consent,
    registered,
    responded,
    ruleset,
    score,
    segment,
    shoppers,
)

from radar.audit.explain import explain_action
from radar.domain.errors import NotFound
from radar.engine import Engine
from radar.rules.apply import apply_rules
from radar.rules.loader import load_rule_text


def _append(engine: Engine, events: list[dict[str, Any]]) -> int:
    results = engine.append(events)
    assert {r.status for r in results} == {"accepted"}, results
    engine.project()
    return engine.projector.position()


def _story(engine: Engine, condition_values: dict[str, Any] | None = None) -> int:
    _append(engine, [registered("C-1"), consent("C-1", "email", True, 1), buy("C-1", 1, 2)])
    _append(engine, [buy("C-1", 2, 4, 35.0), buy("C-2", 1, 4)])
    _append(
        engine,
        [
            analysis("run-1", 10, 5),
            segment("C-1", "run-1", 10, "at_risk"),
            score("C-1", "run-1", 10, 0.7),
            ruleset("rs-1", 11),
        ],
    )
    view_position = engine.projector.position()
    values = condition_values or {"purchases": 2, "revenue": 55.0, "segment": "at_risk"}
    _append(engine, [action("C-1", "A-1", 12, view_position, condition_values=values)])
    _append(
        engine,
        [
            segment("C-1", "run-2", 12.5, "loyal"),  # after the decision: not relied on
            responded("C-1", "A-1", 13),
            buy("C-1", 3, 20),  # within 30 days
            buy("C-1", 4, 60),  # outside the window
        ],
    )
    return view_position


def test_explain_follows_the_provenance_of_an_action(engine: Engine) -> None:
    view_position = _story(engine)
    x = explain_action(engine, "A-1")
    assert x.action["rule_id"] == "winback" and x.action["view_position"] == view_position
    assert x.rule["entry"] == {"rule_id": "winback", "version": "3", "hash": "rh-winback-3"}
    assert x.rule["ruleset"]["ruleset_hash"] == "rs-1"
    assert [(c["column"], c["reconstructed"], c["matches"]) for c in x.conditions] == [
        ("purchases", 2, True),
        ("revenue", 55.0, True),
        ("segment", "at_risk", True),
    ]
    assert [(a["type"], a.get("segment"), a.get("value")) for a in x.analytics] == [
        ("segment.entered", "at_risk", None),
        ("score.changed", None, 0.7),
    ]
    assert [r["run_id"] for r in x.runs] == ["run-1"]
    evidence = x.evidence
    assert evidence["events_total"] == 6  # C-1's events at positions <= the view position
    assert all(e["position"] <= view_position for e in evidence["events"])
    assert evidence["events_by_type"]["purchase"] == 2
    assert [e["type"] for e in x.outcome["linked"]] == ["campaign.responded"]
    assert [e["data"]["order_id"] for e in x.outcome["within_window"]] == ["C-1-3"]
    assert x.outcome["responded"]
    assert x.consistent, [c for c in x.checks if not c.ok]
    assert {c.name for c in x.checks} >= {
        "ruleset_published",
        "rule_hash",
        "view_before_action",
        "conditions_reproduced",
        "analysis_runs_found",
    }


def test_explain_flags_condition_values_the_log_does_not_support(engine: Engine) -> None:
    _story(engine, {"purchases": 5, "revenue": 55.0})
    x = explain_action(engine, "A-1")
    assert [c["matches"] for c in x.conditions] == [False, True]
    failed = [c for c in x.checks if not c.ok]
    assert [c.name for c in failed] == ["conditions_reproduced"]
    assert "purchases" in failed[0].detail


def test_explain_flags_a_missing_rule_set_and_run(engine: Engine) -> None:
    position = _append(engine, [buy("C-1", 1, 2), segment("C-1", "run-404", 2)])
    _append(engine, [action("C-1", "A-9", 3, position, ruleset_hash="rs-404", run_id="rules-7")])
    x = explain_action(engine, "A-9")
    assert x.rule["ruleset"] is None
    assert x.runs == []
    assert "missing: run-404" in next(c.detail for c in x.checks if not c.ok and "run" in c.name)
    assert {c.name for c in x.checks if not c.ok} == {"ruleset_published", "analysis_runs_found"}


def test_an_unknown_action_is_not_found(engine: Engine) -> None:
    _story(engine)
    with pytest.raises(NotFound, match="no action 'A-404'"):
        explain_action(engine, "A-404")


def test_conditions_are_reconstructed_from_the_view_the_rule_read(engine: Engine) -> None:
    """Earlier runs' decisions were in the view (after ``view_position``, which leaves radar's
    rule events out); the decisions of the action's own run were not."""
    p = _append(engine, [buy("C-1", 1, 2), ruleset("rs-1", 3)]) - 1
    _append(engine, [action("C-1", "A-0", 4, p, run_id=None)])  # run 1
    _append(engine, [ruleset("rs-2", 5)])
    values = {"actions_planned": 1, "purchases": 1}
    run2 = [
        {**action("C-1", "A-1b", 6, p, ruleset_hash="rs-2", run_id=None), "event_id": "b"},
        action("C-1", "A-1", 6, p, ruleset_hash="rs-2", condition_values=values, run_id=None),
    ]
    _append(engine, run2)
    x = explain_action(engine, "A-1")
    assert [(c["column"], c["reconstructed"]) for c in x.conditions] == [
        ("actions_planned", 1),
        ("purchases", 1),
    ]
    assert x.consistent, [c for c in x.checks if not c.ok]


def test_every_decision_of_an_applied_rule_set_is_explained_consistently(engine: Engine) -> None:
    _append(engine, shoppers())
    ruleset = load_rule_text(RULES)
    result = apply_rules(engine, ruleset)
    engine.project()
    ids = [
        i
        for (i,) in engine.view.execute(
            "SELECT action_id FROM events WHERE type LIKE 'action.%' ORDER BY action_id"
        ).fetchall()
    ]
    assert len(ids) == result.planned + result.suppressed + result.held_out
    for action_id in ids:
        x = explain_action(engine, action_id)
        assert x.consistent, (action_id, [c.to_dict() for c in x.checks])
        assert x.action["run_id"] == result.run_id
        assert x.rule["entry"]["hash"] == ruleset.get(x.action["rule_id"]).hash
        assert x.conditions and all(c["matches"] for c in x.conditions)
