"""Several OS processes append to one event store at once, through the real ingest path.

Each writer appends 10k purchases in batches of 500 over the same customers; half of its event
ids are shared with every other writer (same key, same batch index, so the writers race on them).
Afterwards: every distinct key is stored exactly once, the writers' accepted counts add up to the
stored count, each customer's versions are dense 1…n, and each writer's own events keep the order
it appended them in. While the writers run, a reader tails the log by position (as the projector
does) and must see every event exactly once — the property the PostgreSQL table lock guarantees.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from radar.domain.envelope import parse_event
from radar.ingest.pipeline import Ingestor, raw_table
from radar.privacy.keystore import KeyStore
from radar.store.base import EventStore

POSTGRES_ENV = "RADAR_TEST_POSTGRES_URL"
EVENTS_PER_WRITER = 10_000
BATCH = 500
#: A batch size of the ``append`` API (an operational system's few events).
SMALL = 16
CUSTOMERS = 97

pytestmark = pytest.mark.slow


def _event(writer: int, j: int) -> dict[str, Any]:
    """Event ``j`` of ``writer``: even ``j`` are shared by all writers, odd ones are its own."""
    shared = j % 2 == 0
    return {
        "event_id": f"shared-{j}" if shared else f"w{writer}-{j}",
        "type": "purchase",
        "customer_id": f"C-{j % CUSTOMERS:03d}",
        "occurred_at": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=j)).isoformat(),
        "source": "webshop",
        "channel": "web",
        "direction": "inbound",
        "data": {"order_id": f"{writer}-{j}", "amount": 10.0 + j % 7, "product": "SKU-1"},
    }


def _open(kind: str, where: str) -> EventStore:
    if kind == "sqlite":
        from radar.store.sqlite_store import SQLiteEventStore

        return SQLiteEventStore(where)
    from radar.store.postgres_store import PostgresEventStore

    url, table = where.split("#")
    return PostgresEventStore(url, table=table)


def _writer(
    kind: str, where: str, keys_path: str, writer: int, batch: int, start: Any, results: Any
) -> None:
    """Process body: open the store, wait for the others, append, report the counts. Batches
    of :data:`BATCH` go through the bulk path (DuckDB validation, Arrow staging); smaller ones
    through the ``append`` API's path (pydantic validation, row-by-row staging), which the
    store writes with plain statements."""
    try:
        store = _open(kind, where)
        keys = KeyStore(keys_path)
        ingestor = Ingestor(store, keys, workers=1)
        start.wait(timeout=120)
        accepted = duplicates = 0
        for first in range(0, EVENTS_PER_WRITER, batch):
            events = [_event(writer, j) for j in range(first, first + batch)]
            if batch >= BATCH:
                result = ingestor.ingest_raw(raw_table(enumerate(map(json.dumps, events))))
            else:
                result = ingestor.ingest_events([parse_event(e) for e in events])
            assert result.rejected == 0, result.rejections[:3]
            accepted += result.accepted
            duplicates += result.duplicates
        ingestor.close()
        keys.close()
        store.close()
        results.put((writer, accepted, duplicates, None))
    except BaseException as e:
        results.put((writer, 0, 0, repr(e)))
        raise


def _run(
    kind: str, where: str, keys_path: Path, batches: list[int], reader: EventStore
) -> list[int]:
    """Run one writer per batch size in ``batches`` while tailing ``reader``; returns the
    positions the tail saw, in order."""
    writers = len(batches)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(writers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(kind, where, str(keys_path), w, batch, start, results))
        for w, batch in enumerate(batches)
    ]
    for p in procs:
        p.start()
    seen: list[int] = []
    position = 0
    while True:
        running = any(p.is_alive() for p in procs)
        page = reader.read_after(position, 2_000)
        if page.num_rows:
            positions = page.column("position").to_pylist()
            seen.extend(positions)
            position = positions[-1]
        elif not running:
            break
        else:
            time.sleep(0.01)
    for p in procs:
        p.join(timeout=60)
    reports = []
    for _ in procs:
        try:
            reports.append(results.get(timeout=10))
        except queue.Empty:
            break
    errors = [r for r in reports if r[3] is not None]
    assert not errors and len(reports) == writers, (errors, [p.exitcode for p in procs])
    accepted = sum(r[1] for r in reports)
    duplicates = sum(r[2] for r in reports)
    assert accepted == reader.count()
    assert accepted + duplicates == writers * EVENTS_PER_WRITER
    return seen


def _stored(store: EventStore) -> pl.DataFrame:
    pages, position = [], 0
    while True:
        page = store.read_after(position, 20_000)
        if page.num_rows == 0:
            break
        pages.append(page)
        position = page.column("position")[-1].as_py()
    frame = pl.from_arrow(pa.concat_tables(pages))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(
        pl.col("state").cast(pl.String).str.json_path_match("$.event_id").alias("event_id")
    )


def _check(store: EventStore, writers: int, tail: list[int]) -> None:
    stored = _stored(store)
    half = EVENTS_PER_WRITER // 2
    expected = {f"shared-{j}" for j in range(0, EVENTS_PER_WRITER, 2)} | {
        f"w{w}-{j}" for w in range(writers) for j in range(1, EVENTS_PER_WRITER, 2)
    }
    # nothing lost, nothing duplicated
    assert stored.height == len(expected) == half + writers * half
    assert set(stored["event_id"].to_list()) == expected
    # per customer: versions dense 1..n
    dense = stored.group_by("stream").agg(
        pl.col("stream_version").sort().alias("versions"), pl.len().alias("n")
    )
    for versions, n in dense.select("versions", "n").iter_rows():
        assert versions == list(range(1, n + 1))
    # each writer's own events keep its append order within every customer
    own = stored.filter(pl.col("event_id").str.starts_with("w")).with_columns(
        pl.col("event_id").str.extract(r"^w(\d+)-", 1).cast(pl.Int64).alias("writer"),
        pl.col("event_id").str.extract(r"-(\d+)$", 1).cast(pl.Int64).alias("j"),
    )
    out_of_order = (
        own.sort("writer", "stream", "j")
        .with_columns(pl.col("stream_version").diff().over("writer", "stream").alias("step"))
        .filter(pl.col("step") <= 0)
    )
    assert out_of_order.height == 0, out_of_order.head()
    # the tailing reader saw every event exactly once, in position order
    assert tail == sorted(stored["position"].to_list())


@pytest.mark.parametrize(
    "batches", [[BATCH, BATCH], [SMALL, BATCH]], ids=["bulk-and-bulk", "small-and-bulk"]
)
def test_two_processes_appending_to_one_sqlite_store_lose_and_duplicate_nothing(
    tmp_path: Path, batches: list[int]
) -> None:
    from radar.store.sqlite_store import SQLiteEventStore

    path = tmp_path / "events.sqlite"
    store = SQLiteEventStore(path)
    try:
        tail = _run("sqlite", str(path), tmp_path / "keys.sqlite", batches, store)
        _check(store, 2, tail)
    finally:
        store.close()


@pytest.fixture
def postgres_table() -> Iterator[tuple[str, str]]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} not set: PostgreSQL concurrency test skipped")
    import psycopg

    schema = f"radar_conc_{uuid.uuid4().hex[:12]}"
    yield url, f"{schema}.stored_events"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.postgres
def test_four_processes_appending_to_postgres_lose_nothing_and_a_tailing_reader_misses_nothing(
    tmp_path: Path, postgres_table: tuple[str, str]
) -> None:
    from radar.store.postgres_store import PostgresEventStore

    url, table = postgres_table
    store = PostgresEventStore(url, table=table)
    try:
        tail = _run("postgres", f"{url}#{table}", tmp_path / "keys.sqlite", [BATCH] * 4, store)
        _check(store, 4, tail)
    finally:
        store.close()
