"""Per-customer endpoints (auditors): the integral view, the history, the as-of view, explain,
verify, and (admins) forgetting a customer.

They use :mod:`radar.audit` when it is installed (its functions take the engine; they run under
the service's view lock) and fall back to the service's own queries otherwise.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from types import ModuleType
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from radar.domain.errors import NotFound
from radar.service import queries
from radar.service.auth import Principal
from radar.service.deps import ADMIN, AUDITOR, ServiceDep, require

router = APIRouter(tags=["customers"])

CustomerId = Annotated[str, Path(min_length=1, max_length=100)]
ActionId = Annotated[str, Path(min_length=1, max_length=200)]


def audit_module(name: str) -> ModuleType | None:
    """``radar.audit.<name>`` if that part of radar is installed, else None."""
    full = f"radar.audit.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name == full:
            return None
        raise


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _unknown(customer_id: str) -> HTTPException:
    return HTTPException(
        404, f"unknown customer {customer_id!r}: the view holds no event of theirs"
    )


@router.get("/customers/{customer_id}", summary="The integral customer view")
def get_customer(
    customer_id: CustomerId,
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*AUDITOR))],
) -> dict[str, Any]:
    """The customer's row of the integral view (relative columns measured now)."""
    with service.live.read() as con:
        row = queries.customer(con, customer_id)
    if row is None:
        raise _unknown(customer_id)
    return row


@router.get("/customers/{customer_id}/history", summary="The customer's history from the log")
def get_history(
    customer_id: CustomerId,
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*AUDITOR))],
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Every event of the customer, read from the event log, personal data decrypted."""
    history = audit_module("history")
    if history is not None:
        with service.live.read():
            found = history.read_history(
                service.engine, customer_id, since=_utc(since), until=_utc(until)
            )
        return dict(queries.jsonable(found.to_dict()))
    events = queries.log_history(service.engine.store, service.engine.keys, customer_id)
    if not events:
        raise _unknown(customer_id)
    lo, hi = _utc(since), _utc(until)
    kept = [
        e
        for e in events
        if (lo is None or datetime.fromisoformat(e["occurred_at"]) >= lo)
        and (hi is None or datetime.fromisoformat(e["occurred_at"]) <= hi)
    ]
    return {"customer_id": customer_id, "total": len(events), "events": kept}


@router.get("/customers/{customer_id}/timeline", summary="The customer's events (facts)")
def get_timeline(
    customer_id: CustomerId,
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*AUDITOR))],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    """The customer's events as the view holds them (no personal data), latest first, with
    the range of business and recorded times (for the dashboard's as-of slider)."""
    with service.live.read() as con:
        events = queries.timeline(con, customer_id, limit)
        bounds = queries.records(
            con,
            "SELECT min(occurred_at) AS first_occurred, max(occurred_at) AS last_occurred, "
            "min(recorded_at) AS first_recorded, max(recorded_at) AS last_recorded, "
            "count(*) AS events FROM events WHERE customer_id = ?",
            [customer_id],
        )[0]
    if not events:
        raise _unknown(customer_id)
    return {"customer_id": customer_id, **bounds, "timeline": events}


@router.get("/customers/{customer_id}/view", summary="The customer's view as of a moment")
def get_view(
    customer_id: CustomerId,
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*AUDITOR))],
    as_of: Annotated[datetime | None, Query(description="Business time (default: now)")] = None,
    known_at: Annotated[datetime | None, Query(description="Knowledge time (default: now)")] = None,
) -> dict[str, Any]:
    """The integral view of the customer as of business time ``as_of``, with what radar had
    recorded by ``known_at``."""
    t, t2 = _utc(as_of), _utc(known_at)
    asof = audit_module("asof")
    if asof is not None:
        with service.live.read():
            view = asof.customer_view(
                service.engine, customer_id, as_of=t, known_at=t2, catch_up=False
            )
        return dict(queries.jsonable(view.to_dict()))
    now = datetime.now(UTC)
    with service.live.read() as con:
        row = queries.customer_as_of(con, customer_id, t or now, t2 or now)
    if row is None:
        raise HTTPException(
            404, f"customer {customer_id!r} had no events by that moment (or is unknown)"
        )
    return {
        "customer_id": customer_id,
        "as_of": queries.jsonable(t),
        "known_at": queries.jsonable(t2),
        "row": row,
    }


@router.get("/actions/{action_id}/explain", summary="Why an action was taken")
def explain(
    action_id: ActionId,
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*AUDITOR))],
) -> dict[str, Any]:
    """The provenance of an action: rule, rule set, the view it read, the values it saw."""
    module = audit_module("explain")
    if module is not None:
        with service.live.read():
            found = module.explain_action(service.engine, action_id)
        return dict(queries.jsonable(found.to_dict()))
    with service.live.read() as con:
        explanation = queries.action_explanation(con, action_id)
    if explanation is None:
        raise NotFound(f"no action {action_id!r} in the event log")
    return explanation


class ForgetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, min_length=1, max_length=500)
    request_id: str | None = Field(default=None, min_length=1, max_length=200)


@router.post("/customers/{customer_id}/forget", summary="Forget a customer (crypto-shred)")
def forget(
    customer_id: CustomerId,
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*ADMIN))],
    request: ForgetRequest | None = None,
) -> dict[str, Any]:
    """Destroy the customer's personal-data key and record ``customer.forgotten``."""
    module = audit_module("forget")
    if module is None:
        raise HTTPException(501, "forgetting needs radar.audit.forget, not installed")
    body = request or ForgetRequest()
    with service.live.read():
        result = module.forget_customer(
            service.engine, customer_id, reason=body.reason, request_id=body.request_id
        )
    return dict(queries.jsonable(result.to_dict()))


@router.post("/verify", summary="Verify the log: replay, hash chain, consent")
def verify(
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*AUDITOR))],
) -> dict[str, Any]:
    """Replay the log against the view, check the tamper-evidence chain and the consent audit."""
    module = audit_module("replay")
    if module is None:
        raise HTTPException(501, "verify needs radar.audit.replay, not installed")
    with service.live.read():
        report = module.verify_radar(service.engine)
    return dict(queries.jsonable(report.to_dict()))
