"""The main job: run the radar loop on a synthetic history in a fresh folder.

simulate → ingest → project → summary. Later phases (analyses, rules, actions, outcomes, effect)
join the loop as :data:`STEPS`; each step reports what it did.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radar.engine import Engine, build_engine


@dataclass
class DemoReport:
    data_dir: Path
    steps: list[dict[str, Any]] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str, started: float, **details: Any) -> None:
        self.steps.append(
            {"step": name, "seconds": round(time.perf_counter() - started, 2), **details}
        )


def run_demo(
    data_dir: Path,
    *,
    customers: int = 10_000,
    seed: int = 42,
    log: Callable[[str], None] = lambda _: None,
) -> DemoReport:
    """Run the whole loop into ``data_dir`` (emptied first) and return what happened."""
    from radar.projections.kpis import kpis
    from radar.simulate import simulate

    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    report = DemoReport(data_dir)
    t = time.perf_counter()
    log(f"simulating {customers:,} customers…")
    sim = simulate(customers=customers, seed=seed)
    history = data_dir / "history.jsonl"
    sim.write_jsonl(history)
    sim.write_truth(data_dir / "history.truth.json")
    report.step("simulate", t, events=sim.events.height, file=str(history))
    with build_engine(data_dir=data_dir) as engine:
        t = time.perf_counter()
        log("ingesting…")
        result = engine.ingest_file(history)
        report.step("ingest", t, **result.to_dict())
        t = time.perf_counter()
        log("projecting…")
        caught = engine.project()
        report.step("project", t, events=caught.events, position=caught.position)
        for name, step in steps():
            t = time.perf_counter()
            log(f"{name}…")
            report.step(name, t, **step(engine, sim))
        report.kpis = kpis(engine.view).to_dict()
    return report


Step = Callable[[Engine, Any], dict[str, Any]]
#: Modules that add phases of the loop; each has ``demo_steps() -> list[tuple[str, Step]]``.
STEP_MODULES = ("radar.analytics.demo", "radar.rules.demo")


def steps() -> list[tuple[str, Step]]:
    """The later phases of the loop (analyses, rules, outcomes, effect), in order."""
    import importlib

    out: list[tuple[str, Step]] = []
    for name in STEP_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        out.extend(module.demo_steps())
    return out
