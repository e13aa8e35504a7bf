"""Data for the rules wiring tests: a small history (as envelopes) and rule files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from radar.engine import Engine

START = datetime(2025, 1, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def registered(cid: str, day: int = 0) -> dict[str, Any]:
    return {
        "event_id": f"reg-{cid}",
        "type": "customer.registered",
        "customer_id": cid,
        "occurred_at": iso(START + timedelta(days=day)),
        "source": "crm",
        "data": {"country": "NL"},
    }


def consent(cid: str, channel: str, granted: bool, day: int = 1) -> dict[str, Any]:
    return {
        "event_id": f"consent-{cid}-{channel}-{day}",
        "type": "consent.changed",
        "customer_id": cid,
        "occurred_at": iso(START + timedelta(days=day)),
        "source": "crm",
        "data": {"channel": channel, "granted": granted},
    }


def purchase(cid: str, day: int, amount: float = 20.0) -> dict[str, Any]:
    return {
        "event_id": f"order-{cid}-{day}",
        "type": "purchase",
        "customer_id": cid,
        "occurred_at": iso(START + timedelta(days=day, hours=12)),
        "source": "webshop",
        "channel": "web",
        "direction": "inbound",
        "data": {"order_id": f"{cid}-{day}", "amount": amount, "product": "SKU-1"},
    }


def history(customers: int = 40) -> list[dict[str, Any]]:
    """``customers`` customers registered on day 0; even ones grant e-mail consent on day 1
    (odd ones never state it); customer i buys i % 4 times (days 10, 20, 30)."""
    events: list[dict[str, Any]] = []
    for i in range(customers):
        cid = f"C-{i:03d}"
        events.append(registered(cid))
        if i % 2 == 0:
            events.append(consent(cid, "email", True))
        events += [purchase(cid, 10 * (k + 1)) for k in range(i % 4)]
    return events


RULES = """
rules:
  - id: buyers-mail
    description: Mail customers who bought
    owner: test
    when: purchases >= 1
    action: {channel: email, campaign_id: BUY-1, offer: ten-off, priority: 50}
    limit: {once_per_days: 30}
    holdout: 25
    success: {event: purchase, within_days: 30}
  - id: everyone-mail
    description: Mail everybody
    owner: test
    when: purchases >= 0
    action: {channel: email, campaign_id: ALL-1, priority: 10}
    success: {event: purchase, within_days: 30}
"""


def write_rules(folder: Path, text: str = RULES, name: str = "rules.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    engine.project()
    return engine.view.sql(sql).fetchall()
