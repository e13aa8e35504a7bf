"""simulate_outcomes: executions of planned actions and conversions with a known uplift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from radar.domain.envelope import parse_event
from radar.simulate import simulate_outcomes, to_envelopes

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _actions(n: int, rule: str, campaign: str | None, channel: str = "email") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "action_id": [f"A-{rule}-{i}" for i in range(n)],
            "customer_id": [f"C-{i:06d}" for i in range(n)],
            "rule_id": [rule] * n,
            "channel": [channel] * n,
            "campaign_id": [campaign] * n,
            "planned_at": [T0 + timedelta(minutes=i % 600) for i in range(n)],
        },
        schema_overrides={"campaign_id": pl.String},
    )


def _holdouts(n: int, rule: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [f"H-{i:06d}" for i in range(n)],
            "rule_id": [rule] * n,
            "decided_at": [T0] * n,
        }
    )


def _rate(events: pl.DataFrame, customers: pl.Series) -> float:
    buyers = events.filter(
        (pl.col("type") == "purchase") & pl.col("customer_id").is_in(customers.implode())
    )["customer_id"].n_unique()
    return buyers / len(customers)


def _run(seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    acts = pl.concat(
        [_actions(4000, "winback", "CMP-WB"), _actions(4000, "noop", None, "phone")]
    ).with_columns(customer_id=pl.col("customer_id") + "-" + pl.col("rule_id"))
    held = pl.concat([_holdouts(4000, "winback"), _holdouts(4000, "noop")]).with_columns(
        customer_id=pl.col("customer_id") + "-" + pl.col("rule_id")
    )
    out = simulate_outcomes(acts, seed, {"winback": 0.10}, held, base_rate=0.05)
    return acts, held, out


def test_every_action_is_executed_once_referencing_its_action_id() -> None:
    acts, _, out = _run()
    executed = out.filter(pl.col("type").is_in(["campaign.sent", "contact"]))
    assert executed.height == acts.height
    ids = executed["data"].str.json_path_match("$.action_id")
    assert set(ids) == set(acts["action_id"])
    assert (executed["direction"] == "outbound").all()
    sent = executed.filter(pl.col("type") == "campaign.sent")
    assert sent.height == 4000 and (sent["channel"] == "email").all()


def test_a_rule_with_true_uplift_shows_lift_and_one_without_shows_none() -> None:
    acts, held, out = _run()
    by_rule = {}
    for rule in ("winback", "noop"):
        treated = acts.filter(pl.col("rule_id") == rule)["customer_id"]
        control = held.filter(pl.col("rule_id") == rule)["customer_id"]
        by_rule[rule] = _rate(out, treated) - _rate(out, control)
    assert abs(by_rule["winback"] - 0.10) < 0.025
    assert abs(by_rule["noop"]) < 0.02


def test_outcome_events_are_valid_envelopes_with_idempotent_ids() -> None:
    _, _, out = _run()
    for i, env in enumerate(to_envelopes(out)):
        parse_event(env, where=f"outcomes[{i}]")
    assert out["event_id"].is_unique().all()
    assert out["occurred_at"].is_sorted()
    _, _, again = _run(seed=4)
    sent_a = out.filter(pl.col("type") == "campaign.sent")["event_id"].sort()
    sent_b = again.filter(pl.col("type") == "campaign.sent")["event_id"].sort()
    assert sent_a.equals(sent_b)


def test_outcomes_are_deterministic_for_a_seed() -> None:
    assert _run(seed=9)[2].equals(_run(seed=9)[2])


def test_conversions_come_within_the_window_and_until_cuts_later_ones() -> None:
    acts = _actions(500, "r", "CMP-R")
    out = simulate_outcomes(acts, 1, {"r": 0.5}, window_days=7)
    buys = out.filter(pl.col("type") == "purchase")
    assert buys.height > 150
    assert (buys["occurred_at"] <= T0 + timedelta(days=7, hours=17)).all()
    until = T0 + timedelta(days=2)
    cut = simulate_outcomes(acts, 1, {"r": 0.5}, window_days=7, until=until)
    assert (cut["occurred_at"] <= until).all()
    assert 0 < cut.filter(pl.col("type") == "purchase").height < buys.height
