"""The embedded event store: one SQLite file in eventsourcing's own table format.

The table is created by the library's ``SQLiteApplicationRecorder`` (so its rowid is the
notification id). Bulk appends and reads go through the ADBC SQLite driver, which moves Arrow
batches in and out without a Python object per row; appends of a few events (an operational
system's single event, the service's small group commits) go through the stdlib driver, whose
statements cost microseconds where an ADBC call or Arrow ingest costs a few hundred.
``BEGIN IMMEDIATE`` takes the write lock before anything is read, so concurrent appenders
(threads or processes) are serialised: nothing is lost, nothing is duplicated, and each
stream's versions stay dense and ordered.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adbc_driver_sqlite.dbapi as adbc
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from radar.store.base import READ_SCHEMA, SMALL_BATCH_ROWS, AppendOutcome
from radar.store.staging import (
    drop_repeated_keys,
    finalise,
    finalise_rows,
    first_of_each_key,
    versions_after,
)
from radar.store.stream_versions import StreamVersions

EVENTS_TABLE = "stored_events"
KEYS_DDL = (
    "CREATE TABLE IF NOT EXISTS radar_event_keys ("
    "source TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (source, event_id)) WITHOUT ROWID"
)
#: The batch's keys, staged in key order so that the duplicate check and the key insert walk
#: the ``radar_event_keys`` b-tree in order (each page is visited once, not once per key).
STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS radar_stage_keys ("
    "line_no INTEGER NOT NULL, source TEXT NOT NULL, event_id TEXT NOT NULL)"
)
#: Batches of at least this many rows use (and refresh) the stream-version cache.
CACHED_BATCH_ROWS = 2_000
_CONNECTION_PRAGMAS = (
    "PRAGMA busy_timeout=120000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA cache_size=-262144",
    "PRAGMA temp_store=MEMORY",
)
VERSIONS_SCHEMA = pa.schema([("stream", pa.string()), ("version", pa.int64())])
LOOKUP_DDL = "CREATE TEMP TABLE IF NOT EXISTS radar_lookup (stream TEXT)"
#: Page size of a new store file. Event states are a few hundred bytes of JSON and bulk appends
#: write whole batches, so larger pages mean fewer page splits and b-tree levels: appending costs
#: less CPU than with SQLite's default 4 KiB (``bench/bench_store_pages.py``). 64 KiB appended
#: cheaper still but slowed a customer's history (each event read pulls a whole page), so 16 KiB.
PAGE_SIZE = 16_384
#: Rows per Arrow batch of a large read (the driver's default is 1024, kept for reads of up to
#: that many): a read of up to this many events comes back as ONE batch, so the projector hands
#: DuckDB a rebuild's row groups (122,880 rows) without copying the rows into one piece first.
#: Only for large reads: a larger batch makes a small read dearer.
READ_BATCH_ROWS = 122_880
READ_SQL = (
    "SELECT rowid AS position, originator_id AS stream, originator_version AS stream_version, "
    f"topic, state FROM {EVENTS_TABLE} "
)


def create_file(path: str, page_size: int = PAGE_SIZE) -> None:
    """Create an empty store file with ``page_size`` pages in WAL mode (an existing file keeps
    its page size: changing it would need a VACUUM of the whole log)."""
    if Path(path).exists():
        return
    con = sqlite3.connect(path)
    try:
        con.execute(f"PRAGMA page_size={int(page_size)}")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("VACUUM")  # writes the header, so the page size is fixed from now on
    finally:
        con.close()


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
        create_file(self.path)
        self.recorder = library_recorder(self.path)
        self._lock = threading.Lock()
        self._conn: Any = None
        self._small: sqlite3.Connection | None = None
        self._versions = StreamVersions()
        with self._cursor() as cur:
            cur.execute(KEYS_DDL)

    # -- connection ---------------------------------------------------------------------------

    def _connection(self) -> Any:
        if self._conn is None:
            conn = adbc.connect(self.path, autocommit=True)
            cur = conn.cursor()
            for pragma in _CONNECTION_PRAGMAS:
                cur.execute(pragma)
            cur.execute(STAGE_DDL)
            cur.execute(LOOKUP_DDL)
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

    def _small_connection(self) -> sqlite3.Connection:
        """The stdlib connection for small appends (called with the lock held)."""
        if self._small is None:
            con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in _CONNECTION_PRAGMAS:
                con.execute(pragma)
            self._small = con
        return self._small

    def append_staged(self, rows: pa.Table) -> AppendOutcome:
        if rows.num_rows == 0:
            return AppendOutcome(accepted=0)
        if rows.num_rows <= SMALL_BATCH_ROWS:
            return self._append_small(rows.to_pylist())
        rows, repeated = drop_repeated_keys(rows)
        keys = _in_key_order(rows.select(["line_no", "source", "event_id"]))
        with self._cursor() as cur:
            _begin_immediate(cur)
            try:
                recorded_at = datetime.now(UTC)
                before = _head(cur)
                cur.adbc_ingest("radar_stage_keys", keys, mode="append", temporary=True)
                cur.execute(
                    "SELECT s.line_no FROM temp.radar_stage_keys s JOIN radar_event_keys k "
                    "ON k.source = s.source AND k.event_id = s.event_id"
                )
                dups = cur.fetch_arrow_table().column(0).to_pylist() + repeated
                versions = self._stream_versions(cur, rows.column("stream"), before)
                final = finalise(rows, dups, versions, recorded_at)
                first = last = None
                if final.num_rows:
                    events = final.select(["originator_id", "originator_version", "topic", "state"])
                    cur.adbc_ingest(EVENTS_TABLE, events, mode="append")
                    # the staged keys not stored yet are exactly the new ones (write lock held)
                    cur.execute(
                        "INSERT OR IGNORE INTO radar_event_keys SELECT source, event_id "
                        "FROM temp.radar_stage_keys ORDER BY rowid"
                    )
                    first, last = before + 1, before + final.num_rows
                cur.execute("DELETE FROM temp.radar_stage_keys")
                cur.execute("COMMIT")
            except BaseException:
                self._versions.forget()
                cur.execute("ROLLBACK")
                with contextlib.suppress(Exception):
                    cur.execute("DELETE FROM temp.radar_stage_keys")
                    cur.execute("DELETE FROM temp.radar_lookup")
                raise
            if rows.num_rows >= CACHED_BATCH_ROWS:
                self._versions.remember(versions_after(versions, final), before + final.num_rows)
        return AppendOutcome(
            accepted=final.num_rows,
            duplicate_lines=sorted(int(x) for x in dups),
            first_position=first,
            last_position=last,
            recorded_at=recorded_at,
        )

    def _append_small(self, rows: list[dict[str, Any]]) -> AppendOutcome:
        """:meth:`append_staged` for a few rows: the same steps under the same write lock, as
        one parameterised statement per key and per stream instead of staged tables."""
        staged, repeated = first_of_each_key(rows)
        with self._lock:
            con = self._small_connection().cursor()
            _begin_immediate(con)
            try:
                recorded_at = datetime.now(UTC)
                before = _head(con)
                dups = repeated + [
                    r["line_no"]
                    for r in staged
                    if con.execute(KEY_SQL, (r["source"], r["event_id"])).fetchone() is not None
                ]
                versions = {
                    s: con.execute(VERSION_SQL, (s,)).fetchone()[0]
                    for s in {r["stream"] for r in staged}
                }
                final = finalise_rows(staged, dups, versions, recorded_at)
                con.executemany(INSERT_SQL, [tuple(r[c] for c in INSERT_COLUMNS) for r in final])
                con.executemany(
                    "INSERT INTO radar_event_keys (source, event_id) VALUES (?, ?)",
                    [(r["source"], r["event_id"]) for r in final],
                )
                con.execute("COMMIT")
            except BaseException:
                self._versions.forget()
                con.execute("ROLLBACK")
                raise
            finally:
                con.close()
        return AppendOutcome(
            accepted=len(final),
            duplicate_lines=sorted(dups),
            first_position=before + 1 if final else None,
            last_position=before + len(final) if final else None,
            recorded_at=recorded_at,
        )

    def _stream_versions(self, cur: Any, streams: pa.ChunkedArray, head: int) -> pa.Table:
        """(stream, version) of every distinct stream in a batch: remembered ones from the
        cache (valid while the head is where this store left it), the others looked up."""
        if len(streams) < CACHED_BATCH_ROWS:  # a few lookups cost less than the cache's upkeep
            known, missing = VERSIONS_SCHEMA.empty_table(), pc.unique(streams)
        else:
            series = pl.from_arrow(streams)
            assert isinstance(series, pl.Series)
            remembered, unknown = self._versions.lookup(series, head)
            known, missing = remembered.to_arrow().cast(VERSIONS_SCHEMA), unknown.to_arrow()
        if len(missing) == 0:
            return known
        cur.adbc_ingest(
            "radar_lookup", pa.table({"stream": missing}), mode="append", temporary=True
        )
        cur.execute(
            "SELECT l.stream AS stream, (SELECT max(e.originator_version) FROM "
            f"{EVENTS_TABLE} e WHERE e.originator_id = l.stream) AS version "
            "FROM temp.radar_lookup l"
        )
        found = cur.fetch_arrow_table()
        cur.execute("DELETE FROM temp.radar_lookup")
        found = pa.table(
            [found.column(0).cast(pa.string()), found.column(1).cast(pa.int64())],
            schema=VERSIONS_SCHEMA,
        )
        return pa.concat_tables([known, found])

    # -- reads --------------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...], batch_rows: int = 0) -> pa.Table:
        with self._cursor() as cur:
            if batch_rows > 1024:
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
            cur.execute(sql, params)
            table: pa.Table = cur.fetch_arrow_table()
        if table.num_rows == 0:  # ADBC cannot infer column types without rows
            return READ_SCHEMA.empty_table()
        return table.cast(READ_SCHEMA)

    def read_after(self, position: int, limit: int) -> pa.Table:
        sql = READ_SQL + "WHERE rowid > ? ORDER BY rowid LIMIT ?"
        return self._query(sql, (position, limit), min(limit, READ_BATCH_ROWS))

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
            return _head(cur)

    def count(self) -> int:
        with self._cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {EVENTS_TABLE}")
            return int(cur.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._small is not None:
                self._small.close()
                self._small = None
        self.recorder.datastore.close()


KEY_SQL = "SELECT 1 FROM radar_event_keys WHERE source = ? AND event_id = ?"
VERSION_SQL = f"SELECT max(originator_version) FROM {EVENTS_TABLE} WHERE originator_id = ?"
INSERT_COLUMNS = ("originator_id", "originator_version", "topic", "state")
INSERT_SQL = f"INSERT INTO {EVENTS_TABLE} ({', '.join(INSERT_COLUMNS)}) VALUES (?, ?, ?, ?)"


def _in_key_order(keys: pa.Table) -> pa.Table:
    """``keys`` sorted by (source, event_id)."""
    return keys.take(pc.sort_indices(keys, [("source", "ascending"), ("event_id", "ascending")]))


def _head(cur: Any) -> int:
    """The highest notification id (0 for an empty log)."""
    cur.execute(f"SELECT coalesce(max(rowid), 0) FROM {EVENTS_TABLE}")
    return int(cur.fetchone()[0])


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
