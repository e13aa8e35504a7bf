"""The scale-out event store: PostgreSQL, in eventsourcing 9.5's own table format.

The events table is created by the library's ``PostgresApplicationRecorder`` (text originator
ids, ``notification_id`` is the global position), so the library's recorder and mapper read back
everything radar writes. Next to it, in the same schema, ``radar_event_keys`` holds the
idempotency keys (source, event_id).

An append is one transaction, set-based end to end:

1. the batch's keys are COPYed into a temporary table (before any lock is taken);
2. the library's own lock is taken (``LOCK TABLE … IN EXCLUSIVE MODE``): appenders are
   serialised, so each stream's versions stay dense and ordered, and notification ids become
   visible in commit order — a reader tailing by position never passes over an event that commits
   later with a lower id (``POSTGRES_ENABLE_DB_FUNCTIONS`` is never used: its insert function
   takes no lock);
3. SQL finds the keys already stored and each stream's current version; the backend-neutral
   :func:`~radar.store.staging.finalise` numbers the rows and stamps the recorded time;
4. the rows are COPYed into the events table with notification ids ``max + 1 …`` assigned
   explicitly under the lock (so a rolled-back append leaves no gap in the positions), the keys
   into ``radar_event_keys``, the id sequence is moved on, listeners are notified, and it commits.

Reads fetch rows over psycopg's binary protocol (``state`` arrives as bytes, no decoding) and build
the Arrow columns in one pass.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import polars as pl
import psycopg
import pyarrow as pa
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from radar.domain.errors import ConfigurationError
from radar.store.base import READ_COLUMNS, READ_SCHEMA, AppendOutcome
from radar.store.staging import finalise

EVENTS_TABLE = "stored_events"
KEYS_TABLE = "radar_event_keys"
STAGE_TABLE = "radar_stage"
SETUP_LOCK = "radar.store.postgres.setup"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: Arrow schema of every read (the same names as :data:`radar.store.base.READ_COLUMNS`).
assert tuple(READ_SCHEMA.names) == READ_COLUMNS


def split_table(table: str) -> tuple[str, str]:
    """``(schema, table)`` from ``table`` or ``schema.table``; rejects unsafe identifiers."""
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise ConfigurationError(
            f"invalid event table name {table!r}: use NAME or SCHEMA.NAME (letters, digits, _)"
        )
    return (parts[0], parts[1]) if len(parts) == 2 else ("public", parts[0])


def library_recorder(url: str, schema: str, table: str) -> PostgresApplicationRecorder:
    """The eventsourcing recorder over the same database (text originator ids), table created."""
    params = conninfo_to_dict(url)
    datastore = PostgresDatastore(
        dbname=str(params.get("dbname", "")),
        host=str(params.get("host", "localhost")),
        port=str(params.get("port", "5432")),
        user=str(params.get("user", "")),
        password=str(params.get("password", "")),
        schema=schema,
        originator_id_type="text",
        enable_db_functions=False,
    )
    recorder = PostgresApplicationRecorder(datastore, events_table_name=table)
    recorder.create_table()
    return recorder


class PostgresEventStore:
    """Event store in a PostgreSQL database. Thread-safe; many processes may append at once.

    ``table`` names the events table, optionally schema-qualified (``"tenant_a.stored_events"``;
    the schema is created if missing). The keys table ``radar_event_keys`` lives in the same
    schema, so keep one radar events table per schema. ``recorder`` is the library's recorder
    over the same table (its own small connection pool); ``close()`` releases everything.
    """

    def __init__(self, url: str, *, table: str = EVENTS_TABLE) -> None:
        self.url = url
        self.schema, self.table = split_table(table)
        self._events = sql.Identifier(self.schema, self.table)
        self._keys = sql.Identifier(self.schema, KEYS_TABLE)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: psycopg.Connection[Any] | None = None
        self._reader: psycopg.Connection[Any] | None = None
        # Appenders starting at once on a fresh database would race to create the tables: one
        # session-level advisory lock serialises radar's setup (the library's DDL included).
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (SETUP_LOCK,))
            try:
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if exists is None:  # CREATE SCHEMA IF NOT EXISTS needs CREATE rights even so
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
                self.recorder = library_recorder(url, self.schema, self.table)
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (source text NOT NULL, "
                        "event_id text NOT NULL, PRIMARY KEY (source, event_id))"
                    ).format(self._keys)
                )
                row = conn.execute(
                    "SELECT pg_get_serial_sequence(%s, 'notification_id')",
                    (f'"{self.schema}"."{self.table}"',),
                ).fetchone()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (SETUP_LOCK,))
        assert row is not None and row[0] is not None
        self._sequence: str = row[0]
        stage = sql.Identifier(STAGE_TABLE)
        # Correlated sub-queries: one index probe per staged row / stream, so an append costs
        # O(batch × log(stored)) however large the tables grow (a hash join would scan them).
        self._duplicates_sql = sql.SQL(
            "SELECT line_no FROM (SELECT s.line_no, EXISTS (SELECT 1 FROM {keys} k "
            "WHERE k.source = s.source AND k.event_id = s.event_id) AS stored "
            "FROM {stage} s) x WHERE stored"
        ).format(keys=self._keys, stage=stage)
        self._versions_sql = sql.SQL(
            "SELECT d.stream, (SELECT max(e.originator_version) FROM {events} e "
            "WHERE e.originator_id = d.stream) FROM (SELECT DISTINCT stream FROM {stage} "
            "ORDER BY stream) d"
        ).format(events=self._events, stage=stage)
        self._notify = sql.SQL("NOTIFY {}").format(sql.Identifier(self.recorder.channel_name))

    # -- connections --------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (line_no bigint, source text, event_id text, "
                "stream text) ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(STAGE_TABLE))
        )
        return conn

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        with self._write_lock:
            if self._writer is None or self._writer.closed:
                self._writer = self._connect()
            yield self._writer

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        with self._read_lock:
            if self._reader is None or self._reader.closed:
                self._reader = psycopg.connect(self.url, autocommit=True)
            yield self._reader

    # -- writes -------------------------------------------------------------------------------

    def append_staged(self, rows: pa.Table) -> AppendOutcome:
        """Write a staged batch atomically (all rows or none); idempotent on (source, event_id)."""
        if rows.num_rows == 0:
            return AppendOutcome(accepted=0)
        # A key repeated inside the batch: the first line wins, later ones are duplicates.
        keys = _frame(rows.select(["line_no", "source", "event_id", "stream"])).with_columns(
            (pl.int_range(pl.len()).over("source", "event_id", order_by="line_no") > 0).alias("_d")
        )
        repeated = keys.filter(pl.col("_d"))["line_no"].to_list()
        keys_csv = _csv(keys.filter(~pl.col("_d")).drop("_d"))
        with self._writing() as conn, conn.transaction(), conn.cursor() as cur:
            _copy_in(
                cur,
                sql.Identifier(STAGE_TABLE),
                ("line_no", "source", "event_id", "stream"),
                keys_csv,
            )
            for statement in self.recorder.lock_table_statements:
                cur.execute(statement)
            recorded_at = datetime.now(UTC)
            cur.execute(self._duplicates_sql)
            dups = [*repeated, *(int(r[0]) for r in cur.fetchall())]
            cur.execute(self._versions_sql)
            found = cur.fetchall()
            versions = pa.table(
                {
                    "stream": pa.array([r[0] for r in found], pa.string()),
                    "version": pa.array([r[1] for r in found], pa.int64()),
                }
            )
            final = pl.from_arrow(finalise(rows, dups, versions, recorded_at))
            assert isinstance(final, pl.DataFrame)
            first = last = None
            if final.height:
                cur.execute(
                    sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(self._events)
                )
                head = cur.fetchone()
                assert head is not None
                first, last = int(head[0]) + 1, int(head[0]) + final.height
                events = final.select(
                    pl.int_range(first, last + 1, dtype=pl.Int64).alias("notification_id"),
                    "originator_id",
                    "originator_version",
                    "topic",
                    (pl.lit("\\x") + pl.col("state").bin.encode("hex")).alias("state"),
                )
                _copy_in(cur, self._events, tuple(events.columns), _csv(events))
                new_keys = final.select("source", "event_id").sort("source", "event_id")
                _copy_in(cur, self._keys, ("source", "event_id"), _csv(new_keys))
                cur.execute("SELECT setval(%s, %s)", (self._sequence, last))
                cur.execute(self._notify)
        return AppendOutcome(
            accepted=final.height,
            duplicate_lines=sorted(dups),
            first_position=first,
            last_position=last,
            recorded_at=recorded_at,
        )

    # -- reads --------------------------------------------------------------------------------

    def _query(self, where: sql.Composable, params: tuple[Any, ...]) -> pa.Table:
        select = sql.SQL(
            "SELECT notification_id, originator_id::text, originator_version, topic, state "
            "FROM {} {}"
        ).format(self._events, where)
        with self._reading() as conn, conn.cursor(binary=True) as cur:
            cur.execute(select, params)
            rows = cur.fetchall()
        return _columns(rows)

    def read_after(self, position: int, limit: int) -> pa.Table:
        """Up to ``limit`` stored events with position > ``position``, in position order."""
        return self._query(
            sql.SQL("WHERE notification_id > %s ORDER BY notification_id LIMIT %s"),
            (position, limit),
        )

    def read_range(self, after: int, upto: int) -> pa.Table:
        """Stored events with ``after < position <= upto``, in position order."""
        return self._query(
            sql.SQL(
                "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id"
            ),
            (after, upto),
        )

    def read_stream(self, stream: str) -> pa.Table:
        """Every stored event of one stream (a customer), in version order."""
        return self._query(
            sql.SQL("WHERE originator_id = %s ORDER BY originator_version"), (stream,)
        )

    def _scalar(self, query: sql.Composed) -> int:
        with self._reading() as conn:
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])

    def max_position(self) -> int:
        """The highest notification id (0 for an empty store)."""
        return self._scalar(
            sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(self._events)
        )

    def count(self) -> int:
        """How many events are stored."""
        return self._scalar(sql.SQL("SELECT count(*) FROM {}").format(self._events))

    def close(self) -> None:
        """Close radar's connections and the library recorder's pool."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self.recorder.datastore.close()


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _csv(frame: pl.DataFrame) -> bytes:
    """``frame`` as headerless CSV (nulls empty, empty strings quoted: PostgreSQL's CSV rules)."""
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False)
    return buf.getvalue()


def _copy_in(
    cur: psycopg.Cursor[Any], table: sql.Composable, columns: tuple[str, ...], data: bytes
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        table, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with cur.copy(statement) as copy:
        copy.write(data)


def _columns(rows: list[tuple[Any, ...]]) -> pa.Table:
    """The Arrow table of fetched rows (binary protocol: ``state`` arrives as ``bytes``)."""
    if not rows:
        return READ_SCHEMA.empty_table()
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, READ_SCHEMA, strict=True)],
        schema=READ_SCHEMA,
    )
