"""Benchmark of the PostgreSQL event store: N events appended through the Ingestor in batches.

Usage: ``python bench/bench_postgres.py [--events 1000000] [--batch 50000] [--url URL] [--keep]``
(URL defaults to ``RADAR_TEST_POSTGRES_URL``, then ``postgresql://postgres@127.0.0.1:5432/test``).
Writes a synthetic JSONL file (``bench/synthetic.py``), appends it batch by batch into a fresh
schema through the real ingest path (DuckDB validation and encoding, encryption of personal
fields, one store transaction per batch), then reads everything back in pages. Prints events/s
end to end, inside the store's ``append_staged`` alone, and for reads; asserts nothing. The
schema is dropped afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pyarrow as pa
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_events

from radar.ingest.pipeline import Ingestor
from radar.ingest.readers import read_jsonl
from radar.privacy.keystore import KeyStore
from radar.store.base import AppendOutcome
from radar.store.postgres_store import PostgresEventStore

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "radar_bench"


class TimedStore(PostgresEventStore):
    """The store, adding up the time spent inside ``append_staged``."""

    store_seconds = 0.0

    def append_staged(self, rows: pa.Table) -> AppendOutcome:
        started = time.perf_counter()
        try:
            return super().append_staged(rows)
        finally:
            self.store_seconds += time.perf_counter() - started


def _drop_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--url", default=os.environ.get("RADAR_TEST_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()

    _drop_schema(args.url)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "events.jsonl"
        started = time.perf_counter()
        write_events(source, args.events, args.customers)
        print(f"generated {args.events:,} events in {time.perf_counter() - started:.1f} s")

        store = TimedStore(args.url, table=f"{SCHEMA}.stored_events")
        keys = KeyStore(Path(tmp) / "keys.sqlite")
        ingestor = Ingestor(store, keys)
        accepted = batches = 0
        started = time.perf_counter()
        for raw in read_jsonl(source, args.batch):
            result = ingestor.ingest_raw(raw)
            accepted += result.accepted
            batches += 1
        total = time.perf_counter() - started
        print(
            f"appended {accepted:,} events in {batches} batches of {args.batch:,}: "
            f"{total:.1f} s = {accepted / total:,.0f} events/s end to end "
            f"(store alone {store.store_seconds:.1f} s = "
            f"{accepted / store.store_seconds:,.0f} events/s)"
        )

        started = time.perf_counter()
        position = read = 0
        head = store.max_position()
        while position < head:
            page = store.read_range(position, min(head, position + args.batch))
            read += page.num_rows
            position = min(head, position + args.batch)
        seconds = time.perf_counter() - started
        print(f"read back {read:,} events in {seconds:.1f} s = {read / seconds:,.0f} events/s")

        ingestor.close()
        keys.close()
        store.close()
    if not args.keep:
        _drop_schema(args.url)


if __name__ == "__main__":
    main()
