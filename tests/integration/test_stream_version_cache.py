"""Two writers on one SQLite file, taking turns on the same streams: each writer's memory of
stream versions must be dropped as soon as the other has appended, so versions stay dense."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import purchase

from radar.ingest.pipeline import Ingestor, raw_table
from radar.privacy.keystore import KeyStore
from radar.store import sqlite_store
from radar.store.sqlite_store import SQLiteEventStore


def test_writers_taking_turns_on_one_file_keep_every_stream_dense(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "CACHED_BATCH_ROWS", 1)  # small batches use the cache too
    path = tmp_path / "events.sqlite"
    writers = []
    for name in ("a", "b"):
        store = SQLiteEventStore(path)
        writers.append((store, Ingestor(store, KeyStore(tmp_path / f"keys-{name}.sqlite"))))
    n = 0
    for turn in range(6):
        store, ingestor = writers[turn % 2]
        batch = [purchase(n + i, f"C-{i % 3}") for i in range(7)]
        n += len(batch)
        lines = [(i + 1, json.dumps(e)) for i, e in enumerate(batch)]
        assert ingestor.ingest_raw(raw_table(lines)).accepted == 7

    reader = writers[0][0]
    for customer in ("C-0", "C-1", "C-2"):
        versions = reader.read_stream(customer).column("stream_version").to_pylist()
        assert versions == list(range(1, len(versions) + 1))
    assert reader.count() == 42
    for store, ingestor in writers:
        ingestor.close()
        store.close()
