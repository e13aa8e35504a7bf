"""The set-based planner decides exactly as the straightforward formulation of its contract.

The reference below walks the documented steps one customer and one rule at a time (candidates
from one plain filtered query per rule; consent, frequency, holdout and contact pressure in
Python), so any optimisation of the planner's SQL that changes a decision, an action id or the
condition values fails here. Random rule sets, customers and histories come from hypothesis;
one fixed case has more rules than one 63-bit word of the planner's per-customer masks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radar.domain.catalogue import decision_action_id as action_id
from radar.domain.envelope import ENVELOPE_FIELDS
from radar.rules.apply import decided_events
from radar.rules.loader import LoadedRule, RuleSet, load_rule_text
from radar.rules.planner import holdout_bucket, plan_actions, plan_chunks

MakeCustomers = Callable[[Mapping[str, Any]], None]  # the make_customers fixture (conftest)
REF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POSITION = 42
CONDITIONS = (
    "clv >= {k}",
    "clv < {k} or segment == 'b'",
    "lead_score between {k} and {k2}",
    "segment in ['a', 'c'] and not (clv > {k2})",
    "lead_score is null or lead_score > {k}",
    "consent_sms",
)
CHANNELS = ("email", "phone", "sms", "web")
HISTORY_SCHEMA = dict.fromkeys(("customer_id", "rule_id", "channel", "status"), pl.String) | {
    "occurred_at": pl.Datetime("us", "UTC")
}


@dataclass(frozen=True)
class Case:
    """Customers, earlier decisions and rule-file text of one comparison."""

    customers: pl.DataFrame
    history: pl.DataFrame
    rules_text: str


def rule_text(
    i: int, cond: str, channel: str, priority: int, holdout: int, limit: int | None
) -> str:
    """One rule of the rule file (ids sort differently from their index)."""
    text = (
        f"  - id: rule-{(i * 7) % 100:02d}-{i}\n    description: r\n    owner: t\n"
        f'    when: "{cond}"\n'
        f"    action: {{channel: {channel}, campaign_id: C{i}, priority: {priority}}}\n"
        f"    holdout: {holdout}\n"
    )
    return text + (f"    limit: {{once_per_days: {limit}}}\n" if limit else "")


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A small random rule set (with or without a policy), customers and history."""
    n_rules = draw(st.integers(1, 7))
    rules = []
    for i in range(n_rules):
        template = draw(st.sampled_from(CONDITIONS))
        k = draw(st.integers(0, 100))
        cond = template.format(k=k, k2=k + draw(st.integers(0, 60)))
        rules.append(
            rule_text(
                i,
                cond,
                draw(st.sampled_from(CHANNELS)),
                draw(st.integers(0, 3)),
                draw(st.sampled_from([0, 0, 30, 50, 100])),
                draw(st.sampled_from([None, 5, 30])),
            )
        )
    policy = draw(
        st.sampled_from(
            [
                "",
                "policy: {max_outbound: 1, per_days: 10}\n",
                "policy: {max_outbound: 3, per_days: 30}\n",
            ]
        )
    )
    n = draw(st.integers(0, 25))
    ids = [f"c{i:02d}" for i in range(n)]
    maybe = st.none() | st.booleans()
    customers = pl.DataFrame(
        {
            "customer_id": ids,
            "clv": [draw(st.none() | st.integers(0, 120).map(float)) for _ in ids],
            "lead_score": [draw(st.none() | st.integers(0, 120).map(float)) for _ in ids],
            "segment": [draw(st.sampled_from([None, "a", "b", "c"])) for _ in ids],
            **{f"consent_{ch}": [draw(maybe) for _ in ids] for ch in ("email", "phone", "sms")},
        },
        schema_overrides={"clv": pl.Float64, "lead_score": pl.Float64, "segment": pl.String},
    )
    rule_ids = [f"rule-{(i * 7) % 100:02d}-{i}" for i in range(n_rules)] + ["retired"]
    rows = draw(st.integers(0, 30)) if ids else 0
    history = pl.DataFrame(
        {
            "customer_id": [draw(st.sampled_from(ids)) for _ in range(rows)],
            "rule_id": [draw(st.sampled_from(rule_ids)) for _ in range(rows)],
            "channel": ["email"] * rows,
            "occurred_at": [REF - timedelta(days=draw(st.integers(-2, 40))) for _ in range(rows)],
            "status": [
                draw(st.sampled_from(["planned", "held_out", "suppressed", None]))
                for _ in range(rows)
            ],
        },
        schema=HISTORY_SCHEMA,
    )
    return Case(customers, history, policy + "rules:\n" + "".join(rules))


def candidates(con: duckdb.DuckDBPyConnection, rule: LoadedRule) -> dict[str, str]:
    """The customers whose condition is true, with their condition values (one plain query)."""
    compiled = rule.compile(table_alias="c")
    pairs = ", ".join(f"'{col}', c.\"{col}\"" for col in compiled.columns)
    values = f"CAST(json_object({pairs}) AS VARCHAR)" if pairs else "'{}'"
    rows = con.execute(
        f"SELECT c.customer_id, {values} FROM customers AS c WHERE COALESCE({compiled.sql}, false)",
        compiled.params,
    ).fetchall()
    return dict(rows)


def reference(
    con: duckdb.DuckDBPyConnection, ruleset: RuleSet, history: pl.DataFrame | None
) -> dict[tuple[str, str], tuple[str, str | None, str, str]]:
    """(customer, rule) → (status, reason, action id, condition values), step by step."""
    rows = [] if history is None else history.to_dicts()
    past = [h for h in rows if h["occurred_at"] <= REF]
    rules = list(ruleset.active_on(REF.date()))
    customers = {r["customer_id"]: r for r in con.sql("SELECT * FROM customers").pl().to_dicts()}
    matched = {r.id: candidates(con, r) for r in rules}
    out: dict[tuple[str, str], tuple[str, str | None, str, str]] = {}
    eligible: dict[str, list[LoadedRule]] = {}
    for r in rules:
        for cid, values in matched[r.id].items():
            aid = action_id(ruleset.hash, r.id, cid, POSITION)
            reason = _pre_reason(r, cid, customers[cid], past)
            if reason is None:
                eligible.setdefault(cid, []).append(r)
                out[(cid, r.id)] = ("planned", None, aid, values)
            else:
                status = "held_out" if reason == "holdout" else "suppressed"
                out[(cid, r.id)] = (status, reason, aid, values)
    if ruleset.policy is not None:
        window = REF - timedelta(days=ruleset.policy.per_days)
        for cid, mine in eligible.items():
            recent = sum(
                1
                for h in past
                if h["customer_id"] == cid
                and h.get("status") not in ("held_out", "suppressed")
                and h["occurred_at"] > window
            )
            ranked = sorted(mine, key=lambda r: (-r.rule.action.priority, r.id))
            for rank, r in enumerate(ranked, start=1):
                if recent + rank > ruleset.policy.max_outbound:
                    _, _, aid, values = out[(cid, r.id)]
                    out[(cid, r.id)] = ("suppressed", "pressure", aid, values)
    return out


def _pre_reason(
    rule: LoadedRule, cid: str, row: dict[str, Any], past: list[dict[str, Any]]
) -> str | None:
    """Consent, then frequency, then holdout; None when the customer can be contacted."""
    channel = rule.consent_channel
    if channel and row[f"consent_{channel}"] is not True:
        return "consent"
    if rule.rule.limit is not None:
        since = REF - timedelta(days=rule.rule.limit.once_per_days)
        if any(
            h["customer_id"] == cid
            and h["rule_id"] == rule.id
            and h.get("status") != "suppressed"
            and h["occurred_at"] > since
            for h in past
        ):
            return "frequency"
    if holdout_bucket(rule.id, cid) < round(rule.rule.holdout * 100):
        return "holdout"
    return None


def planned(
    con: duckdb.DuckDBPyConnection, ruleset: RuleSet, history: pl.DataFrame | None
) -> tuple[pl.DataFrame, dict[tuple[str, str], tuple[str, str | None, str, str]]]:
    """The planner's decisions, as a frame and keyed like :func:`reference`."""
    frame = plan_actions(
        con, ruleset, reference=REF, position=POSITION, action_history=history, ordered=True
    )
    rows = frame.cast({"rule_id": pl.String, "status": pl.String, "reason": pl.String})
    keyed = {
        (r["customer_id"], r["rule_id"]): (
            r["status"],
            r["reason"],
            r["action_id"],
            r["condition_values"],
        )
        for r in rows.to_dicts()
    }
    return frame, keyed


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases())
def test_the_planner_decides_as_the_step_by_step_reference(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers, case: Case
) -> None:
    make_customers(case.customers.to_dict())
    ruleset = load_rule_text(case.rules_text, "random.yaml")
    frame, got = planned(con, ruleset, case.history)
    assert got == reference(con, ruleset, case.history)
    assert frame.height == len(got)
    assert frame["position"].to_list() == [POSITION] * frame.height


def test_pressure_ranks_across_more_rules_than_one_mask_word(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    n_rules = 140
    rules = "".join(
        rule_text(i, f"clv >= {i % 9}", "web", (i * 37) % 11, 20 if i % 3 else 0, None)
        for i in range(n_rules)
    )
    ruleset = load_rule_text("policy: {max_outbound: 90, per_days: 30}\nrules:\n" + rules, "w.yaml")
    ids = [f"c{i}" for i in range(12)]
    make_customers({"customer_id": ids, "clv": [float(i) for i in range(12)]})
    history = pl.DataFrame(
        {
            "customer_id": [ids[i % 12] for i in range(60)],
            "rule_id": ["retired"] * 60,
            "channel": ["web"] * 60,
            "occurred_at": [REF - timedelta(days=i % 20) for i in range(60)],
        },
        schema_overrides={"occurred_at": pl.Datetime("us", "UTC")},
    )
    frame, got = planned(con, ruleset, history)
    assert got == reference(con, ruleset, history)
    reasons = frame["reason"].cast(pl.String).value_counts()
    assert {"pressure", "holdout", None} <= set(reasons["reason"].to_list())


def test_decision_events_carry_the_documented_payload(
    con: duckdb.DuckDBPyConnection, make_customers: MakeCustomers
) -> None:
    rules = "".join(
        rule_text(i, "clv >= 10", ch, i, h, None)
        for i, (ch, h) in enumerate([("email", 0), ("web", 50), ("phone", 0)])
    )
    ruleset = load_rule_text("policy: {max_outbound: 1, per_days: 30}\nrules:\n" + rules, "e.yaml")
    make_customers(
        {
            "customer_id": ["a", "b", "c", 'd"q'],
            "clv": [5.0, 20.0, 30.5, 11.0],
            "consent_email": [True, False, True, True],
            "consent_phone": [True, True, None, True],
        }
    )
    decisions, _ = planned(con, ruleset, None)
    chunks = plan_chunks(
        con, ruleset, reference=REF, position=POSITION, per_chunk=2, action_history=None
    )
    assert chunks["size"].max() == 2 < chunks["size"].sum()  # chunked
    events = decided_events(
        chunks, ruleset, run_id='run "1"', position=POSITION, occurred_at=REF
    ).drop("size")
    assert events.columns == list(ENVELOPE_FIELDS)
    by_id = {r.id: r for r in ruleset.rules}
    expected_decisions = {
        (d["action_id"], d["customer_id"], d["rule_id"], d["status"], d["reason"]): json.loads(
            d["condition_values"]
        )
        for d in decisions.cast(pl.String).to_dicts()
    }
    found: dict[tuple[str | None, ...], Any] = {}
    for e in events.to_dicts():
        data = json.loads(e["data"])
        lists = data.pop("decisions")
        r = by_id[data["rule_id"]]
        expected = {
            "rule_id": r.id,
            "rule_version": r.version,
            "rule_hash": r.hash,
            "ruleset_hash": ruleset.hash,
            "view_position": POSITION,
            "campaign_id": r.rule.action.campaign_id,
            "priority": r.rule.action.priority,
            **({"reason": data["reason"]} if "reason" in data else {}),
            "decision": data["decision"],
            "run_id": 'run "1"',
            "condition_columns": list(r.condition.columns),
        }
        assert (data, list(data)) == (expected, list(expected))
        ids = [action_id(ruleset.hash, r.id, c, POSITION) for c in lists["customer_id"]]
        assert ids == sorted(ids)  # action id order
        for cid, values in zip(lists["customer_id"], lists["condition_values"], strict=True):
            aid = action_id(ruleset.hash, r.id, cid, POSITION)
            named = dict(zip(data["condition_columns"], values, strict=True))
            found[(aid, cid, r.id, data["decision"], data.get("reason"))] = named
        assert e["type"] == "actions.decided"
        assert e["event_id"].startswith("decided-")
        assert (e["customer_id"], e["channel"]) == (None, r.rule.action.channel)
        assert (e["source"], e["direction"], e["occurred_at"]) == ("radar.rules", None, REF)
    assert found == expected_decisions  # each decision once, with its own condition values
    assert 'd"q' in {key[1] for key in found}  # an id that needs escaping survives
