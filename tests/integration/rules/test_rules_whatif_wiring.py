"""Preview and backtest: what a rule set would do, now and over past as-of views, appending
nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rules_wiring_data import RULES, START

from radar.domain.errors import RadarError
from radar.engine import Engine
from radar.rules.apply import apply_rules
from radar.rules.loader import load_rule_text
from radar.rules.whatif import backtest_moments, backtest_rules, parse_every, preview_rules


def count_events(engine: Engine) -> int:
    engine.project()
    row = engine.view.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def test_preview_counts_what_apply_would_do_and_appends_nothing(loaded: Engine) -> None:
    ruleset = load_rule_text(RULES)
    before = count_events(loaded)
    preview = preview_rules(loaded, ruleset, sample=3)
    assert count_events(loaded) == before
    rules = {r["rule_id"]: r for r in preview.by_rule.to_dicts()}
    assert rules["buyers-mail"]["candidates"] == 30 and rules["everyone-mail"]["candidates"] == 40
    assert rules["buyers-mail"]["overlap"] == 30  # every buyer is also selected by everyone-mail
    assert rules["everyone-mail"]["consent"] == 20  # odd customers never stated consent
    overlap = {
        (r["rule_id"], r["other_rule_id"]): r["customers"] for r in preview.overlap.to_dicts()
    }
    assert overlap == {("buyers-mail", "everyone-mail"): 30, ("everyone-mail", "buyers-mail"): 30}
    assert preview.sample.group_by("rule_id").len()["len"].to_list() == [3, 3]
    applied = apply_rules(loaded, ruleset)
    assert applied.by_rule.drop("frequency").equals(preview.by_rule.drop("overlap", "frequency"))


def test_backtest_replays_past_views_with_its_own_history_and_appends_nothing(
    loaded: Engine,
) -> None:
    ruleset = load_rule_text(RULES)
    before = count_events(loaded)
    result = backtest_rules(
        loaded,
        ruleset,
        start=START + timedelta(days=5),
        end=START + timedelta(days=35),
        every=timedelta(days=10),
    )
    assert count_events(loaded) == before
    assert [m.day for m in result.moments] == [6, 16, 26, 5]  # days 5, 15, 25, 35 after START
    runs = {(r["run_at"].day, r["rule_id"]): r for r in result.by_run.to_dicts()}
    assert (6, "buyers-mail") not in runs  # nobody had bought by day 5
    assert runs[(6, "everyone-mail")]["candidates"] == 40
    assert runs[(16, "buyers-mail")]["candidates"] == 30  # i % 4 >= 1 bought on day 10
    # the backtest's own day-15 decisions limit buyers-mail (once per 30 days) on day 25
    assert (
        runs[(26, "buyers-mail")]["frequency"]
        == runs[(16, "buyers-mail")]["planned"] + (runs[(16, "buyers-mail")]["held_out"])
    )
    day15 = result.decisions.filter(
        (result.decisions["run_at"].dt.day() == 16) & (result.decisions["rule_id"] == "buyers-mail")
    )
    # only customers with i % 4 == 2 consented and bought on day 10: they buy again on day 20,
    # within the 30 days of success after a day-15 decision
    decided = day15.filter(day15["status"].is_in(["planned", "held_out"]))
    assert decided.height > 0 and decided["success"].all()
    rules = {r["rule_id"]: r for r in result.by_rule.to_dicts()}
    assert rules["everyone-mail"]["runs"] == 4
    assert rules["everyone-mail"]["held_out_rate"] is None  # no hold-out group: no rate


def test_a_backtest_cadence_is_read_and_checked() -> None:
    assert parse_every("30d") == timedelta(days=30)
    assert parse_every("2w") == timedelta(days=14)
    assert parse_every("12h") == timedelta(hours=12)
    with pytest.raises(RadarError, match="--every"):
        parse_every("soon")
    with pytest.raises(RadarError, match="before"):
        backtest_moments(START, START - timedelta(days=1), timedelta(days=1))


def test_backtest_runs_reading_the_same_view_position_keep_apart(loaded: Engine) -> None:
    quiet = START + timedelta(days=31)  # after the last event: every run reads the same view
    result = backtest_rules(
        loaded,
        load_rule_text(RULES),
        start=quiet,
        end=quiet + timedelta(hours=2),
        every=timedelta(hours=1),
    )
    assert len(result.moments) == 3
    assert result.decisions["action_id"].n_unique() == result.decisions.height
    assert result.decisions.height == result.by_run["candidates"].sum()
