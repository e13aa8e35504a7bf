"""Robustness: a schemathesis run against the published OpenAPI spec finds no 5xx.

Bounded (20 examples per operation) and marked slow. Needs ``schemathesis`` (a test dependency
from PyPI); skipped with the reason when it is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_support import headers, planned_action, service_settings

from radar.engine import build_engine
from radar.service.app import create_app
from radar.service.auth import KeyRing
from radar.service.core import Service, ServiceOptions

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, settings  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    ring = KeyRing.in_folder(data)
    keys = {"admin": ring.create("admin")[0]}
    ring.close()
    app = create_app(service_settings(data))
    service = Service(build_engine(service_settings(data)), ServiceOptions(background=False))
    service.engine.append([planned_action("a-1")])
    service.live.catch_up()
    app.state.service = service  # the lifespan does not run under schemathesis' ASGI transport
    yield app, keys
    service.close()


@pytest.fixture(scope="module")
def api_schema(api: tuple[Any, dict[str, str]]) -> Any:
    app, _ = api
    return schemathesis.openapi.from_asgi("/openapi.json", app)


# Running every analysis takes seconds per call; its error paths are covered by the role tests.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/analyses/run")


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_request_makes_the_service_fail(case: Any, api: tuple[Any, dict[str, str]]) -> None:
    _, keys = api
    response = case.call(headers=headers(keys, "admin"))
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if response.status_code >= 400 and "json" in str(response.headers.get("content-type")):
        assert response.json().get("detail"), response.text[:500]


def test_spec_is_published(api: tuple[Any, dict[str, str]], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    app, _ = api
    spec = TestClient(app).get("/openapi.json").json()
    assert "/events" in spec["paths"]
    body = spec["paths"]["/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"][1]["maxItems"] == 1000
