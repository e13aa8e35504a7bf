"""The set-based decision: holdout, consent, frequency, pressure, deterministic ids."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl
import pytest

from radar.domain.catalogue import decision_action_id as action_id
from radar.rules.loader import RuleSet, load_rule_text
from radar.rules.planner import PlannerInputError, holdout_bucket, plan_actions

REF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MakeCustomers = Callable[[Mapping[str, Any]], None]  # the make_customers fixture (conftest)


def rule(
    rule_id: str,
    when: str = "clv >= 0",
    channel: str = "email",
    priority: int = 0,
    extra: str = "",
) -> str:
    return (
        f"  - id: {rule_id}\n    description: test rule\n    owner: tests\n"
        f'    when: "{when}"\n'
        f"    action: {{channel: {channel}, campaign_id: CMP-{rule_id}, priority: {priority}}}\n"
        + "".join(f"    {line}\n" for line in extra.splitlines())
    )


def ruleset(*rules: str, policy: str = "") -> RuleSet:
    return load_rule_text(policy + "rules:\n" + "".join(rules), "test.yaml")


def history(rows: list[tuple[str, str, datetime, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "rule_id": [r[1] for r in rows],
            "channel": ["email"] * len(rows),
            "occurred_at": [r[2] for r in rows],
            "status": [r[3] for r in rows],
        },
        schema={
            "customer_id": pl.String,
            "rule_id": pl.String,
            "channel": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "status": pl.String,
        },
    )


def statuses(frame: pl.DataFrame) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {
        (r["customer_id"], r["rule_id"]): (r["status"], r["reason"])
        for r in frame.cast(
            {"status": pl.String, "reason": pl.String, "rule_id": pl.String}
        ).to_dicts()
    }


def many_customers(n: int) -> dict[str, list[object]]:
    return {
        "customer_id": [f"C-{i:06d}" for i in range(n)],
        "clv": [float(i % 1000) for i in range(n)],
        "consent_email": [True] * n,
        "consent_phone": [i % 2 == 0 for i in range(n)],
    }


def test_holdout_share_is_close_to_the_configured_percentage_and_deterministic(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    make_customers(many_customers(20_000))
    rs = ruleset(rule("ten", extra="holdout: 10"), rule("thirty", extra="holdout: 30"))
    first = plan_actions(con, rs, reference=REF, position=1, action_history=None)
    for rule_id, pct in (("ten", 0.10), ("thirty", 0.30)):
        mine = first.filter(pl.col("rule_id") == rule_id)
        share = mine.filter(pl.col("status") == "held_out").height / mine.height
        assert abs(share - pct) < 0.015, (rule_id, share)
    held = first.filter(pl.col("status") == "held_out").cast({"rule_id": pl.String})
    assert held["reason"].cast(pl.String).unique().to_list() == ["holdout"]
    pct_of = {"ten": 10, "thirty": 30}
    for r in held.head(50).iter_rows(named=True):
        assert holdout_bucket(r["rule_id"], r["customer_id"]) < pct_of[r["rule_id"]] * 100
    again = plan_actions(
        con, rs, reference=REF + timedelta(days=1), position=2, action_history=None
    )
    assert statuses(first) == statuses(again)


def test_no_planned_action_on_a_channel_without_consent(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    make_customers(
        {
            "customer_id": ["yes", "no", "never"],
            "clv": [1.0, 1.0, 1.0],
            "consent_phone": [True, False, None],
        }
    )
    rs = ruleset(
        rule("call", channel="phone"),
        rule("web", channel="web"),
    )
    got = statuses(plan_actions(con, rs, reference=REF, position=1, action_history=None))
    assert got[("yes", "call")] == ("planned", None)
    assert got[("no", "call")] == ("suppressed", "consent")
    assert got[("never", "call")] == ("suppressed", "consent")
    for cid in ("yes", "no", "never"):
        assert got[(cid, "web")] == ("planned", None)


def test_a_rule_cannot_waive_the_consent_of_its_own_channel() -> None:
    from radar.rules.loader import RuleSetInvalid

    with pytest.raises(RuleSetInvalid, match="always needs the customer's phone consent"):
        ruleset(rule("service", channel="phone", extra="consent: none"))


def test_consent_of_another_channel_can_be_required(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    make_customers({"customer_id": ["a", "b"], "clv": [1.0, 1.0], "consent_email": [True, False]})
    rs = ruleset(rule("store-invite", channel="store", extra="consent: email"))
    got = statuses(plan_actions(con, rs, reference=REF, position=1, action_history=None))
    assert got == {
        ("a", "store-invite"): ("planned", None),
        ("b", "store-invite"): ("suppressed", "consent"),
    }


def test_frequency_limit_suppresses_a_repeat_within_the_window(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    ids = ["recent", "old", "other-rule", "future", "held", "not-sent"]
    make_customers({"customer_id": ids, "clv": [1.0] * 6, "consent_email": [True] * 6})
    rs = ruleset(rule("weekly", extra="limit: {once_per_days: 7}"))
    past = history(
        [
            ("recent", "weekly", REF - timedelta(days=6), "planned"),
            ("old", "weekly", REF - timedelta(days=7), "planned"),
            ("other-rule", "monthly", REF - timedelta(days=1), "planned"),
            ("future", "weekly", REF + timedelta(days=1), "planned"),
            ("held", "weekly", REF - timedelta(days=2), "held_out"),
            ("not-sent", "weekly", REF - timedelta(days=2), "suppressed"),
        ]
    )
    got = statuses(plan_actions(con, rs, reference=REF, position=1, action_history=past))
    assert got[("not-sent", "weekly")] == ("planned", None)
    assert got[("recent", "weekly")] == ("suppressed", "frequency")
    assert got[("held", "weekly")] == ("suppressed", "frequency")
    assert got[("old", "weekly")] == ("planned", None)
    assert got[("other-rule", "weekly")] == ("planned", None)
    assert got[("future", "weekly")] == ("planned", None)


def test_pressure_cap_keeps_the_highest_priorities(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    ids = ["fresh", "contacted", "control-contact"]
    make_customers({"customer_id": ids, "clv": [1.0] * 3, "consent_email": [True] * 3})
    rs = ruleset(
        rule("low", priority=1),
        rule("high", priority=9),
        rule("mid-b", priority=5),
        rule("mid-a", priority=5),
        policy="policy: {max_outbound: 2, per_days: 30}\n",
    )
    past = history(
        [
            ("contacted", "elsewhere", REF - timedelta(days=3), "planned"),
            ("contacted", "elsewhere", REF - timedelta(days=40), "planned"),
            ("control-contact", "elsewhere", REF - timedelta(days=3), "held_out"),
        ]
    )
    got = statuses(plan_actions(con, rs, reference=REF, position=1, action_history=past))
    for cid in ("fresh", "control-contact"):
        assert got[(cid, "high")] == ("planned", None)
        assert got[(cid, "mid-a")] == ("planned", None)  # tie at priority 5: rule id decides
        assert got[(cid, "mid-b")] == ("suppressed", "pressure")
        assert got[(cid, "low")] == ("suppressed", "pressure")
    assert got[("contacted", "high")] == ("planned", None)
    for r in ("mid-a", "mid-b", "low"):
        assert got[("contacted", r)] == ("suppressed", "pressure")


def test_held_out_customers_do_not_use_up_contact_pressure(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    make_customers(many_customers(400))
    rs = ruleset(
        rule("top", priority=9, extra="holdout: 50"),
        rule("next", priority=1),
        policy="policy: {max_outbound: 1, per_days: 30}\n",
    )
    got = statuses(plan_actions(con, rs, reference=REF, position=1, action_history=None))
    held = [cid for (cid, r), (st, _) in got.items() if r == "top" and st == "held_out"]
    planned_top = [cid for (cid, r), (st, _) in got.items() if r == "top" and st == "planned"]
    assert held and planned_top
    assert all(got[(cid, "next")] == ("planned", None) for cid in held)
    assert all(got[(cid, "next")] == ("suppressed", "pressure") for cid in planned_top)


def test_applying_twice_at_the_same_position_gives_the_same_action_ids(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    make_customers(many_customers(1_000))
    rs = ruleset(
        rule("a", extra="holdout: 20\nlimit: {once_per_days: 30}"),
        rule("b", channel="phone", priority=3),
        policy="policy: {max_outbound: 1, per_days: 7}\n",
    )
    one = plan_actions(con, rs, reference=REF, position=42, action_history=None, ordered=True)
    two = plan_actions(con, rs, reference=REF, position=42, action_history=None, ordered=True)
    assert one.equals(two)
    # recording the first run's decisions as history changes statuses, not ids
    past = one.filter(pl.col("status") != "suppressed").select(
        pl.col("customer_id"),
        pl.col("rule_id").cast(pl.String),
        pl.col("channel").cast(pl.String),
        pl.col("decided_at").alias("occurred_at"),
        pl.col("status").cast(pl.String),
    )
    three = plan_actions(con, rs, reference=REF, position=42, action_history=past, ordered=True)
    assert three["action_id"].to_list() == one["action_id"].to_list()
    assert not three.filter(pl.col("rule_id") == "a")["status"].is_in(["planned"]).any()
    moved = plan_actions(con, rs, reference=REF, position=43, action_history=None, ordered=True)
    assert set(moved["action_id"]).isdisjoint(set(one["action_id"]))
    r = one.row(0, named=True)
    assert r["action_id"] == action_id(rs.hash, str(r["rule_id"]), r["customer_id"], 42)
    assert one["action_id"].n_unique() == one.height


def test_decisions_carry_provenance_and_condition_values(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    make_customers(
        {
            "customer_id": ["x", "y"],
            "lifecycle_stage": ["lapsed", "new"],
            "clv": [750.0, 10.0],
            "consent_email": [True, True],
        }
    )
    rs = ruleset(rule("wb", when="lifecycle_stage == 'lapsed' and clv > 500", priority=7))
    out = plan_actions(con, rs, reference=REF, position=9, action_history=None)
    assert out.height == 1
    row = out.row(0, named=True)
    loaded = rs.get("wb")
    assert row["customer_id"] == "x" and row["status"] == "planned"
    assert (row["rule_version"], row["rule_hash"], row["ruleset_hash"]) == (
        loaded.version,
        loaded.hash,
        rs.hash,
    )
    assert (row["channel"], row["campaign_id"], row["priority"], row["position"]) == (
        "email",
        "CMP-wb",
        7,
        9,
    )
    assert row["decided_at"] == REF
    assert json.loads(row["condition_values"]) == {"lifecycle_stage": "lapsed", "clv": 750.0}


def test_rules_outside_their_active_period_do_not_run(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    make_customers({"customer_id": ["a"], "clv": [1.0], "consent_email": [True]})
    rs = ruleset(
        rule("past", extra="active: {until: 2026-02-28}"),
        rule("now", extra="active: {from: 2026-03-01, until: 2026-03-01}"),
        rule("later", extra="active: {from: 2026-03-02}"),
    )
    out = plan_actions(con, rs, reference=REF, position=1, action_history=None)
    assert out["rule_id"].cast(pl.String).to_list() == ["now"]
    empty = plan_actions(
        con,
        ruleset(rule("later", extra="active: {from: 2027-01-01}")),
        reference=REF,
        position=1,
        action_history=None,
    )
    assert empty.height == 0 and empty.columns == out.columns


def test_customers_can_be_a_frame_and_missing_columns_are_reported(
    con: duckdb.DuckDBPyConnection,
) -> None:
    frame = pl.DataFrame({"customer_id": ["a", "b"], "clv": [5.0, 0.5]})
    rs = ruleset(rule("web", when="clv > 1", channel="web"))
    out = plan_actions(con, rs, reference=REF, position=1, customers=frame, action_history=None)
    assert out["customer_id"].to_list() == ["a"]
    with pytest.raises(PlannerInputError, match="consent_email"):
        plan_actions(
            con,
            ruleset(rule("mail")),
            reference=REF,
            position=1,
            customers=frame,
            action_history=None,
        )
