"""An analysis as of T sees only the events that had occurred by T and measures ages up to T: run
on the whole log it gives exactly what it gives on a log that ends at T (no leakage)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import SimulatedRadar, load
from polars.testing import assert_frame_equal

from radar.analytics import features as F
from radar.analytics.runner import run_analyses
from radar.engine import build_engine
from radar.simulate import Simulation

pytestmark = pytest.mark.slow

T = datetime(2025, 3, 15, 12, 0)


@pytest.fixture(scope="module")
def truncated(simulated: SimulatedRadar, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same history, but only the events that occurred by T."""
    sim = simulated.sim
    early = sim.events.filter(pl.col("occurred_at") <= T.replace(tzinfo=UTC))
    folder = tmp_path_factory.mktemp("truncated") / "data"
    load(folder, Simulation(events=early, truth=sim.truth, customers=sim.customers))
    return folder


def test_features_as_of_t_equal_the_features_of_a_log_that_ends_at_t(
    simulated: SimulatedRadar, truncated: Path
) -> None:
    frames = []
    for folder in (simulated.folder, truncated):
        with build_engine(data_dir=folder, event_store=None) as engine:
            snap = F.snapshot(engine.view, T)
            frames.append(
                (
                    F.customer_frame(engine.view, snap).drop("position"),
                    F.purchase_frame(engine.view, snap).sort("customer_id", "occurred_at"),
                    F.lead_frame(engine.view, snap),
                )
            )
    for full, short in zip(*frames, strict=True):
        assert full.height > 0
        assert_frame_equal(full, short)
    customers = frames[0][0]
    assert customers["last_seen"].max() <= T  # type: ignore[operator]
    # ages are measured up to T, not up to the end of the log
    tenure = customers.select(
        ((pl.lit(T) - pl.col("first_seen")).dt.total_seconds() / 86400 - pl.col("tenure_days"))
        .abs()
        .max()
    ).item()
    assert tenure < 1e-6


def test_an_analysis_as_of_t_gives_the_same_answer_as_on_a_log_that_ends_at_t(
    simulated: SimulatedRadar, truncated: Path
) -> None:
    results = []
    for folder in (simulated.folder, truncated):
        with build_engine(data_dir=folder, event_store=None) as engine:
            report = run_analyses(
                engine, ["rfm", "clv", "lifecycle"], as_of=T, record=False, plots=False
            )
            assert report.explicit_as_of and report.as_of == T
            results.append({r.analysis: r.to_dict() for r in report.runs})
    full, short = results
    for name in ("rfm", "clv", "lifecycle"):
        assert full[name]["status"] == "completed"
        assert_close(full[name]["metrics"], short[name]["metrics"], name)


OPTIMIZER_DIAGNOSTICS = {"message", "iterations"}


def assert_close(a: object, b: object, where: str) -> None:
    """Equal, floats up to summation order and optimizer convergence: parallel group-bys add in
    any order, and a maximum-likelihood fit turns last-bit input differences into ~1e-7 relative
    differences of its parameters (leakage would change them by far more)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9), where
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            if k in OPTIMIZER_DIAGNOSTICS:  # how the optimizer got there, not what it found
                continue
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_the_default_moment_is_the_latest_operational_event(simulated: SimulatedRadar) -> None:
    with build_engine(data_dir=simulated.folder, event_store=None) as engine:
        snap = F.snapshot(engine.view)
    latest = simulated.sim.events["occurred_at"].max()
    assert isinstance(latest, datetime)
    assert not snap.explicit
    assert snap.as_of == latest.replace(tzinfo=None)
