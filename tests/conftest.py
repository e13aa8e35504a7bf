"""Shared fixtures: a fresh engine in a temporary folder, and event factories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from radar.engine import Engine, build_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = build_engine(data_dir=tmp_path / "data", event_store=None)
    yield e
    e.close()
