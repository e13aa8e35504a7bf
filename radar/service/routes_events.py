"""``POST /events``: append one event or a batch, idempotently, with a result per event.

The body is one envelope (a JSON object) or a list of up to ``max_batch`` envelopes (default
1000). A body that is not JSON, or not an object or a non-empty list, is 422; a body larger than
``max_body_bytes`` or a list longer than ``max_batch`` is 413 — and nothing of it is stored. Each
event is then ``accepted``, ``duplicate`` (its (source, event_id) is already stored) or
``rejected`` with the field and reason; the valid events of one request are stored together in
one transaction. Event types that radar writes itself (``action.planned``…) are refused.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import MAX_EVENT_BYTES
from radar.domain.vocabulary import CHANNELS
from radar.engine import EventResult
from radar.service.appender import event_text
from radar.service.auth import Principal
from radar.service.core import Service
from radar.service.deps import APPENDER, ServiceDep, api_key, authorize, get_service, require

router = APIRouter(tags=["events"])


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of an envelope as the HTTP API documents it (payload per type: see
    ``radar schema``)."""
    operational = [n for n, t in CATALOGUE.items() if t.written_by == "operational"]
    return {
        "type": "object",
        "required": ["type", "occurred_at", "source"],
        "properties": {
            "event_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "type": {"type": "string", "enum": operational},
            "customer_id": {"type": "string", "minLength": 1, "maxLength": 100},
            "occurred_at": {"type": "string", "format": "date-time"},
            "source": {"type": "string", "minLength": 1, "maxLength": 100},
            "channel": {"type": "string", "enum": list(CHANNELS)},
            "direction": {"type": "string", "enum": ["inbound", "outbound"]},
            "data": {"type": "object"},
        },
        "additionalProperties": False,
    }


def _body_schema(max_batch: int) -> dict[str, Any]:
    envelope = envelope_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            envelope,
                            {
                                "type": "array",
                                "items": envelope,
                                "minItems": 1,
                                "maxItems": max_batch,
                            },
                        ]
                    }
                }
            },
        }
    }


_RESULTS_SCHEMA = {
    "type": "object",
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "rejected": {"type": "integer"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                    "event_id": {"type": "string"},
                    "field": {"type": "string"},
                    "reason": {"type": "string"},
                },
                "required": ["index", "status"],
            },
        },
    },
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body of {declared} bytes exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_events(body: bytes, max_batch: int) -> list[Any]:
    """The events of a body (one object or a list of objects); 422/413 when it cannot be."""
    if not body.strip():
        raise HTTPException(422, "empty body: send one event (a JSON object) or a list of them")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HTTPException(422, f"malformed JSON: {e}") from None
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise HTTPException(422, "the body must be one event (a JSON object) or a list of events")
    if not value:
        raise HTTPException(422, "empty list: send at least one event")
    if len(value) > max_batch:
        raise HTTPException(
            413, f"a batch of {len(value)} events exceeds the limit of {max_batch} per request"
        )
    return value


def results_document(results: list[EventResult]) -> dict[str, Any]:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in results:
        counts[r.status] += 1
    return {
        "accepted": counts["accepted"],
        "duplicates": counts["duplicate"],
        "rejected": counts["rejected"],
        "results": [r.to_dict() for r in results],
    }


@router.post(
    "/events",
    summary="Append one event or a batch",
    openapi_extra=_body_schema(1000),
    responses={
        200: {
            "description": "One result per event (accepted / duplicate / rejected)",
            "content": {"application/json": {"schema": _RESULTS_SCHEMA}},
        },
        413: {"description": "Body or batch too large; nothing stored"},
        422: {"description": "Malformed body; nothing stored"},
    },
)
async def append_events(
    request: Request,
    service: ServiceDep,
    _: Annotated[Principal, Depends(require(*APPENDER))],
) -> Response:
    """Append events. Idempotent on (source, event_id): a resend is reported as ``duplicate``.

    Limits: at most 1000 events per request (configurable), 16 MiB per body, 64 KiB per event.
    """
    return await append_response(service, request)


async def append_response(service: Service, request: Request) -> Response:
    """The response to an authorised ``POST /events``: the body's events through the group
    commit, one result each (413/422 for a body that cannot be taken, 503 when the store
    fails)."""
    options = service.options
    body = await read_body(request, options.max_body_bytes)
    events = parse_events(body, options.max_batch)
    texts = [event_text(e) for e in events]
    future = service.appender.submit(events, texts)
    try:
        results = await asyncio.wrap_future(future)
    except Exception as e:
        raise HTTPException(503, f"the event store could not take the events: {e}") from e
    return Response(orjson.dumps(results_document(results)), media_type="application/json")


class AppendFastPath:
    """ASGI middleware that serves ``POST /events`` — the hot path of operational systems —
    without the framework's routing and dependency layers, which cost more CPU than the append
    of a single event. The answers are the route's own: the same key check
    (:func:`~radar.service.deps.authorize`), the same :func:`append_response`, and an
    ``HTTPException`` as FastAPI renders it. The route stays registered for the OpenAPI
    document (and serves the app when this middleware is not installed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.allowed = frozenset(APPENDER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/events" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            service = get_service(request)
            headers = request.headers
            token = api_key(headers.get("x-api-key"), headers.get("authorization"))
            await authorize(service, token, self.allowed)
            response = await append_response(service, request)
        except HTTPException as e:
            response = JSONResponse({"detail": e.detail}, e.status_code, headers=e.headers)
        await response(scope, receive, send)


__all__ = ["MAX_EVENT_BYTES", "AppendFastPath", "parse_events", "read_body", "router"]
