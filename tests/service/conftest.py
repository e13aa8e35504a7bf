"""Fixtures of the HTTP service tests: an app over a fresh data folder, one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_support import ROLES, service_settings

from radar.service.app import create_app
from radar.service.auth import KeyRing
from radar.service.core import ServiceOptions


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    ring = KeyRing.in_folder(tmp_path / "data")
    try:
        return {role: ring.create(role, f"test {role}")[0] for role in ROLES}
    finally:
        ring.close()


@pytest.fixture
def client(tmp_path: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(
        service_settings(tmp_path / "data"), options=ServiceOptions(live_interval=0.05)
    )
    with TestClient(app) as c:
        yield c
