"""The embedded event store: one SQLite file in eventsourcing's own table format.

The table is created by the library's ``SQLiteApplicationRecorder`` (so its rowid is the
notification id). Bulk appends and reads go through the ADBC SQLite driver, which moves Arrow
batches in and out without a Python object per row. ``BEGIN IMMEDIATE`` takes the write lock before
anything is read, so concurrent appenders (threads or processes) are serialised: nothing is lost,
nothing is duplicated, and each stream's versions stay dense and ordered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adbc_driver_sqlite.dbapi as adbc
import pyarrow as pa
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from radar.store.base import READ_SCHEMA, AppendOutcome
from radar.store.staging import drop_repeated_keys, finalise

EVENTS_TABLE = "stored_events"
KEYS_DDL = (
    "CREATE TABLE IF NOT EXISTS radar_event_keys ("
    "source TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (source, event_id)) WITHOUT ROWID"
)
STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS radar_stage ("
    "line_no INTEGER PRIMARY KEY, source TEXT, event_id TEXT, stream TEXT)"
)
READ_SQL = (
    "SELECT rowid AS position, originator_id AS stream, originator_version AS stream_version, "
    f"topic, state FROM {EVENTS_TABLE} "
)


def library_recorder(path: str) -> SQLiteApplicationRecorder:
    """The eventsourcing recorder over the same file (text originator ids)."""
    datastore = SQLiteDatastore(db_name=path, originator_id_type="text", lock_timeout=60)
    recorder = SQLiteApplicationRecorder(datastore, events_table_name=EVENTS_TABLE)
    recorder.create_table()
    return recorder


class SQLiteEventStore:
    """Event store in a SQLite file. Thread-safe; several processes may append at once."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.recorder = library_recorder(self.path)
        self._lock = threading.Lock()
        self._conn: Any = None
        with self._cursor() as cur:
            cur.execute(KEYS_DDL)

    # -- connection ---------------------------------------------------------------------------

    def _connection(self) -> Any:
        if self._conn is None:
            conn = adbc.connect(self.path, autocommit=True)
            cur = conn.cursor()
            for pragma in (
                "PRAGMA busy_timeout=120000",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA cache_size=-262144",
                "PRAGMA temp_store=MEMORY",
            ):
                cur.execute(pragma)
            cur.execute(STAGE_DDL)
            cur.close()
            self._conn = conn
        return self._conn

    class _Cursor:
        def __init__(self, store: SQLiteEventStore) -> None:
            self.store = store

        def __enter__(self) -> Any:
            self.store._lock.acquire()
            self.cur = self.store._connection().cursor()
            return self.cur

        def __exit__(self, *exc: object) -> None:
            self.cur.close()
            self.store._lock.release()

    def _cursor(self) -> SQLiteEventStore._Cursor:
        return SQLiteEventStore._Cursor(self)

    # -- writes -------------------------------------------------------------------------------

    def append_staged(self, rows: pa.Table) -> AppendOutcome:
        if rows.num_rows == 0:
            return AppendOutcome(accepted=0)
        rows, repeated = drop_repeated_keys(rows)
        keys = rows.select(["line_no", "source", "event_id", "stream"])
        with self._cursor() as cur:
            _begin_immediate(cur)
            try:
                recorded_at = datetime.now(UTC)
                cur.adbc_ingest("radar_stage", keys, mode="append", temporary=True)
                cur.execute(
                    "SELECT s.line_no FROM temp.radar_stage s JOIN radar_event_keys k "
                    "ON k.source = s.source AND k.event_id = s.event_id"
                )
                dups = cur.fetch_arrow_table().column(0).to_pylist() + repeated
                cur.execute(
                    "SELECT d.stream AS stream, (SELECT max(e.originator_version) FROM "
                    f"{EVENTS_TABLE} e WHERE e.originator_id = d.stream) AS version "
                    "FROM (SELECT DISTINCT stream FROM temp.radar_stage) d"
                )
                versions = cur.fetch_arrow_table()
                final = finalise(rows, dups, versions, recorded_at)
                first = last = None
                if final.height:
                    cur.execute(f"SELECT coalesce(max(rowid), 0) FROM {EVENTS_TABLE}")
                    before = int(cur.fetchone()[0])
                    events = final.select(
                        "originator_id", "originator_version", "topic", "state"
                    ).to_arrow()
                    cur.adbc_ingest(EVENTS_TABLE, events, mode="append")
                    new_keys = final.select("source", "event_id").sort("source", "event_id")
                    cur.adbc_ingest("radar_event_keys", new_keys.to_arrow(), mode="append")
                    first, last = before + 1, before + final.height
                cur.execute("DELETE FROM temp.radar_stage")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                with contextlib.suppress(Exception):
                    cur.execute("DELETE FROM temp.radar_stage")
                raise
        return AppendOutcome(
            accepted=final.height,
            duplicate_lines=sorted(int(x) for x in dups),
            first_position=first,
            last_position=last,
            recorded_at=recorded_at,
        )

    # -- reads --------------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...]) -> pa.Table:
        with self._cursor() as cur:
            cur.execute(sql, params)
            table: pa.Table = cur.fetch_arrow_table()
        if table.num_rows == 0:  # ADBC cannot infer column types without rows
            return READ_SCHEMA.empty_table()
        return table.cast(READ_SCHEMA)

    def read_after(self, position: int, limit: int) -> pa.Table:
        return self._query(READ_SQL + "WHERE rowid > ? ORDER BY rowid LIMIT ?", (position, limit))

    def read_range(self, after: int, upto: int) -> pa.Table:
        return self._query(
            READ_SQL + "WHERE rowid > ? AND rowid <= ? ORDER BY rowid", (after, upto)
        )

    def read_stream(self, stream: str) -> pa.Table:
        return self._query(
            READ_SQL + "WHERE originator_id = ? ORDER BY originator_version", (stream,)
        )

    def max_position(self) -> int:
        with self._cursor() as cur:
            cur.execute(f"SELECT coalesce(max(rowid), 0) FROM {EVENTS_TABLE}")
            return int(cur.fetchone()[0])

    def count(self) -> int:
        with self._cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {EVENTS_TABLE}")
            return int(cur.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self.recorder.datastore.close()


def _begin_immediate(cur: Any, attempts: int = 600) -> None:
    """Take SQLite's write lock, waiting (busy timeout, then retries) while another has it."""
    for i in range(attempts):
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except Exception as e:  # the driver maps SQLITE_BUSY to a generic error
            if "locked" not in str(e).lower() and "busy" not in str(e).lower():
                raise
            time.sleep(min(0.05 * (i + 1), 0.5))
    raise TimeoutError("could not take the SQLite write lock")
