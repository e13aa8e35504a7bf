"""``POST /events`` is served by an ASGI fast path (no routing or dependency layers); its answers
must be exactly those of the FastAPI route it stands in for, for good and bad requests alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_support import service_settings

from radar.service.app import create_app
from radar.service.core import ServiceOptions
from radar.service.routes_events import AppendFastPath


def _purchase(i: int, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": f"p-{i}",
        "type": "purchase",
        "customer_id": f"C-{i % 3}",
        "occurred_at": "2026-03-01T10:00:00Z",
        "source": "shop",
        "channel": "web",
        "data": {"order_id": f"o-{i}", "amount": 12.5, "product": "SKU-1"},
    } | changes


def _requests(keys: dict[str, str]) -> list[tuple[str, dict[str, str], bytes]]:
    """(label, headers, body) of requests that cover every answer of the endpoint."""
    appender = {"X-API-Key": keys["appender"]}
    return [
        ("one event", appender, json.dumps(_purchase(1)).encode()),
        ("the same again", appender, json.dumps(_purchase(1)).encode()),
        (
            "a batch with a bad event",
            {"Authorization": f"Bearer {keys['admin']}"},
            json.dumps([_purchase(2), _purchase(3, type="purchse"), _purchase(4)]).encode(),
        ),
        ("radar's own type", appender, json.dumps(_purchase(5, type="action.planned")).encode()),
        ("no key", {}, json.dumps(_purchase(6)).encode()),
        ("not a bearer", {"Authorization": f"Basic {keys['appender']}"}, b"{}"),
        ("unknown key", {"X-API-Key": "radar_nope"}, json.dumps(_purchase(7)).encode()),
        ("wrong role", {"X-API-Key": keys["auditor"]}, json.dumps(_purchase(8)).encode()),
        ("malformed JSON", appender, b'{"type": '),
        ("empty body", appender, b""),
        ("empty list", appender, b"[]"),
        ("not an object", appender, b"42"),
        ("too many events", appender, json.dumps([_purchase(i) for i in range(9, 13)]).encode()),
    ]


def _without_fast_path(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not AppendFastPath]
    return app


def _answers(app: FastAPI, keys: dict[str, str]) -> list[tuple[str, int, Any, str | None]]:
    with TestClient(app) as client:
        out = []
        for label, headers, body in _requests(keys):
            r = client.post("/events", content=body, headers=headers)
            out.append((label, r.status_code, r.json(), r.headers.get("www-authenticate")))
        return out


def test_the_fast_path_answers_every_request_as_the_route_does(
    tmp_path: Path, keys: dict[str, str]
) -> None:
    options = ServiceOptions(max_batch=3, background=False)
    shutil.copytree(tmp_path / "data", tmp_path / "route")  # the same keys, an empty log each
    fast = create_app(service_settings(tmp_path / "data"), options=options)
    assert any(m.cls is AppendFastPath for m in fast.user_middleware)
    route = _without_fast_path(create_app(service_settings(tmp_path / "route"), options=options))

    answered_fast = _answers(fast, keys)
    answered_by_route = _answers(route, keys)

    assert answered_fast == answered_by_route
    statuses = {label: status for label, status, _, _ in answered_fast}
    assert statuses["one event"] == statuses["a batch with a bad event"] == 200
    assert statuses["no key"] == statuses["unknown key"] == statuses["not a bearer"] == 401
    assert (statuses["wrong role"], statuses["malformed JSON"], statuses["too many events"]) == (
        403,
        422,
        413,
    )
