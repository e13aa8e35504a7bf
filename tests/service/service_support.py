"""Helpers of the HTTP service tests (keys per role, settings, planned actions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from radar.service.core import Service
from radar.settings import Settings

ROLES = ("appender", "marketer", "auditor", "admin")
RULES = Path(__file__).resolve().parents[2] / "radar" / "rules" / "examples"


def service_settings(data: Path) -> Settings:
    return Settings().model_copy(update={"data_dir": data, "event_store": None, "rules_dir": RULES})


def headers(keys: dict[str, str], role: str) -> dict[str, str]:
    return {"X-API-Key": keys[role]}


def service_of(client: TestClient) -> Service:
    service = client.app.state.service  # type: ignore[attr-defined]
    assert isinstance(service, Service)
    return service


def planned_action(
    action_id: str, customer: str = "C-1", channel: str = "email", **data: Any
) -> dict[str, Any]:
    """An action.planned event as the rules would append it (through the engine)."""
    return {
        "event_id": action_id,
        "type": "action.planned",
        "customer_id": customer,
        "occurred_at": (datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=1)).isoformat(),
        "source": "radar.rules",
        "channel": channel,
        "data": {
            "action_id": action_id,
            "rule_id": "welcome",
            "rule_version": "v1",
            "rule_hash": "h1",
            "ruleset_hash": "rs1",
            "view_position": 1,
            "campaign_id": "WELCOME-1",
            "offer": "10%",
            **data,
        },
    }
