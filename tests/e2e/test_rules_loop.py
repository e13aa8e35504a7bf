"""The whole loop through the ``radar`` command: events → view → rules → actions → outcomes →
effect. One rule's treatment truly works and the other's does not; the effect report shows a
positive lift for the first and none for the second."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from factories import run_radar

from radar.simulate import simulate, simulate_outcomes, write_events_jsonl

RULES = """
rules:
  - id: works-email
    description: A mail that truly makes Dutch buyers buy again
    owner: e2e
    when: country == 'NL' and purchases >= 1
    action: {channel: email, campaign_id: WORKS-1, offer: ten-off}
    holdout: 50
    success: {event: purchase, within_days: 14}
  - id: useless-email
    description: A mail that changes nothing for the other buyers
    owner: e2e
    when: country != 'NL' and purchases >= 1
    action: {channel: email, campaign_id: USELESS-1}
    holdout: 50
    success: {event: purchase, within_days: 14}
"""

BROKEN = """
rules:
  - id: broken
    description: Everything wrong
    owner: e2e
    when: purchases > 1 and colour == 'red'
    action: {channel: pigeon, campaign_id: X}
    holdout: 150
  - id: broken
    description: The same id again
    owner: e2e
    when: purchases >= 1
    action: {channel: email, campaign_id: Y}
  - id: text-vs-number
    description: A string compared with a number
    owner: e2e
    when: purchases > 'many'
    action: {channel: email, campaign_id: Z}
"""


def radar(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_radar(*args, cwd=cwd, RADAR_RULES=str(cwd / "rules"))


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.lstrip().startswith(("{", "[")) else None


@pytest.mark.slow
def test_the_loop_shows_lift_for_the_rule_that_works_and_none_for_the_one_that_does_not(
    tmp_path: Path,
) -> None:
    history = tmp_path / "history.jsonl"
    write_events_jsonl(simulate(customers=2000, seed=11).events, history)
    ok(radar("ingest", str(history), cwd=tmp_path))
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mail.yaml").write_text(RULES, encoding="utf-8")
    ok(radar("rules", "check", cwd=tmp_path))

    applied = ok(radar("rules", "apply", "--format", "json", cwd=tmp_path))
    assert applied["ruleset"]["published"] and applied["planned"] > 0
    again = ok(radar("rules", "apply", "--format", "json", cwd=tmp_path))
    assert again["appended"] == 0 and again["duplicates"] == applied["appended"]

    # the operational system pulls the open actions, carries them out and reports back
    ok(radar("actions", "--export", str(tmp_path / "open.jsonl"), cwd=tmp_path))
    ok(
        radar(
            "actions", "--status", "held_out", "--export", str(tmp_path / "held.csv"), cwd=tmp_path
        )
    )
    actions = pl.read_ndjson(tmp_path / "open.jsonl")
    assert actions.height == applied["planned"]
    held = pl.read_csv(tmp_path / "held.csv")
    assert held.height == applied["held_out"]
    outcomes = simulate_outcomes(
        actions.with_columns(pl.col("planned_at").str.to_datetime(time_zone="UTC")),
        seed=5,
        effects={"works-email": 0.30},
        holdouts=held.select(
            "customer_id",
            "rule_id",
            pl.col("planned_at").str.to_datetime(time_zone="UTC").alias("decided_at"),
        ),
        base_rate=0.05,
    )
    write_events_jsonl(outcomes, tmp_path / "outcomes.jsonl")
    ok(radar("ingest", str(tmp_path / "outcomes.jsonl"), cwd=tmp_path))
    assert ok(radar("actions", "--format", "json", cwd=tmp_path)) == []

    effect = {
        r["rule_id"]: r for r in ok(radar("rules", "effect", "--format", "json", cwd=tmp_path))
    }
    works, useless = effect["works-email"], effect["useless-email"]
    assert works["treated"] > 100 and works["holdout"] > 100
    assert works["lift_low"] > 0 and works["significant"]
    assert useless["treated"] > 50 and useless["holdout"] > 50
    assert useless["lift_low"] <= 0 <= useless["lift_high"] and not useless["significant"]
    assert works["contacts"] == works["treated"]


def test_broken_rule_files_are_located_errors_and_nothing_is_applied(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    (tmp_path / "rules" / "bad.yml").write_text("rules: [\n  - id: x\n", encoding="utf-8")
    checked = radar("rules", "check", cwd=tmp_path)
    assert checked.returncode == 2
    err = checked.stderr
    assert "Traceback" not in err
    located_errors = ("broken.yaml:6", "broken.yaml:7", "broken.yaml:8", "broken.yaml:9")
    for located in (*located_errors, "broken.yaml:17", "bad.yml:2"):
        assert located in err, err
    problems = ("colour", "pigeon", "150", "duplicate rule id", "malformed YAML", "'many'")
    for problem in problems:
        assert problem in err, err
    applied = radar("rules", "apply", cwd=tmp_path)
    assert applied.returncode == 2 and "nothing was applied" in applied.stderr
    assert ok(radar("actions", "--status", "all", "--format", "json", cwd=tmp_path)) == []
