"""Events for the audit tests: a registered customer with personal data, consents, analytics
results, a published rule set and an action with its provenance, and the action's outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NAME = "Griet Vandersteen-Oosterhout"
EMAIL = "griet.oosterhout@example.org"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def registered(customer: str, name: str = NAME, email: str = EMAIL) -> dict[str, Any]:
    return {
        "event_id": f"reg-{customer}",
        "type": "customer.registered",
        "customer_id": customer,
        "occurred_at": at(0),
        "source": "crm",
        "channel": "web",
        "data": {"name": name, "email": email, "city": "Gent", "country": "BE"},
    }


def consent(customer: str, channel: str, granted: bool, day: float, n: int = 0) -> dict[str, Any]:
    return {
        "event_id": f"consent-{customer}-{channel}-{day}-{n}",
        "type": "consent.changed",
        "customer_id": customer,
        "occurred_at": at(day),
        "source": "web",
        "data": {"channel": channel, "granted": granted},
    }


def buy(customer: str, n: int, day: float, amount: float = 20.0, **data: Any) -> dict[str, Any]:
    return {
        "event_id": f"order-{customer}-{n}",
        "type": "purchase",
        "customer_id": customer,
        "occurred_at": at(day),
        "source": "webshop",
        "channel": "web",
        "data": {"order_id": f"{customer}-{n}", "amount": amount, "product": "SKU-1", **data},
    }


def analysis(run_id: str, day: float, view_position: int) -> dict[str, Any]:
    return {
        "event_id": f"run-{run_id}",
        "type": "analysis.completed",
        "occurred_at": at(day),
        "source": "radar",
        "data": {
            "analysis": "segments",
            "version": "1.0",
            "run_id": run_id,
            "view_position": view_position,
            "parameters": {"k": 4},
            "metrics": {"silhouette": 0.41},
        },
    }


def segment(customer: str, run_id: str, day: float, name: str = "loyal") -> dict[str, Any]:
    return {
        "event_id": f"seg-{customer}-{run_id}",
        "type": "segment.entered",
        "customer_id": customer,
        "occurred_at": at(day),
        "source": "radar",
        "data": {"segmentation": "kmeans", "segment": name, "run_id": run_id},
    }


def score(customer: str, run_id: str, day: float, value: float) -> dict[str, Any]:
    return {
        "event_id": f"score-{customer}-{run_id}",
        "type": "score.changed",
        "customer_id": customer,
        "occurred_at": at(day),
        "source": "radar",
        "data": {"score_name": "churn_risk", "value": value, "run_id": run_id},
    }


def ruleset(ruleset_hash: str, day: float) -> dict[str, Any]:
    return {
        "event_id": f"ruleset-{ruleset_hash}",
        "type": "ruleset.published",
        "occurred_at": at(day),
        "source": "radar",
        "data": {
            "ruleset_hash": ruleset_hash,
            "rules": [{"rule_id": "winback", "version": "3", "hash": "rh-winback-3"}],
        },
    }


def action(
    customer: str,
    action_id: str,
    day: float,
    view_position: int,
    *,
    channel: str = "email",
    ruleset_hash: str = "rs-1",
    condition_values: dict[str, Any] | None = None,
    run_id: str | None = "run-1",
    type_: str = "action.planned",
) -> dict[str, Any]:
    return {
        "event_id": f"action-{action_id}",
        "type": type_,
        "customer_id": customer,
        "occurred_at": at(day),
        "source": "radar",
        "channel": channel,
        "data": {
            "action_id": action_id,
            "rule_id": "winback",
            "rule_version": "3",
            "rule_hash": "rh-winback-3",
            "ruleset_hash": ruleset_hash,
            "view_position": view_position,
            "campaign_id": "cmp-winback",
            "offer": "10% off",
            "condition_values": condition_values or {},
            "run_id": run_id,
        },
    }


def responded(customer: str, action_id: str, day: float) -> dict[str, Any]:
    return {
        "event_id": f"resp-{action_id}",
        "type": "campaign.responded",
        "customer_id": customer,
        "occurred_at": at(day),
        "source": "mailer",
        "channel": "email",
        "data": {"campaign_id": "cmp-winback", "response": "clicked", "action_id": action_id},
    }


#: A rule set for the audit tests: customers who bought are mailed (a quarter held out), everyone
#: is mailed by a second rule; customers without e-mail consent are suppressed by both.
RULES = """
rules:
  - id: buyers-mail
    description: Mail customers who bought
    owner: audit
    when: purchases >= 1
    action: {channel: email, campaign_id: BUY-1, offer: ten-off, priority: 50}
    holdout: 25
  - id: everyone-mail
    description: Mail everybody
    owner: audit
    when: purchases >= 0
    action: {channel: email, campaign_id: ALL-1, priority: 10}
"""


def shoppers(customers: int = 12) -> list[dict[str, Any]]:
    """``customers`` customers C-0… who each bought ``i % 3`` times; the even ones granted
    e-mail consent (the odd ones never stated it)."""
    events: list[dict[str, Any]] = []
    for i in range(customers):
        cid = f"C-{i}"
        events.append(registered(cid, name=f"Customer {i}", email=f"c{i}@example.org"))
        if i % 2 == 0:
            events.append(consent(cid, "email", True, 1))
        events += [buy(cid, n, 2 + n) for n in range(i % 3)]
    return events
