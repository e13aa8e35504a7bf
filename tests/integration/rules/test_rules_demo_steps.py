"""The rules phase of ``radar demo``: rules → actions → simulated outcomes → effect."""

from __future__ import annotations

from pathlib import Path

from rules_wiring_data import write_rules

from radar.engine import Engine
from radar.rules.actions import list_actions
from radar.rules.demo import EXAMPLES, demo_steps, effect_step, outcomes_step, rules_step
from radar.rules.loader import load_ruleset


def test_the_demo_steps_close_the_loop_and_report_the_lift(loaded: Engine, tmp_path: Path) -> None:
    applied = rules_step(loaded, None, folder=write_rules(tmp_path / "rules"))
    assert applied["planned"] > 0 and applied["stored"] == (
        applied["planned"] + applied["suppressed"] + applied["held_out"]
    )
    reported = outcomes_step(loaded, None, effects={"buyers-mail": 0.95})
    assert reported["actions_carried_out"] == applied["planned"]
    assert reported["outcome_events"] >= applied["planned"]  # a send (and maybe a purchase) each
    assert list_actions(loaded.view).height == 0  # every action was carried out
    measured = effect_step(loaded)
    assert measured["rules_measured"] == 2
    assert measured["lift"]["buyers-mail"].startswith("+")


def test_the_demo_uses_the_example_rules_shipped_with_radar() -> None:
    assert [name for name, _ in demo_steps()] == ["rules", "outcomes", "effect"]
    assert len(load_ruleset(EXAMPLES)) >= 5
