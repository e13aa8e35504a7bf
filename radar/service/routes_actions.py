"""The pull queue for operational systems: lease actions, report their outcomes.

``GET /actions?channel=email&limit=10&lease_seconds=60`` leases up to ``limit`` open actions of
the channel to the caller: no other worker gets them while the lease runs; when it runs out
(the worker died) they are handed out again. ``POST /actions/{id}/outcome`` with the lease token
reports what happened: ``done`` or ``failed`` appends the outcome event (``campaign.sent`` for an
action with a campaign that was done, otherwise an outbound ``contact`` with the outcome; event id
``outcome:<action id>``, so a resent report is recognised) and settles the action; ``retry``
gives the lease back so that the action is handed out again. A lease that was lost is 409.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from radar.domain.catalogue import ContactReason
from radar.domain.vocabulary import Channel
from radar.service.appender import event_text
from radar.service.auth import Principal
from radar.service.deps import APPENDER, ServiceDep, require
from radar.service.queue import QueuedAction

router = APIRouter(tags=["actions"])

OUTCOME_SOURCE = "radar.actions"
ActionId = Annotated[str, Path(min_length=1, max_length=200)]


class Outcome(BaseModel):
    """What a worker reports about a leased action."""

    model_config = ConfigDict(extra="forbid")

    lease: str = Field(min_length=1, max_length=100, description="The lease token of the pull")
    status: Literal["done", "failed", "retry"] = Field(
        default="done", description="done / failed: settle with an outcome event; retry: release"
    )
    outcome: str | None = Field(
        default=None, min_length=1, max_length=500, description="e.g. delivered, bounced"
    )
    reason: ContactReason = Field(default="sales", description="Reason of the outbound contact")
    occurred_at: datetime | None = Field(default=None, description="When it was carried out")


def outcome_event(action: QueuedAction, report: Outcome) -> dict[str, Any]:
    """The event that records a carried-out action."""
    occurred = report.occurred_at or datetime.now(UTC)
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    envelope: dict[str, Any] = {
        "event_id": f"outcome:{action.action_id}",
        "customer_id": action.customer_id,
        "occurred_at": occurred.isoformat(),
        "source": OUTCOME_SOURCE,
        "channel": action.channel,
        "direction": "outbound",
    }
    if report.status == "done" and action.campaign_id:
        data: dict[str, Any] = {"campaign_id": action.campaign_id, "action_id": action.action_id}
        if action.offer:
            data["offer"] = action.offer
        return {**envelope, "type": "campaign.sent", "data": data}
    data = {"reason": report.reason, "action_id": action.action_id}
    data["outcome"] = report.outcome or report.status
    if action.campaign_id:
        data["campaign_id"] = action.campaign_id
    return {**envelope, "type": "contact", "data": data}


@router.get("/actions", summary="Lease open actions of a channel")
def pull_actions(
    service: ServiceDep,
    principal: Annotated[Principal, Depends(require(*APPENDER))],
    channel: Annotated[Channel, Query(description="The channel the worker carries out")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    lease_seconds: Annotated[float | None, Query(gt=0, le=86_400)] = None,
) -> dict[str, Any]:
    """Lease up to ``limit`` open actions (oldest first); each comes with its lease token."""
    seconds = min(lease_seconds or service.options.lease_seconds, service.options.max_lease_seconds)
    actions = service.queue.claim(
        channel.value, limit=limit, lease_seconds=seconds, worker=principal.key_id
    )
    return {
        "channel": channel.value,
        "lease_seconds": seconds,
        "actions": [a.to_dict() for a in actions],
    }


@router.post(
    "/actions/{action_id}/outcome",
    summary="Report the outcome of a leased action",
    responses={404: {"description": "No such action"}, 409: {"description": "Lease lost"}},
)
async def report_outcome(
    action_id: ActionId,
    report: Outcome,
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*APPENDER))],
) -> dict[str, Any]:
    """Append the outcome event and settle the action (or release it with ``retry``)."""
    queue = service.queue
    action = queue.get(action_id)
    if action is None:
        raise HTTPException(404, f"no action {action_id!r} in the queue")
    event_id = f"outcome:{action_id}"
    if action.settled_at is not None:
        if action.lease_token == report.lease:
            return {"action_id": action_id, "settled": True, "event_id": event_id, "again": True}
        raise HTTPException(409, f"action {action_id!r} was already settled by another worker")
    if report.status == "retry":
        if not queue.release(action_id, report.lease):
            raise HTTPException(409, _lost(action_id))
        return {"action_id": action_id, "settled": False, "released": True}
    if not queue.hold(action_id, report.lease, service.options.lease_seconds):
        raise HTTPException(409, _lost(action_id))
    event = outcome_event(action, report)
    results = await asyncio.wrap_future(service.appender.submit([event], [event_text(event)]))
    result = results[0]
    if result.status == "rejected":
        raise HTTPException(422, f"the outcome event was rejected: {result.field}: {result.reason}")
    if not queue.settle(action_id, report.lease, event_id):
        raise HTTPException(409, _lost(action_id))
    return {
        "action_id": action_id,
        "settled": True,
        "event_id": event_id,
        "event": result.to_dict() | {"type": event["type"]},
    }


def _lost(action_id: str) -> str:
    return (
        f"the lease on action {action_id!r} is not yours: the token is wrong, or the lease ran "
        "out and the action was handed to another worker"
    )
