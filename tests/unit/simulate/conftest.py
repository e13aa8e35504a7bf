"""A small simulation shared by the simulate tests (generated once per session)."""

from __future__ import annotations

import pytest

from radar.simulate import Simulation, simulate


@pytest.fixture(scope="session")
def sim1k() -> Simulation:
    return simulate(1000, seed=42)
