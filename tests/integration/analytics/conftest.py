"""Shared fixtures: a simulated history (with its truth) ingested and projected once per session.

Tests that record events work on a copy of the folder (``fresh_engine``), so they do not see each
other's runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from radar.engine import Engine, build_engine
from radar.simulate import Simulation, simulate

CUSTOMERS = 2_000
SEED = 7


@dataclass(frozen=True)
class SimulatedRadar:
    """A data folder holding ``sim`` ingested and projected."""

    folder: Path
    sim: Simulation


def load(folder: Path, sim: Simulation) -> SimulatedRadar:
    history = folder.parent / f"{folder.name}.jsonl"
    sim.write_jsonl(history)
    with build_engine(data_dir=folder, event_store=None) as engine:
        result = engine.ingest_file(history)
        assert result.rejected == 0
        engine.project()
    return SimulatedRadar(folder, sim)


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRadar:
    """2,000 simulated customers (≈100k events), ingested and projected."""
    base = tmp_path_factory.mktemp("simulated")
    return load(base / "data", simulate(customers=CUSTOMERS, seed=SEED))


@pytest.fixture
def fresh_engine(simulated: SimulatedRadar, tmp_path: Path) -> Iterator[Callable[[], Engine]]:
    """Opens an engine on a private copy of the simulated folder (same copy on every call)."""
    copy = tmp_path / "data"
    shutil.copytree(simulated.folder, copy)
    opened: list[Engine] = []

    def open_engine() -> Engine:
        engine = build_engine(data_dir=copy, event_store=None)
        opened.append(engine)
        return engine

    yield open_engine
    for engine in opened:
        engine.close()
