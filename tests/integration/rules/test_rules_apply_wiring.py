"""Applying rule files to an engine: action events with provenance, idempotency, resume, consent,
publishing, frequency limits across runs and as-of runs."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rules_wiring_data import RULES, START, consent, history, purchase, registered, write_rules

from radar.engine import Engine, build_engine
from radar.ingest.pipeline import Prepared
from radar.rules import apply as apply_module
from radar.rules.apply import apply_rules, decision_point, load_rules
from radar.rules.loader import load_rule_text

LATEST = START + timedelta(days=30, hours=12)  # the last purchase of the history


def decisions(engine: Engine) -> list[dict[str, Any]]:
    engine.project()
    cur = engine.view.execute(
        "SELECT event_id, type, customer_id, occurred_at, source, channel, action_id, rule_id, "
        "rule_version, rule_hash, ruleset_hash, view_position, reason, "
        "CAST(condition_values AS VARCHAR) AS condition_values, run_id, campaign_id, offer "
        "FROM events WHERE type LIKE 'action.%' ORDER BY event_id"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_applying_appends_one_event_per_decision_with_its_provenance(loaded: Engine) -> None:
    ruleset = load_rule_text(RULES)
    point = decision_point(loaded.view)
    result = apply_rules(loaded, ruleset)
    stored = decisions(loaded)
    assert len(stored) == result.planned + result.suppressed + result.held_out == result.appended
    assert result.planned > 0 and result.suppressed > 0 and result.held_out > 0
    assert point.reference == LATEST
    by_type = {t: sum(1 for d in stored if d["type"] == t) for t in {d["type"] for d in stored}}
    assert by_type == {
        "action.planned": result.planned,
        "action.suppressed": result.suppressed,
        "action.held_out": result.held_out,
    }
    purchases = dict(loaded.view.execute("SELECT customer_id, purchases FROM customers").fetchall())
    for d in stored:
        rule = ruleset.get(d["rule_id"])
        assert d["event_id"] == d["action_id"]
        assert d["source"] == "radar.rules"
        assert d["occurred_at"] == LATEST
        assert d["channel"] == "email"
        assert (d["rule_version"], d["rule_hash"]) == (rule.version, rule.hash)
        assert d["ruleset_hash"] == ruleset.hash
        assert d["view_position"] == point.position
        assert d["run_id"] == result.run_id
        assert d["campaign_id"] == rule.rule.action.campaign_id
        assert json.loads(d["condition_values"]) == {"purchases": purchases[d["customer_id"]]}
        assert (d["reason"] is None) == (d["type"] == "action.planned")


def test_applying_twice_at_the_same_view_position_stores_nothing_new(loaded: Engine) -> None:
    ruleset = load_rule_text(RULES)
    first = apply_rules(loaded, ruleset)
    before = decisions(loaded)
    again = apply_rules(loaded, ruleset)
    assert again.appended == 0
    assert again.duplicates == first.appended
    assert not again.publication.published
    assert decisions(loaded) == before


def test_a_crashed_apply_resumes_without_duplicates_and_decides_as_an_uninterrupted_one(
    loaded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ruleset = load_rule_text(RULES)
    ingestor = loaded.ingestor
    real_commit = ingestor.commit
    commits = 0

    def crash_on_third(prepared: Prepared) -> Any:
        nonlocal commits
        commits += 1
        if commits == 3:
            raise RuntimeError("power cut")
        return real_commit(prepared)

    monkeypatch.setattr(apply_module, "DECISIONS_PER_EVENT", 4)  # several events per rule
    with monkeypatch.context() as power:
        power.setattr(ingestor, "commit", crash_on_third)
        with pytest.raises(RuntimeError, match="power cut"):
            apply_rules(loaded, ruleset, batch_size=2)
    partial = len(decisions(loaded))
    assert 0 < partial < 60
    resumed = apply_rules(loaded, ruleset, batch_size=2)
    assert resumed.duplicates == partial
    stored = decisions(loaded)
    assert len({d["event_id"] for d in stored}) == len(stored)

    with build_engine(data_dir=tmp_path / "clean", event_store=None) as clean:
        clean.append(history())
        apply_rules(clean, ruleset)
        uninterrupted = decisions(clean)
    key = ("event_id", "type", "customer_id", "rule_id", "reason")
    assert [tuple(d[k] for k in key) for d in stored] == [
        tuple(d[k] for k in key) for d in uninterrupted
    ]


def test_no_action_is_planned_on_a_channel_the_customer_has_not_consented_to(
    loaded: Engine,
) -> None:
    withdrawn = [
        registered("C-900"),
        consent("C-900", "email", True, day=1),
        consent("C-900", "email", False, day=5),
        purchase("C-900", 10),
    ]
    loaded.append(withdrawn)
    apply_rules(loaded, load_rule_text(RULES))
    stored = decisions(loaded)
    assert {(d["type"], d["reason"]) for d in stored if d["customer_id"] == "C-900"} == {
        ("action.suppressed", "consent")
    }
    unconsented = loaded.view.execute(
        "SELECT count(*) FROM events AS e JOIN customers AS c USING (customer_id) "
        "WHERE e.type = 'action.planned' AND NOT coalesce(c.consent_email, false)"
    ).fetchone()
    assert unconsented == (0,)
    assert any(d["type"] == "action.planned" for d in stored)


def test_a_changed_rule_set_is_published_with_what_changed_and_actions_link_to_it(
    loaded: Engine, tmp_path: Path
) -> None:
    folder = write_rules(tmp_path / "rules")
    first = apply_rules(loaded, load_rules(folder))
    assert first.publication.published
    assert first.publication.changes["added"] == ["buyers-mail", "everyone-mail"]
    changed = RULES.replace("holdout: 25", "holdout: 50").split("  - id: everyone-mail")[0]
    changed += """  - id: big-spenders
    description: Mail big spenders
    owner: test
    when: revenue >= 60
    action: {channel: email, campaign_id: BIG-1}
"""
    write_rules(folder, changed)
    second = apply_rules(loaded, load_rules(folder))
    pub = second.publication
    assert pub.published and pub.previous_hash == first.publication.ruleset_hash
    assert pub.changes["added"] == ["big-spenders"]
    assert pub.changes["removed"] == ["everyone-mail"]
    [change] = pub.changes["changed"]
    assert change["id"] == "buyers-mail" and change["from_version"] != change["to_version"]
    loaded.project()
    published = loaded.view.execute(
        "SELECT ruleset_hash, CAST(rules AS VARCHAR) FROM events "
        "WHERE type = 'ruleset.published' ORDER BY position"
    ).fetchall()
    assert [h for h, _ in published] == [first.publication.ruleset_hash, pub.ruleset_hash]
    texts = {r["hash"]: r["rule"] for _, rules in published for r in json.loads(rules)}
    unlinked = loaded.view.execute(
        "SELECT count(*) FROM events AS a WHERE a.type LIKE 'action.%' AND a.ruleset_hash NOT IN "
        "(SELECT ruleset_hash FROM events WHERE type = 'ruleset.published')"
    ).fetchone()
    assert unlinked == (0,)
    hashes = {d["rule_hash"] for d in decisions(loaded)}
    assert hashes <= set(texts)
    assert texts[load_rules(folder).get("buyers-mail").hash]["holdout"] == 50


def test_a_frequency_limit_counts_the_decisions_of_earlier_runs(loaded: Engine) -> None:
    ruleset = load_rule_text(RULES)
    first = apply_rules(loaded, ruleset)
    planned_before = {
        d["customer_id"]
        for d in decisions(loaded)
        if d["type"] == "action.planned" and d["rule_id"] == "buyers-mail"
    }
    assert planned_before
    loaded.append([purchase("C-001", 40)])  # new facts: the view position moves on
    second = apply_rules(loaded, ruleset)
    assert second.point.position > first.point.position
    assert second.point.reference == START + timedelta(days=40, hours=12)
    now = [d for d in decisions(loaded) if d["run_id"] == second.run_id]
    buyers = {d["customer_id"]: d for d in now if d["rule_id"] == "buyers-mail"}
    assert all(buyers[c]["reason"] == "frequency" for c in planned_before)
    everyone = [d for d in now if d["rule_id"] == "everyone-mail"]
    assert (
        sum(d["type"] == "action.planned" for d in everyone)
        == first.by_rule.filter(rule_id="everyone-mail")["planned"].item()
    )


def test_applying_at_a_past_moment_reads_the_view_as_of_that_moment(loaded: Engine) -> None:
    at = START + timedelta(days=15)
    result = apply_rules(loaded, load_rule_text(RULES), at=at)
    assert not result.point.live and result.point.reference == at
    stored = decisions(loaded)
    assert {d["occurred_at"] for d in stored} == {at}
    buyers = [d for d in stored if d["rule_id"] == "buyers-mail"]
    assert buyers and all(json.loads(d["condition_values"]) == {"purchases": 1} for d in buyers)
