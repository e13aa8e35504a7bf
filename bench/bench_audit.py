"""Benchmark of the auditors' commands: history, as-of view, verify.

Usage: ``python bench/bench_audit.py [--events 1000000] [--customers 100000] [--big 10000]
[--folder DIR] [--keep]``.

Builds a data folder with ``--events`` synthetic events (``bench/synthetic.py``) plus one customer
with ``--big`` events, ingests and projects it, then times

* ``read_history`` of the big customer (budget: 10k events under 100 ms);
* the as-of view (``customer_view``) of one ordinary and of the big customer, on the plain events
  table and again after ``CREATE INDEX … (customer_id)`` (an ART index) — budget under 1 s at 10M;
* ``radar verify``'s parts: chain seal and verify, replay into scratch and compare, consent audit,
  and extrapolates them linearly to 10M events (budget under 60 s).

Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_events

from radar.audit.asof import customer_view
from radar.audit.consent import consent_violations
from radar.audit.history import read_history
from radar.audit.replay import check_chain, replay_check, seal_log, verify_radar
from radar.engine import Engine, build_engine

BIG = "C-BIG"


def _timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median wall time (s) of ``repeat`` calls, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def build(engine: Engine, folder: Path, events: int, customers: int, big: int) -> None:
    src = folder / "src"
    src.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    write_events(src / "bulk.jsonl", events, customers)
    write_events(src / "big.jsonl", big, 1, seed=2, source="big")
    text = (src / "big.jsonl").read_text().replace('"C-0000000"', f'"{BIG}"')
    (src / "big.jsonl").write_text(text)
    print(f"generated {events + big:,} events in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    for name in ("bulk.jsonl", "big.jsonl"):
        engine.ingest_file(src / name)
    secs = time.perf_counter() - t
    print(f"ingested in {secs:.1f} s ({(events + big) / secs:,.0f}/s)")
    t = time.perf_counter()
    caught = engine.project()
    print(f"projected {caught.events:,} events in {time.perf_counter() - t:.1f} s")


def bench_history(engine: Engine) -> None:
    first, _ = _timed(lambda: read_history(engine, BIG), repeat=1)
    print(f"history of {BIG}, first call (cold caches, key store opened): {first * 1000:.1f} ms")
    secs, h = _timed(lambda: read_history(engine, BIG), repeat=9)
    print(f"history of {BIG}: {h.total:,} events in {secs * 1000:.1f} ms (budget 100 ms)")
    secs, h = _timed(lambda: read_history(engine, BIG, types=["purchase"]))
    print(f"history of {BIG}, purchases only: {len(h.events):,} in {secs * 1000:.1f} ms")


def bench_asof(engine: Engine, events: int, index: bool) -> None:
    """The as-of view; its cost is a fixed part (binding the ~90-aggregate query) plus a scan of
    ``customer_id`` over the events table, the only part that grows with the log."""
    label = "with ART index" if index else "no index"
    as_of = datetime(2025, 6, 1, tzinfo=UTC)
    known = datetime.now(UTC)
    scale = 10_000_000 / events
    for customer in ("C-0000042", BIG):
        secs, v = _timed(
            functools.partial(
                customer_view, engine, customer, as_of=as_of, known_at=known, catch_up=False
            )
        )
        scan, _ = _timed(
            lambda c=customer: engine.view.execute(  # type: ignore[misc]
                "SELECT count(*) FROM events WHERE customer_id = $c AND occurred_at <= $t "
                "AND recorded_at <= $k",
                {"c": c, "t": as_of, "k": known},
            ).fetchall()
        )
        print(
            f"as-of view of {customer} ({label}): {secs * 1000:.1f} ms "
            f"({v.row['purchases']} purchases), of which the scan {scan * 1000:.1f} ms; "
            f"10M ≈ {(secs + scan * (scale - 1)) * 1000:.0f} ms (budget 1000 ms)"
        )


def _run(label: str, fn: Callable[[], Any]) -> tuple[float, float, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s cpu (all threads)")
    return wall, cpu, result


def bench_verify(engine: Engine, events: int) -> None:
    """``radar verify`` and its parts; the CPU time shows what idle cores would take."""
    scale = 10_000_000 / events
    _run(f"first seal of {events:,} events", lambda: seal_log(engine))
    _run("chain verify", lambda: check_chain(engine))
    _run("replay + compare", lambda: replay_check(engine))
    _run("consent audit", lambda: consent_violations(engine, catch_up=False))
    wall, cpu, report = _run("radar verify (all, chain on a thread)", lambda: verify_radar(engine))
    print(
        f"verify ok={report.ok}: {events:,} events in {wall:.1f} s; linear 10M ≈ "
        f"{wall * scale:.0f} s wall here (load average {os.getloadavg()[0]:.1f}); "
        f"{cpu * scale:.0f} s of cpu ≈ {cpu * scale / 2:.0f} s on 2 idle cores at best "
        "(budget 60 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, default=None, help="reuse/keep this data folder")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    folder: Path = args.folder or Path(tempfile.mkdtemp(prefix="radar-bench-audit-"))
    engine = build_engine(data_dir=folder / "data", event_store=None)
    try:
        if (folder / "data" / "events.sqlite").exists():
            print(f"reusing {folder}")
            engine.project()
        else:
            build(engine, folder, args.events, args.customers, args.big)
        events = engine.store.count()
        bench_history(engine)
        bench_asof(engine, events, index=False)
        t = time.perf_counter()
        engine.view.execute(
            "CREATE INDEX IF NOT EXISTS bench_events_customer ON events (customer_id)"
        )
        print(f"CREATE INDEX on events(customer_id): {time.perf_counter() - t:.1f} s")
        bench_asof(engine, events, index=True)
        engine.view.execute("DROP INDEX bench_events_customer")
        bench_verify(engine, events)
    finally:
        engine.close()
        if not args.keep and args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
