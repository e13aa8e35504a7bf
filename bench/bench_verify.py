"""Benchmark of the tamper-evidence chain: build a SQLite event store, seal it, time verify.

Usage: ``python bench/bench_verify.py [--events 1000000] [--path /tmp/x.sqlite] [--keep]``.
Builds eventsourcing's ``stored_events`` table with N synthetic rows (about 300-byte JSON states,
executemany in 50k-row transactions), seals it, verifies it, and prints the figures and the
extrapolation to 10M events. Prints only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from radar.audit.chain import SQLiteChainReader, seal, verify

SCHEMA = (
    "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
    "state BLOB, PRIMARY KEY (originator_id, originator_version))"
)
TOPICS = ("radar.domain.events:Purchase", "radar.domain.events:Contact", "radar.domain:Payment")


def _state(i: int) -> bytes:
    return json.dumps(
        {
            "customer_id": f"C-{i % 200_000:07d}",
            "event_id": f"shop-order-{i}",
            "occurred_at": {"_type_": "datetime_iso", "_data_": "2026-03-01T10:15:00+00:00"},
            "source": "webshop",
            "channel": "web",
            "direction": "inbound",
            "data": {"order_id": str(i), "amount": {"_type_": "decimal_str", "_data_": "49.95"}},
        }
    ).encode()


def build(path: Path, events: int, batch: int = 50_000) -> float:
    """Create the store with ``events`` rows (time-ordered ids); returns seconds taken."""
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(SCHEMA)
    for start in range(0, events, batch):
        rows = [
            (str(uuid.UUID(int=(i << 16) | 1)), 1, TOPICS[i % 3], _state(i))
            for i in range(start, min(start + batch, events))
        ]
        with conn:
            conn.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows)
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    """Parse arguments, run the benchmark, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--path", type=Path, default=None, help="reuse/keep this file")
    parser.add_argument("--keep", action="store_true", help="do not delete the file afterwards")
    args = parser.parse_args()

    tmpdir = tempfile.mkdtemp(prefix="radar-bench-")
    path: Path = args.path or Path(tmpdir) / "events.sqlite"
    try:
        if path.exists():
            print(f"reusing {path}")
        else:
            secs = build(path, args.events)
            print(f"built {args.events:,} events in {secs:.1f} s ({args.events / secs:,.0f}/s)")
        print(f"file size {path.stat().st_size / 1e6:,.0f} MB")
        with SQLiteChainReader(path) as reader:
            sealed = seal(reader, every=args.every)
            print(
                f"seal:   {sealed.sealed:,} rows, {sealed.checkpoints} checkpoints in "
                f"{sealed.seconds:.2f} s ({sealed.sealed / max(sealed.seconds, 1e-9):,.0f}/s)"
            )
            cpu_all, cpu_main = time.process_time(), time.thread_time()
            report = verify(reader)
            cpu_all, cpu_main = time.process_time() - cpu_all, time.thread_time() - cpu_main
        rate = report.checked / max(report.seconds, 1e-9)
        print(
            f"verify: {report.checked:,} rows, ok={report.ok}, unsealed={report.unsealed} in "
            f"{report.seconds:.2f} s ({rate:,.0f} events/s)"
        )
        print(f"extrapolated verify of 10M events: {10_000_000 / rate:.1f} s (budget 60 s)")
        # The machine may be shared: CPU time shows what two idle cores would take (the reader
        # thread and the hashing thread run in parallel, so wall >= the larger of the two).
        reader_cpu = cpu_all - cpu_main
        per_10m = 10_000_000 / max(report.checked, 1)
        print(
            f"verify cpu: hashing thread {cpu_main:.2f} s, reader thread {reader_cpu:.2f} s; "
            f"on 2 idle cores 10M ≈ {max(cpu_main, reader_cpu) * per_10m:.1f} s, "
            f"on 1 core ≈ {cpu_all * per_10m:.1f} s; load average {os.getloadavg()[0]:.1f}"
        )
        with sqlite3.connect(path) as conn:
            (size,) = conn.execute(
                "SELECT sum(length(digests) + length(positions)) FROM radar_chain_checkpoints"
            ).fetchone()
        print(f"checkpoint locator storage: {size / 1e6:.1f} MB")
    finally:
        if not args.keep and args.path is None:
            path.unlink(missing_ok=True)
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            os.rmdir(tmpdir)
        elif args.path is None:
            print(f"kept {path}")


if __name__ == "__main__":
    main()
