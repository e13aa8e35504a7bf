"""The SQLite store's page size, side by side: appending the same prepared batches to a store
file made with SQLite's default 4 KiB pages and to one with radar's ``PAGE_SIZE``.

Run:  python bench/bench_store_pages.py [--events 500000] [--customers 50000]

Only the store append is timed (validation is done before the clock starts), and both wall and
CPU seconds are printed, since the CPU figure is steadier on a busy machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import write_events

from radar.engine import build_engine
from radar.ingest.readers import read_jsonl
from radar.store.sqlite_store import PAGE_SIZE, create_file


def append_seconds(folder: Path, jsonl: Path, page_size: int) -> tuple[float, float, int]:
    """(wall, cpu, events) of appending every batch of ``jsonl`` to a new store."""
    data = folder / f"data-{page_size}"
    data.mkdir()
    create_file(str(data / "events.sqlite"), page_size)
    with build_engine(data_dir=data) as engine:
        prepared = [engine.ingestor.prepare(raw) for raw in read_jsonl(jsonl, 100_000)]
        wall, cpu = time.perf_counter(), time.process_time()
        stored = sum(engine.ingestor.commit(p).accepted for p in prepared)
        return time.perf_counter() - wall, time.process_time() - cpu, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="radar-bench-pages-"))
    try:
        jsonl = folder / "events.jsonl"
        write_events(jsonl, args.events, args.customers)
        results = {size: append_seconds(folder, jsonl, size) for size in (4096, PAGE_SIZE)}
        for size, (wall, cpu, n) in results.items():
            print(
                f"page size {size:>6,}: {n:,} events appended in {wall:.2f} s wall "
                f"({n / wall:,.0f} events/s), {cpu:.2f} s CPU"
            )
        base, ours = results[4096], results[PAGE_SIZE]
        print(f"  CPU ratio default / radar: {base[1] / ours[1]:.2f}×")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
