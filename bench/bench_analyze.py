"""Time ``radar analyze`` (all analyses, recorded) on a simulated history. Prints figures only.

Run: ``python bench/bench_analyze.py [--customers N] [--full] [--folder DIR] [--seed S]``.
The default is 10k customers (≈0.5M events); ``--full`` is the target size, 100k customers
(≈5M events; target: under 60 s on 2 cores). The folder (default ``/tmp/radar-bench-analyze-<N>``)
keeps the ingested history, so later runs skip simulate/ingest/project; each timed run works on
a fresh copy of it, so the first run (every customer's outcome recorded for the first time) is
measured every time. A second, repeat run on the same copy measures the steady state (only
changes recorded).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from radar.analytics.runner import AnalysisReport, run_analyses
from radar.engine import build_engine


def prepare(folder: Path, customers: int, seed: int) -> Path:
    """The ingested and projected history in ``folder/data`` (built once)."""
    data = folder / "data"
    if (folder / "ready").exists():
        return data
    from radar.simulate import simulate

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t = time.perf_counter()
    sim = simulate(customers=customers, seed=seed)
    history = folder / "history.jsonl"
    sim.write_jsonl(history)
    print(f"simulated {sim.events.height:,} events in {time.perf_counter() - t:.1f} s")
    with build_engine(data_dir=data, event_store=None) as engine:
        t = time.perf_counter()
        engine.ingest_file(history)
        print(f"ingested in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        engine.project()
        print(f"projected in {time.perf_counter() - t:.1f} s")
    (folder / "ready").touch()
    return data


def timed(data: Path, label: str) -> AnalysisReport:
    with build_engine(data_dir=data, event_store=None) as engine:
        marks: list[tuple[str, float]] = []
        started = time.perf_counter()
        report = run_analyses(engine, log=lambda m: marks.append((m, time.perf_counter())))
        total = time.perf_counter() - started
        events = engine.view.sql("SELECT count(*) FROM events").fetchall()[0][0]
    print(f"\n{label}: {total:.1f} s in all ({events:,} events in the view after)")
    for r in report.runs:
        print(f"  {r.analysis:<10} {r.status:<9} {r.seconds:6.2f} s  {r.reason or ''}")
    mark = dict(marks)
    if "recording…" in mark and "projecting…" in mark:
        print(
            f"  recording {report.appended.get('accepted', 0):,} events (bulk ingest): "
            f"{mark['projecting…'] - mark['recording…']:.1f} s; "
            f"projecting them: {started + total - mark['projecting…']:.1f} s"
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--full", action="store_true", help="100k customers (≈5M events)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    customers = 100_000 if args.full else args.customers
    folder = args.folder or Path(f"/tmp/radar-bench-analyze-{customers}")
    data = prepare(folder, customers, args.seed)
    work = folder / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(data, work)
    try:
        timed(work, f"radar analyze, first run, {customers:,} customers")
        timed(work, "radar analyze, repeat run (only changes recorded)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
