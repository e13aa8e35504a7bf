"""Ingest and rebuild throughput, side by side with the library's idiomatic paths (issue #2).

Run:  python bench/bench_ingest.py [--events 500000] [--customers 50000] [--memory-events N]
      python bench/bench_ingest.py --rebuild-data DIR [--repeat 3]   (only rebuild a copy of DIR)

Prints, on the same synthetic events:
  * bulk ingest JSONL → SQLite store (radar) vs ``Application.save`` per aggregate (eventsourcing);
  * rebuild of the DuckDB view from the log (radar) vs decoding event by event through the
    library's ``Mapper`` (only decoding, nothing written: a generous baseline);
  * catch-up of a 1k-event batch into the existing view;
  * with ``--memory-events N``: peak RSS of a rebuild of an N-event store, in a fresh process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import write_events

from radar.engine import build_engine


def radar_ingest(data: Path, path: Path) -> tuple[float, int]:
    with build_engine(data_dir=data) as engine:
        started = time.perf_counter()
        result = engine.ingest_file(path)
        return time.perf_counter() - started, result.accepted


def idiomatic_ingest(folder: Path, path: Path, limit: int) -> tuple[float, int]:
    """eventsourcing's idiomatic path: one aggregate per customer, ``save`` per aggregate."""
    import json
    import os

    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Customer(Aggregate):
        def __init__(self, customer_id: str) -> None:
            self.customer_id = customer_id

        @event("Recorded")
        def record(self, kind: str, occurred_at: str, data: dict[str, Any]) -> None:
            pass

    class Shop(Application[Any]):
        pass

    os.environ.update(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "es.db")}
    )
    app = Shop()
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            rows.append(json.loads(line))
    started = time.perf_counter()
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_customer.setdefault(r["customer_id"], []).append(r)
    for cid, events in by_customer.items():
        agg = Customer(cid)
        for r in events:
            agg.record(r["type"], r["occurred_at"], r.get("data", {}))
        app.save(agg)
    return time.perf_counter() - started, len(rows)


def mapper_decode(data: Path, limit: int) -> tuple[float, int]:
    """Decode stored events one at a time through the library's mapper."""
    from eventsourcing.persistence import (
        DatetimeAsISO,
        DecimalAsStr,
        JSONTranscoder,
        Mapper,
        UUIDAsHex,
    )

    from radar.store.sqlite_store import library_recorder

    transcoder = JSONTranscoder()
    for t in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(t)
    mapper: Mapper[Any] = Mapper(transcoder)
    recorder = library_recorder(str(data / "events.sqlite"))
    started = time.perf_counter()
    n = 0
    start = 1
    while n < limit:
        page = recorder.select_notifications(start=start, limit=10_000)
        if not page:
            break
        for notification in page:
            mapper.to_domain_event(notification)
        n += len(page)
        start = page[-1].id + 1
    return time.perf_counter() - started, n


def rebuild(data: Path) -> tuple[float, int, float]:
    """Rebuild the view of ``data``: wall seconds, events, and the CPU seconds of this process
    (all its threads, DuckDB's included) during the rebuild."""
    with build_engine(data_dir=data) as engine:
        _ = engine.projector  # open the store and the view first: only the rebuild is timed
        cpu = time.process_time()
        result = engine.rebuild()
        return result.seconds, result.events, time.process_time() - cpu


def rebuild_copy(source: Path, repeat: int) -> None:
    """Rebuild a copy of an existing data folder ``repeat`` times (wall and CPU seconds each)."""
    folder = Path(tempfile.mkdtemp(prefix="radar-rebuild-"))
    try:
        data = folder / "data"
        shutil.copytree(source, data, ignore=shutil.ignore_patterns("view.duckdb*"))
        for _ in range(repeat):
            secs, n, cpu = rebuild(data)
            print(
                f"rebuild of the view (radar): {n:,} events in {secs:.2f} s = "
                f"{n / secs:,.0f} events/s, CPU {cpu:.2f} s (target ≥ 500,000)",
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def catch_up_1k(data: Path, folder: Path) -> float:
    path = folder / "more.jsonl"
    write_events(path, 1000, 50_000, seed=99, source="late")
    with build_engine(data_dir=data) as engine:
        engine.project()
        engine.ingest_file(path)
        started = time.perf_counter()
        result = engine.project()
        assert result.events == 1000
        return time.perf_counter() - started


def peak_rebuild_memory(events: int, folder: Path) -> None:
    data = folder / "mem-data"
    path = folder / "mem.jsonl"
    print(f"building a {events:,}-event store for the memory check …", flush=True)
    write_events(path, events, max(events // 50, 1000), seed=7)
    seconds, _ = radar_ingest(data, path)
    path.unlink()
    print(f"  (ingested in {seconds:.1f} s = {events / seconds:,.0f} events/s)")
    rebuild_peak_memory(data)


def rebuild_peak_memory(data: Path) -> None:
    """Rebuild ``data`` in a fresh process and print its peak RSS (VmHWM: ``ru_maxrss`` would
    report the parent's peak, which Linux carries across fork and exec)."""
    code = (
        "from pathlib import Path; from radar.engine import build_engine\n"
        f"e = build_engine(data_dir=Path({str(data)!r})); r = e.rebuild(); e.close()\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(r.events, r.seconds, hwm)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n, secs, rss_kb = out.stdout.strip().splitlines()[-1].split()
    print(
        f"rebuild of {int(n):,} events: {float(secs):.1f} s "
        f"({int(n) / float(secs):,.0f} events/s), peak RSS {int(rss_kb) / 1024:,.0f} MiB "
        "(target < 2048 MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--baseline-events", type=int, default=100_000)
    parser.add_argument("--memory-events", type=int, default=0)
    parser.add_argument("--memory-only", action="store_true", help="only the memory check")
    parser.add_argument("--memory-data", type=Path, help="rebuild this existing data folder")
    parser.add_argument(
        "--rebuild-data", type=Path, help="only rebuild a copy of this existing data folder"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rebuilds with --rebuild-data")
    args = parser.parse_args()
    if args.rebuild_data:
        rebuild_copy(args.rebuild_data, args.repeat)
        return
    if args.memory_data:
        rebuild_peak_memory(args.memory_data)
        return
    if args.memory_only:
        folder = Path(tempfile.mkdtemp(prefix="radar-bench-"))
        try:
            peak_rebuild_memory(args.memory_events, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    folder = Path(tempfile.mkdtemp(prefix="radar-bench-"))
    try:
        path = folder / "events.jsonl"
        write_events(path, args.events, args.customers)
        data = folder / "data"
        secs, n = radar_ingest(data, path)
        radar_rate = n / secs
        b_secs, b_n = idiomatic_ingest(folder, path, args.baseline_events)
        base_rate = b_n / b_secs
        print(
            f"bulk ingest (radar, JSONL → SQLite): {n:,} events in {secs:.2f} s = "
            f"{radar_rate:,.0f} events/s (target ≥ 150,000)"
        )
        print(
            f"idiomatic Application.save per aggregate: {b_n:,} events in {b_secs:.2f} s = "
            f"{base_rate:,.0f} events/s"
        )
        print(f"  ratio radar / idiomatic: {radar_rate / base_rate:.1f}×")
        r_secs, r_n, r_cpu = rebuild(data)
        m_secs, m_n = mapper_decode(data, args.events)
        print(
            f"rebuild of the view (radar): {r_n:,} events in {r_secs:.2f} s = "
            f"{r_n / r_secs:,.0f} events/s, CPU {r_cpu:.2f} s (target ≥ 500,000)"
        )
        print(
            f"decode one by one through the library's mapper: {m_n:,} events in "
            f"{m_secs:.2f} s = {m_n / m_secs:,.0f} events/s"
        )
        print(f"  ratio radar / mapper: {(r_n / r_secs) / (m_n / m_secs):.1f}×")
        print(
            f"catch-up of a 1k-event batch into the view: {catch_up_1k(data, folder):.3f} s "
            "(target < 0.5 s)"
        )
        if args.memory_events:
            peak_rebuild_memory(args.memory_events, folder)
        print(
            f"(this process peak RSS: "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
