"""``export_customer``: everything radar holds about a customer (right of access)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_factories import (
    EMAIL,
    NAME,
    RULES,
    action,
    buy,
    consent,
    registered,
    score,
    segment,
    shoppers,
)

from radar.audit.export import export_customer, recorded_exports, write_export
from radar.domain.errors import NotFound
from radar.engine import Engine
from radar.rules.apply import apply_rules
from radar.rules.loader import load_rule_text


def _customer(engine: Engine) -> None:
    events = [
        registered("C-1"),
        {
            "event_id": "move-1",
            "type": "customer.profile_changed",
            "customer_id": "C-1",
            "occurred_at": "2026-03-04T00:00:00Z",
            "source": "crm",
            "data": {"email": "new@example.org", "city": "Brugge", "reason": "move"},
        },
        consent("C-1", "email", True, 1),
        buy("C-1", 1, 2, 30.0),
        segment("C-1", "run-1", 3),
        score("C-1", "run-1", 3, 0.25),
        action("C-1", "A-1", 4, 3),
        buy("C-2", 1, 2),
    ]
    assert {r.status for r in engine.append(events)} == {"accepted"}


def test_the_export_holds_the_view_history_analytics_and_actions(engine: Engine) -> None:
    _customer(engine)
    doc = export_customer(engine, "C-1")
    assert doc["personal_data"] == {"name": NAME, "email": "new@example.org"}
    assert doc["view"]["purchases"] == 1 and doc["view"]["city"] == "Brugge"
    assert doc["consent"]["email"] is True
    assert doc["analytics"]["current"]["segment"] == "loyal"
    assert doc["analytics"]["current"]["churn_risk"] == 0.25
    assert [e["type"] for e in doc["analytics"]["events"]] == ["segment.entered", "score.changed"]
    assert [a["data"]["action_id"] for a in doc["actions"]] == ["A-1"]
    assert len(doc["history"]) == 7
    assert doc["history"][0]["personal"] == {"name": NAME, "email": EMAIL}
    assert all(e["type"] != "purchase" or e["data"]["order_id"] == "C-1-1" for e in doc["history"])


def test_a_written_export_is_recorded_for_forgetting(engine: Engine, tmp_path: Path) -> None:
    _customer(engine)
    path = tmp_path / "out" / "c1.json"
    write_export(engine, "C-1", path)
    assert json.loads(path.read_text())["customer_id"] == "C-1"
    assert recorded_exports(engine, "C-1") == [path.resolve()]
    assert recorded_exports(engine, "C-2") == []


def test_exporting_an_unknown_customer_is_not_found(engine: Engine) -> None:
    _customer(engine)
    with pytest.raises(NotFound):
        export_customer(engine, "C-404")


def test_the_export_holds_the_decisions_of_applied_rules_about_the_customer(
    engine: Engine,
) -> None:
    assert {r.status for r in engine.append(shoppers())} == {"accepted"}
    apply_rules(engine, load_rule_text(RULES))
    doc = export_customer(engine, "C-2")
    planned = engine.view.execute(
        "SELECT type, action_id, rule_id FROM events "
        "WHERE customer_id = 'C-2' AND type LIKE 'action.%' ORDER BY position"
    ).fetchall()
    assert len(planned) == 2
    assert [(a["type"], a["event_id"], a["data"]["rule_id"]) for a in doc["actions"]] == planned
    assert [e for e in doc["history"] if e["type"].startswith("action.")] == doc["actions"]
    assert doc["view"]["actions_planned"] == sum(t == "action.planned" for t, *_ in planned)
