"""Operations: health (public), metrics (any role), API keys (admins)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from radar.service.auth import Principal, Role
from radar.service.core import Service
from radar.service.deps import ADMIN, ANY, ServiceDep, require

router = APIRouter(tags=["operations"])


def measurements(service: Service) -> dict[str, Any]:
    """Events appended, projection lag and the action queue."""
    log_position = service.engine.store.max_position()
    view_position = service.live.position()
    appended = service.appender.stats
    live = service.live.stats
    since = time.time() - live.last_catch_up if live.last_catch_up else None
    return {
        "log_position": log_position,
        "view_position": view_position,
        "projection_lag_events": max(0, log_position - view_position),
        "seconds_since_catch_up": since,
        "events_appended": appended.accepted,
        "events_duplicate": appended.duplicates,
        "events_rejected": appended.rejected,
        "append_requests": appended.requests,
        "append_transactions": appended.transactions,
        "events_projected": live.events_projected,
        "actions": service.queue.counts(),
        "last_error": live.last_error or None,
    }


@router.get("/health", summary="Liveness and projection lag (no key needed)")
def health(service: ServiceDep) -> dict[str, Any]:
    m = measurements(service)
    ok = not m["last_error"]
    return {
        "status": "ok" if ok else "degraded",
        "log_position": m["log_position"],
        "view_position": m["view_position"],
        "projection_lag_events": m["projection_lag_events"],
        "error": m["last_error"],
    }


@router.get("/metrics", summary="Metrics (Prometheus text, or JSON with format=json)")
def metrics(
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*ANY))],
    format: Annotated[str, Query(pattern="^(prometheus|json)$")] = "prometheus",
) -> Any:
    m = measurements(service)
    if format == "json":
        return m
    lines = []
    gauges = {
        "radar_log_position": m["log_position"],
        "radar_view_position": m["view_position"],
        "radar_projection_lag_events": m["projection_lag_events"],
        "radar_events_appended_total": m["events_appended"],
        "radar_events_duplicate_total": m["events_duplicate"],
        "radar_events_rejected_total": m["events_rejected"],
        "radar_append_requests_total": m["append_requests"],
        "radar_append_transactions_total": m["append_transactions"],
        "radar_events_projected_total": m["events_projected"],
        "radar_actions_open": m["actions"]["open"],
        "radar_actions_leased": m["actions"]["leased"],
        "radar_actions_settled_total": m["actions"]["settled"],
    }
    for name, value in gauges.items():
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# TYPE {name} {kind}", f"{name} {value}"]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field(default="", max_length=200)


@router.get("/keys", summary="List API keys (never the secrets)")
def list_keys(
    service: ServiceDep, _: Annotated[Principal, Depends(require(*ADMIN))]
) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in service.keyring.list()]}


@router.post("/keys", summary="Create an API key", status_code=201)
def create_key(
    body: NewKey, service: ServiceDep, _: Annotated[Principal, Depends(require(*ADMIN))]
) -> dict[str, Any]:
    """The key is shown once; only its salted hash is stored."""
    key, info = service.keyring.create(body.role, body.name)
    return {"key": key, **info.to_dict()}


@router.delete("/keys/{key_id}", summary="Revoke an API key")
def revoke_key(
    key_id: Annotated[str, Path(min_length=1, max_length=100)],
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*ADMIN))],
) -> dict[str, Any]:
    if not service.keyring.revoke(key_id):
        raise HTTPException(404, f"no API key {key_id!r}")
    return {"key_id": key_id, "revoked": True}
