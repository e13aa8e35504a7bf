"""The business-rules phase of ``radar demo``: rules → actions → simulated outcomes → effect.

Three steps run after the analyses:

- ``rules`` — apply the example rule files shipped with radar (:data:`EXAMPLES`) to the view:
  publish the rule set and append every decision as an action event;
- ``outcomes`` — the operational systems carry out the open actions and report back: the
  simulator (:func:`radar.simulate.simulate_outcomes`) executes each planned action and lets the
  customer convert with a base rate plus the rule's *true* uplift (:data:`DEMO_EFFECTS`; held-out
  customers get the base rate); the outcome events reference the action id and are ingested;
- ``effect`` — measure each rule: treated vs hold-out success rate and lift with its 95% CI.
  Rules with a true uplift should show a positive lift, the others none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from radar.engine import Engine
from radar.rules.actions import list_actions, rule_effect
from radar.rules.apply import append_lines, apply_rules, load_rules

#: The example rule files shipped with radar.
EXAMPLES = Path(__file__).parent / "examples"
#: The true uplift of each example rule's treatment on the purchase rate (others: none).
DEMO_EFFECTS: dict[str, float] = {
    "winback-lapsed-high-value": 0.15,
    "retention-at-risk": 0.10,
    "welcome-new-customers": 0.08,
    "winback-hibernating-letter": 0.0,
}
BASE_RATE = 0.05
OUTCOME_SEED = 20260


def rules_step(engine: Engine, _sim: Any = None, folder: Path = EXAMPLES) -> dict[str, Any]:
    """Apply the rule files of ``folder`` (default: the shipped examples)."""
    result = apply_rules(engine, load_rules(folder))
    return {
        "rules": result.by_rule.height,
        "planned": result.planned,
        "suppressed": result.suppressed,
        "held_out": result.held_out,
        "stored": result.appended,
        "ruleset": result.publication.ruleset_hash[:12],
    }


def outcomes_step(
    engine: Engine,
    _sim: Any = None,
    effects: dict[str, float] | None = None,
    seed: int = OUTCOME_SEED,
) -> dict[str, Any]:
    """Carry out the open actions (simulated) and ingest what the operational systems report."""
    from radar.simulate import simulate_outcomes
    from radar.simulate.envelopes import envelope_lines

    engine.project()
    con = engine.view
    open_actions = list_actions(con, status="open").select(
        "action_id",
        "customer_id",
        "rule_id",
        "channel",
        "campaign_id",
        pl.col("planned_at"),
    )
    held = list_actions(con, status="held_out").select(
        "customer_id", "rule_id", pl.col("planned_at").alias("decided_at")
    )
    outcomes = simulate_outcomes(
        open_actions,
        seed,
        DEMO_EFFECTS if effects is None else effects,
        held,
        base_rate=BASE_RATE,
    )
    stored = append_lines(engine.ingestor, envelope_lines(outcomes), engine.settings.batch_size)
    caught = engine.project()
    return {
        "actions_carried_out": open_actions.height,
        "outcome_events": stored.accepted,
        "duplicates": stored.duplicates,
        "position": caught.position,
    }


def effect_step(engine: Engine, _sim: Any = None) -> dict[str, Any]:
    """The measured lift per rule (with its 95% CI) next to the true uplift."""
    effect = rule_effect(engine, by_version=False)
    lifts = {
        r["rule_id"]: (
            f"{r['lift']:+.3f} [{r['lift_low']:+.3f}, {r['lift_high']:+.3f}]"
            f" (truth {DEMO_EFFECTS.get(r['rule_id'], 0.0):+.2f})"
            if r["lift"] is not None
            else "n/a"
        )
        for r in effect.iter_rows(named=True)
        if r["treated"]
    }
    return {
        "rules_measured": len(lifts),
        "significant": int(effect["significant"].sum()),
        "lift": lifts,
    }


Step = Callable[[Engine, Any], dict[str, Any]]


def demo_steps() -> list[tuple[str, Step]]:
    """The rules phase of the demo loop, in order (run after the analyses)."""
    return [("rules", rules_step), ("outcomes", outcomes_step), ("effect", effect_step)]
