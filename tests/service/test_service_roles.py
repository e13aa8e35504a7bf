"""Every endpoint: 401 without a key (or with a wrong one), 403 for each role that may not use it,
and neither for the roles that may."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_support import ROLES, headers

from radar.service.app import create_app
from radar.service.auth import KeyRing

# (method, path, body) -> roles allowed. The specification of who may do what.
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/events", [], {"appender", "admin"}),
    ("GET", "/actions?channel=email", None, {"appender", "admin"}),
    ("POST", "/actions/a-1/outcome", {"lease": "x"}, {"appender", "admin"}),
    ("GET", "/customers/C-1", None, {"auditor", "admin"}),
    ("GET", "/customers/C-1/history", None, {"auditor", "admin"}),
    ("GET", "/customers/C-1/timeline", None, {"auditor", "admin"}),
    ("GET", "/customers/C-1/view", None, {"auditor", "admin"}),
    ("GET", "/actions/a-1/explain", None, {"auditor", "admin"}),
    ("POST", "/verify", None, {"auditor", "admin"}),
    ("POST", "/customers/C-1/forget", None, {"admin"}),
    ("GET", "/phases", None, {"marketer", "auditor", "admin"}),
    ("GET", "/kpis", None, {"marketer", "auditor", "admin"}),
    ("GET", "/kpis/history", None, {"marketer", "auditor", "admin"}),
    ("GET", "/segments", None, {"marketer", "auditor", "admin"}),
    ("GET", "/analyses", None, {"marketer", "auditor", "admin"}),
    ("GET", "/survival", None, {"marketer", "auditor", "admin"}),
    ("GET", "/lifecycle/transitions", None, {"marketer", "auditor", "admin"}),
    ("GET", "/rules", None, {"marketer", "auditor", "admin"}),
    ("GET", "/rules/effect", None, {"marketer", "auditor", "admin"}),
    ("POST", "/rules/check", None, {"marketer", "admin"}),
    ("POST", "/rules/preview", None, {"marketer", "admin"}),
    ("POST", "/analyses/run?names=nope", None, {"marketer", "admin"}),
    ("GET", "/metrics", None, set(ROLES)),
    ("GET", "/keys", None, {"admin"}),
    ("POST", "/keys", {"role": "marketer"}, {"admin"}),
    ("DELETE", "/keys/nope", None, {"admin"}),
]
IDS = [f"{m} {p}" for m, p, _, _ in ENDPOINTS]


def call(client: TestClient, method: str, path: str, body: Any, h: dict[str, str]) -> int:
    kwargs: dict[str, Any] = {"headers": h}
    if body is not None:
        kwargs["json"] = body
    return client.request(method, path, **kwargs).status_code


def test_the_table_covers_every_endpoint_of_the_api() -> None:
    schema = create_app().openapi()
    documented = {
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        for method in ops
        if path != "/health"
    }
    tabled = {(m, p.split("?")[0]) for m, p, _, _ in ENDPOINTS}
    templated = {
        (
            m,
            p.replace("{customer_id}", "C-1")
            .replace("{action_id}", "a-1")
            .replace("{key_id}", "nope"),
        )
        for m, p in documented
    }
    assert templated == tabled


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS, ids=IDS)
def test_without_a_valid_key_every_endpoint_is_401(
    client: TestClient, method: str, path: str, body: Any, allowed: set[str]
) -> None:
    assert call(client, method, path, body, {}) == 401
    assert call(client, method, path, body, {"X-API-Key": "radar_nope_nope"}) == 401
    assert call(client, method, path, body, {"Authorization": "Bearer wrong"}) == 401


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS, ids=IDS)
def test_each_role_gets_403_exactly_where_it_is_not_allowed(
    client: TestClient,
    keys: dict[str, str],
    method: str,
    path: str,
    body: Any,
    allowed: set[str],
) -> None:
    for role in ROLES:
        status = call(client, method, path, body, headers(keys, role))
        if role in allowed:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)


def test_a_bearer_key_works_like_the_header(client: TestClient, keys: dict[str, str]) -> None:
    r = client.get("/kpis", headers={"Authorization": f"Bearer {keys['marketer']}"})
    assert r.status_code == 200


def test_health_needs_no_key(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"


def test_a_revoked_key_is_refused(client: TestClient, keys: dict[str, str]) -> None:
    made = client.post("/keys", json={"role": "marketer"}, headers=headers(keys, "admin")).json()
    assert client.get("/kpis", headers={"X-API-Key": made["key"]}).status_code == 200
    client.delete(f"/keys/{made['key_id']}", headers=headers(keys, "admin"))
    assert client.get("/kpis", headers={"X-API-Key": made["key"]}).status_code == 401


def test_a_verified_key_is_remembered_until_it_is_revoked(tmp_path: Any) -> None:
    ring = KeyRing.in_folder(tmp_path)
    try:
        key, info = ring.create("appender")
        assert ring.remembered(key) is None  # not verified yet: the caller must verify it
        principal = ring.verify(key)
        assert principal is not None and ring.remembered(key) == principal
        ring.revoke(info.key_id)
        assert ring.remembered(key) is None
        assert ring.verify(key) is None
    finally:
        ring.close()


def test_keys_are_stored_hashed(client: TestClient, keys: dict[str, str], tmp_path: Any) -> None:
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("api_keys.sqlite*"))
    assert raw
    for key in keys.values():
        assert key.split("_", 2)[2].encode() not in raw
