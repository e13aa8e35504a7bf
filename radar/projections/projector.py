"""The projector: catches the DuckDB view up with the log, exactly once, in micro-batches.

Each batch — the stored events after the tracked position — is decoded and written to ``events``
together with the new position in ONE DuckDB transaction, so a crash at any point leaves either
the whole batch applied (and its position recorded) or none of it. ``customers`` is then brought
up to date for the customers the batch touched, in the same transaction. A long backlog instead
marks ``customers`` dirty in the same transactions and recomputes it once at the end — the dirty
mark survives a crash, so a restart finishes the job. (A batch whose ``actions.decided`` events
hold more decisions than the incremental limit counts as a backlog too.)

Every decision of an ``actions.decided`` event gets its own row in ``events`` in the same
transaction as the event's row, in slices of about :data:`DECISIONS_PER_STATEMENT` decisions
(:func:`~radar.projections.decode.expand_decisions_sql`): the row an ``action.<decision>`` event
of that decision would have given, at the event's position.

A rebuild replaces the whole view in ONE transaction: the log is streamed into ``events`` (by
all of DuckDB's threads, one full row group each at a time), ``customers`` is aggregated once,
and the position is set at the commit. A crash rolls it back to the old view, which the next
catch-up brings up to date.
Either way ``customers`` equals the aggregation of ``events``, which is what a rebuild gives.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from radar.projections.customers import customer_rows_sql, customers_ddl
from radar.projections.decode import DECIDED, decode_sql, expand_decisions_sql, holds_decisions
from radar.projections.schema import POSITION_DDL, contacts_view_sql, events_ddl
from radar.projections.upcast import upcast_batch
from radar.store.base import READ_SCHEMA, EventStore

Fault = Callable[[str], None]
NAME = "view"
#: The customers with events at or after log position ``$1`` — those of the batch just written
#: to ``events`` (a table: the catch-up's prepared statements must not read the batch itself).
TOUCHED = "customer_id IN (SELECT customer_id FROM events WHERE position >= $1)"
#: A full recompute of ``customers`` aggregates one to two times this many customers at a time
#: (about half a GB of aggregate state each).
CUSTOMERS_PER_PARTITION = 100_000
#: Decisions of ``actions.decided`` events given their own rows by one statement (at most about).
DECISIONS_PER_STATEMENT = 500_000
#: DuckDB's row group size: a rebuild hands the log to DuckDB in record batches of this many rows.
ROW_GROUP_ROWS = 122_880


@dataclass(frozen=True)
class CatchUp:
    """What one catch-up applied."""

    events: int
    batches: int
    position: int
    seconds: float
    recomputed_all: bool

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def connect_view(
    path: Path | str | None,
    *,
    memory_limit: str = "1GB",
    threads: int = 2,
    read_only: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with radar's settings (UTC session time zone, bounded memory)."""
    con = duckdb.connect(
        str(path) if path else ":memory:",
        read_only=read_only,
        config={"threads": threads, "memory_limit": memory_limit},
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")  # never draw on the user's terminal
    return con


def schema_version() -> str:
    """A digest of the view's DDL: a view file built by another radar version is rebuilt."""
    ddl = "\n".join([events_ddl(), customers_ddl(), POSITION_DDL, contacts_view_sql()])
    return hashlib.sha256(ddl.encode()).hexdigest()[:16]


def _drop_view(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP VIEW IF EXISTS contacts")
    for table in ("events", "customers", "radar_position", "radar_dirty", "radar_schema"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the view's tables; a view of another schema version is dropped (it is derived
    data: the next catch-up rebuilds it from the log)."""
    con.execute("CREATE TABLE IF NOT EXISTS radar_schema (version VARCHAR)")
    found = con.execute("SELECT version FROM radar_schema").fetchall()
    if found and found[0][0] != schema_version():
        _drop_view(con)
        con.execute("CREATE TABLE radar_schema (version VARCHAR)")
    if not con.execute("SELECT count(*) FROM radar_schema").fetchall()[0][0]:
        con.execute("INSERT INTO radar_schema VALUES (?)", [schema_version()])
    con.execute(events_ddl())
    con.execute(customers_ddl())
    con.execute(POSITION_DDL)
    con.execute("CREATE TABLE IF NOT EXISTS radar_dirty (customer_id VARCHAR PRIMARY KEY)")
    con.execute(contacts_view_sql())
    con.execute(
        "INSERT INTO radar_position VALUES (?, 0, FALSE, now()) ON CONFLICT DO NOTHING", [NAME]
    )


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction: committed if the block succeeds, rolled back if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _cut(tables: Iterator[pa.Table], rows: int, rest: list[pa.Table]) -> Iterator[pa.RecordBatch]:
    """The rows of ``tables`` as record batches of exactly ``rows`` rows, in order; what is
    left after the last full batch ends up in ``rest``."""
    pending: list[pa.Table] = []
    count = 0
    for table in tables:
        pending.append(table)
        count += table.num_rows
        while count >= rows:
            joined = pa.concat_tables(pending)
            yield from joined.slice(0, rows).combine_chunks().to_batches()
            pending, count = [joined.slice(rows)], count - rows
    rest.extend(pending)


def _expand_decisions(con: duckdb.DuckDBPyConnection, first: int = 0) -> int:
    """Give the decisions of the ``actions.decided`` rows of ``events`` at or after position
    ``first`` their own rows (:func:`~radar.projections.decode.expand_decisions_sql`), a
    slice of rows of about :data:`DECISIONS_PER_STATEMENT` decisions at a time (so the
    memory a statement needs stays bounded however many decisions a batch holds). Returns
    how many decision rows were written."""
    sizes = con.execute(
        f"SELECT position, json_array_length(decisions, '$.customer_id') FROM events "
        f"WHERE type = '{DECIDED}' AND decisions IS NOT NULL AND position >= {int(first)} "
        "ORDER BY position"
    ).fetchall()
    written = 0
    start, count = None, 0
    for i, (position, n) in enumerate(sizes):
        start = position if start is None else start
        count += int(n or 0)
        if count >= DECISIONS_PER_STATEMENT or i == len(sizes) - 1:
            where = f"e.position BETWEEN {int(start)} AND {int(position)}"
            for statement in expand_decisions_sql(where):
                con.execute(statement)
            written += count
            start, count = None, 0
    return written


class _LogStream:
    """Batches of stored events as two Arrow streams that DuckDB statements read to their end,
    counting what went through (and keeping an error of the reader, which DuckDB would only
    report as text).

    The first stream is the log cut into record batches of exactly :data:`ROW_GROUP_ROWS` rows.
    DuckDB's threads each take whole record batches from a stream, so every thread appends
    full row groups, each a contiguous range of log positions: the insert runs on all cores
    and the commit writes the row groups as they are. The second stream is the rows left after
    the last full batch, read by a second statement once the first has ended, so that the one
    partial row group is the table's last — a partial row group in the middle (a thread's tail)
    would make the next checkpoint merge and compress again every row group after it.
    """

    def __init__(self, batches: Generator[pa.Table]) -> None:
        self._batches = batches
        self.events = self.batches = self.last = 0
        self._error: BaseException | None = None
        self._rest: list[pa.Table] = []

    def _counted(self) -> Iterator[pa.Table]:
        """The batches read, counted."""
        for batch in self._batches:
            self.events += batch.num_rows
            self.batches += 1
            self.last = int(batch.column("position")[-1].as_py())
            yield batch

    def _row_groups(self) -> Iterator[pa.RecordBatch]:
        """The full row groups of the log, in log order (keeping an error of the reader)."""
        try:
            yield from _cut(self._counted(), ROW_GROUP_ROWS, self._rest)
        except BaseException as e:
            self._error = e
            raise

    def _remainder(self) -> Iterator[pa.RecordBatch]:
        """The rows after the last full row group (once :meth:`_row_groups` has ended)."""
        for table in self._rest:
            yield from table.to_batches()

    @contextmanager
    def registered(self, con: duckdb.DuckDBPyConnection, name: str) -> Iterator[None]:
        """The two streams as the relations ``name`` and ``name_rest`` of ``con`` inside the
        block (registered outside any transaction: an aborted one could not drop them). An
        error of the reader that aborts a statement comes out of the block as itself."""
        streams = {name: self._row_groups(), f"{name}_rest": self._remainder()}
        for relation, batches in streams.items():
            con.register(relation, pa.RecordBatchReader.from_batches(READ_SCHEMA, batches))
        try:
            yield
        except duckdb.Error:
            if self._error is not None:
                raise self._error from None
            raise
        finally:
            for relation in streams:
                con.unregister(relation)
            self._batches.close()  # stops the read-ahead thread at once


class Projector:
    """Keeps one DuckDB view file caught up with one event store."""

    def __init__(
        self,
        store: EventStore,
        con: duckdb.DuckDBPyConnection,
        *,
        batch_size: int = 200_000,
        incremental_limit: int = 50_000,
    ) -> None:
        self.store = store
        self.con = con
        self.batch_size = batch_size
        self.incremental_limit = incremental_limit
        self._decode = decode_sql("batch")
        self._lock = threading.Lock()
        self._prepared: set[str] = set()
        create_schema(con)

    # -- state --------------------------------------------------------------------------------

    def position(self) -> int:
        return self._state()[0]

    def _dirty(self) -> bool:
        return self._state()[1]

    def _state(self) -> tuple[int, bool]:
        """The tracked position and whether ``customers`` awaits a recompute (one query)."""
        rows = self.con.execute(
            "SELECT position, customers_dirty FROM radar_position WHERE projection = ?", [NAME]
        ).fetchall()
        return (int(rows[0][0]), bool(rows[0][1])) if rows else (0, False)

    # -- catch-up -----------------------------------------------------------------------------

    def catch_up(self, *, fault: Fault | None = None, upto: int | None = None) -> CatchUp:
        """Apply every stored event after the tracked position (up to ``upto`` if given)."""
        with self._lock:
            return self._catch_up(fault, upto)

    def _catch_up(self, fault: Fault | None, upto: int | None) -> CatchUp:
        started = time.perf_counter()
        position, dirty = self._state()
        head = self.store.max_position() if upto is None else upto
        bulk = head - position > self.incremental_limit or dirty
        events = batches = 0
        for batch in self._batches(position, head):
            position = int(batch.column("position")[-1].as_py())
            bulk = self._apply(batch, position, bulk, fault) or bulk
            events += batch.num_rows
            batches += 1
            if fault:
                fault("between_batches")
        # a small catch-up neither found customers dirty nor left them so
        recomputed = bulk and self._dirty()
        if recomputed:
            self._recompute_customers(fault)
        return CatchUp(events, batches, position, time.perf_counter() - started, recomputed)

    def _batches(self, position: int, head: int, size: int = 0) -> Generator[pa.Table]:
        """The stored events after ``position`` up to ``head``, in batches of ``size`` events
        (default: the batch size); the next batch is read in a background thread while the
        caller applies this one."""
        if head <= position:
            return  # nothing to read (the live loop polls several times a second)
        size = size or self.batch_size
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future[pa.Table] | None = pool.submit(self._read, position, head, size)
            while pending is not None:
                batch = pending.result()
                if batch.num_rows == 0:
                    return
                last = int(batch.column("position")[-1].as_py())
                pending = pool.submit(self._read, last, head, size) if last < head else None
                yield batch

    def _read(self, after: int, head: int, size: int) -> pa.Table:
        """The next ``size`` events after ``after`` up to ``head`` (paged by count, so gaps in
        positions — e.g. a rolled-back PostgreSQL sequence value — never stop the catch-up;
        asking for no more than there can be: the store sizes its Arrow batches to that)."""
        batch = self.store.read_after(after, min(size, head - after))
        if batch.num_rows and batch.column("position")[-1].as_py() > head:
            batch = batch.filter(pc.less_equal(batch.column("position"), head))
        return upcast_batch(batch)

    def _apply(self, batch: pa.Table, last: int, bulk: bool, fault: Fault | None) -> bool:
        """Apply one batch in one transaction; with ``bulk`` (or when the batch's decisions
        are more than the incremental limit) only mark its customers dirty. Returns whether
        it did so."""
        con = self.con
        con.register("batch", batch)
        try:
            first = int(pc.min(batch.column("position")).as_py())
            with _transaction(con):
                con.execute(f"INSERT INTO events {self._decode}")
                decided = _expand_decisions(con, first) if holds_decisions(batch) else 0
                bulk = bulk or decided > self.incremental_limit
                if fault:
                    fault("inside_batch")
                if not bulk:
                    self._refresh_customers(first)
                else:  # remember who to recompute once the backlog is applied
                    con.execute(
                        "INSERT INTO radar_dirty SELECT DISTINCT stream FROM batch "
                        "ON CONFLICT DO NOTHING"
                    )
                    if decided:  # the decisions' customers are in no stream of the batch
                        con.execute(
                            "INSERT INTO radar_dirty SELECT DISTINCT customer_id FROM events "
                            f"WHERE position >= {first} AND customer_id IS NOT NULL "
                            "ON CONFLICT DO NOTHING"
                        )
                con.execute(
                    "UPDATE radar_position SET position = ?, updated_at = now(), "
                    "customers_dirty = customers_dirty OR ? WHERE projection = ?",
                    [last, bulk, NAME],
                )
        finally:
            con.unregister("batch")
        return bulk

    def _refresh_customers(self, first: int) -> None:
        """Recompute the rows of the customers with events at or after log position ``first``
        (inside the batch's transaction, once the batch is in ``events``)."""
        self._execute("radar_delete_touched", f"DELETE FROM customers WHERE {TOUCHED}", first)
        insert = f"INSERT INTO customers {customer_rows_sql(where=TOUCHED)}"
        self._execute("radar_insert_touched", insert, first)

    def _execute(self, name: str, sql: str, *args: int) -> None:
        """Run ``sql`` with the integer arguments ``$1``, ``$2``… as the prepared statement
        ``name`` of the view connection (prepared at its first use).

        DuckDB binds and optimizes a prepared statement again at every EXECUTE, but it no longer
        parses it: about a quarter of the cost of the customers statement of a small batch.
        ``sql`` must read tables only, never a relation registered from Python, which it might
        read as it was when the statement was prepared.
        """
        if name not in self._prepared:
            self.con.execute(f"PREPARE {name} AS {sql}")
            self._prepared.add(name)
        arguments = f"({', '.join(str(int(a)) for a in args)})" if args else ""
        self.con.execute(f"EXECUTE {name}{arguments}")

    def _recompute_customers(self, fault: Fault | None = None) -> None:
        """Recompute the customers touched by the backlog (all of them after a rebuild)."""
        con = self.con
        everyone = not con.execute("SELECT count(*) FROM customers").fetchall()[0][0]
        with _transaction(con):
            if everyone:
                self._insert_all_customers()
            else:
                touched = "customer_id IN (SELECT customer_id FROM radar_dirty)"
                con.execute(f"DELETE FROM customers WHERE {touched}")
                dirty = int(con.execute("SELECT count(*) FROM radar_dirty").fetchall()[0][0])
                self._insert_customers(dirty, touched)
            if fault:
                fault("inside_recompute")
            con.execute("DELETE FROM radar_dirty")
            con.execute(
                "UPDATE radar_position SET customers_dirty = FALSE WHERE projection = ?", [NAME]
            )

    def _insert_all_customers(self) -> None:
        """Fill the (empty) customers table from all of ``events``: one hash partition of the
        customers at a time, so the memory of the aggregation stays bounded however many
        customers there are. The partitions are as large as that allows: each one scans all
        of ``events`` again."""
        sql = "SELECT approx_count_distinct(customer_id) FROM events"
        self._insert_customers(int(self.con.execute(sql).fetchall()[0][0]))

    def _insert_customers(self, customers: int, where: str = "TRUE") -> None:
        """Insert the rows of the (about ``customers``) customers matching ``where``, one hash
        partition of them at a time when they are many (bounded aggregation memory)."""
        parts = max(1, customers // CUSTOMERS_PER_PARTITION)
        for k in range(parts):
            part = f"hash(customer_id) % {parts} = {k}" if parts > 1 else "TRUE"
            self.con.execute(
                f"INSERT INTO customers {customer_rows_sql(where=f'({where}) AND {part}')}"
            )

    def rebuild(self, *, fault: Fault | None = None) -> CatchUp:
        """Replace the view by a replay of the whole log, in ONE transaction.

        The log is streamed into ``events`` by one statement in full row groups, and a second
        one appends the rest (no commit, position update or dirty mark per batch); then
        ``customers`` is computed once. Until the commit, readers see the old view; a crash
        rolls everything back to it, and the next catch-up brings it up to date — which gives
        what a rebuild gives.
        """
        with self._lock:
            started = time.perf_counter()
            con = self.con
            # batches of at most a row group: DuckDB's threads start on the first ones sooner
            size = min(self.batch_size, ROW_GROUP_ROWS)
            log = _LogStream(self._batches(0, self.store.max_position(), size))
            with log.registered(con, "log"), _transaction(con):
                self._replay(log, fault)
            seconds = time.perf_counter() - started
            return CatchUp(log.events, log.batches, log.last, seconds, True)

    def _replay(self, log: _LogStream, fault: Fault | None) -> None:
        """Inside the rebuild's transaction: an empty view, filled from ``log`` (registered as
        the relations ``log`` and ``log_rest``)."""
        con = self.con
        _drop_view(con)
        create_schema(con)
        con.execute(f"INSERT INTO events {decode_sql('log')}")
        con.execute(f"INSERT INTO events {decode_sql('log_rest')}")
        _expand_decisions(con)
        if fault:
            fault("inside_batch")
        self._insert_all_customers()
        if fault:
            fault("inside_recompute")
        con.execute(
            "UPDATE radar_position SET position = ?, updated_at = now() WHERE projection = ?",
            [log.last, NAME],
        )

    def follow(
        self,
        stop: threading.Event,
        interval: float = 0.2,
        on_batch: Callable[[CatchUp], None] | None = None,
    ) -> None:
        """Keep catching up until ``stop`` is set (polling the store every ``interval`` s)."""
        while not stop.is_set():
            result = self.catch_up()
            if result.events and on_batch:
                on_batch(result)
            if not result.events:
                stop.wait(interval)
