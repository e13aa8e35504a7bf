"""Actions out, outcomes in: open actions, their export, and the effect measured from the log."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rules_wiring_data import RULES, START, iso

from radar.engine import Engine
from radar.rules.actions import export_actions, list_actions, rule_effect
from radar.rules.apply import apply_rules
from radar.rules.loader import load_rule_text


def test_an_action_stays_open_until_an_outcome_references_its_id(loaded: Engine) -> None:
    result = apply_rules(loaded, load_rule_text(RULES))
    loaded.project()
    open_actions = list_actions(loaded.view)
    assert open_actions.height == result.planned
    assert set(open_actions["status"]) == {"open"}
    first = open_actions.row(0, named=True)
    sent = {
        "event_id": f"sent-{first['action_id']}",
        "type": "campaign.sent",
        "customer_id": first["customer_id"],
        "occurred_at": iso(first["planned_at"]),
        "source": "mailer",
        "channel": "email",
        "data": {"campaign_id": first["campaign_id"], "action_id": first["action_id"]},
    }
    assert loaded.append([sent])[0].status == "accepted"
    loaded.project()
    assert list_actions(loaded.view).height == result.planned - 1
    [done] = list_actions(loaded.view, status="done").to_dicts()
    assert done["action_id"] == first["action_id"] and done["outcome_at"] is not None
    assert list_actions(loaded.view, status="planned").height == result.planned
    assert list_actions(loaded.view, status="held_out").height == result.held_out
    assert list_actions(loaded.view, status="all").height == result.appended


def test_actions_are_filtered_by_channel_and_campaign(loaded: Engine) -> None:
    apply_rules(loaded, load_rule_text(RULES))
    loaded.project()
    everyone = list_actions(loaded.view, campaign="ALL-1")
    assert everyone.height > 0 and set(everyone["rule_id"]) == {"everyone-mail"}
    assert list_actions(loaded.view, channel="phone").height == 0
    assert list_actions(loaded.view, channel="email").height == list_actions(loaded.view).height
    by_priority = list_actions(loaded.view)["priority"].to_list()
    assert by_priority == sorted(by_priority, reverse=True)


def test_exported_actions_read_back_as_jsonl_and_csv(loaded: Engine, tmp_path: Path) -> None:
    apply_rules(loaded, load_rule_text(RULES))
    loaded.project()
    actions = list_actions(loaded.view)
    assert export_actions(actions, tmp_path / "out.jsonl") == actions.height
    assert export_actions(actions, tmp_path / "out.csv") == actions.height
    for frame in (pl.read_ndjson(tmp_path / "out.jsonl"), pl.read_csv(tmp_path / "out.csv")):
        assert frame["action_id"].to_list() == actions["action_id"].to_list()
        assert frame["planned_at"][0].endswith("Z")


def test_effect_compares_treated_and_held_out_success_per_rule_version(loaded: Engine) -> None:
    ruleset = load_rule_text(RULES)
    apply_rules(loaded, ruleset)
    loaded.project()
    treated = list_actions(loaded.view, campaign="BUY-1")["customer_id"].to_list()
    later = START.replace(month=2, day=10)
    buys = [
        {
            "event_id": f"later-{c}",
            "type": "purchase",
            "customer_id": c,
            "occurred_at": iso(later),
            "source": "webshop",
            "data": {"order_id": f"later-{c}", "amount": 5.0, "product": "SKU-2"},
        }
        for c in treated
    ]
    loaded.append(buys)
    effect = rule_effect(loaded).filter(rule_id="buyers-mail").to_dicts()
    [row] = effect
    assert row["rule_version"] == ruleset.get("buyers-mail").version
    assert row["treated"] == len(treated) == row["contacts"]
    assert row["treated_rate"] == 1.0 and row["holdout_rate"] == 0.0
    assert row["lift"] == 1.0 and row["lift_low"] > 0
