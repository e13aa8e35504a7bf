"""``radar verify``: replay the log and compare, check the tamper-evidence chain, audit consent.

* :func:`replay_check` replays the log up to the live view's position with the projector's own
  SQL (:func:`decode_sql`, :func:`expand_decisions_sql`, :func:`customer_rows_sql`) into scratch
  (TEMP tables of a separate connection to the view's DuckDB instance) and compares table by
  table with the live view: row counts and the differing keys. ``events`` is compared by
  ``position``, batch by batch as the log is read: the number of rows at a position (an
  ``actions.decided`` event's decisions share its position) and the sum of their hashes over
  every column, so the scratch keeps only the log's rows that differ (the replayed events are
  the live rows that matched plus those); ``customers`` is recomputed from the replayed events
  and compared by ``customer_id`` column by column (DOUBLEs within a relative 1e-9, sums may be
  added up in another order); ``radar_position`` by its position. This is what a full rebuild
  into a scratch file would find, in under half the time (no second copy of the events table is
  written). Live rows whose hashes add up to the log's without being equal to them would go
  unnoticed (a 64-bit coincidence); the log itself is protected by the chain.
* :func:`check_chain` verifies the hash chain of :mod:`radar.audit.chain` over the event store
  (SQLite file or PostgreSQL); :func:`seal_log` extends it over the rows appended since.
* :func:`verify_radar` runs the replay and the chain verification side by side (the chain on a
  worker thread, which extends the seal when it verified clean — so every verify leaves the log
  sealed to its end), then the consent audit of :mod:`radar.audit.consent`.
  :attr:`AuditReport.ok` is False when anything was found.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from radar.audit.chain import (
    PostgresChainReader,
    SealResult,
    SQLiteChainReader,
    VerifyReport,
    seal,
    verify,
)
from radar.audit.consent import ConsentReport, consent_violations
from radar.audit.history import require_store
from radar.domain.errors import ConfigurationError
from radar.engine import Engine
from radar.projections.customers import STORED_COLUMNS, customer_rows_sql
from radar.projections.decode import decode_sql, expand_decisions_sql, holds_decisions
from radar.projections.schema import event_columns

DOUBLE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class TableDiff:
    """How one table of the live view differs from the replay.

    ``missing``: keys in the replay but not in the live view; ``extra``: the other way round;
    ``changed``: keys in both with different values. ``keys`` samples them (kind, key, columns).
    """

    table: str
    live_rows: int
    replay_rows: int
    missing: int = 0
    extra: int = 0
    changed: int = 0
    keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.live_rows == self.replay_rows and not (
            self.missing or self.extra or self.changed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "ok": self.ok,
            "live_rows": self.live_rows,
            "replay_rows": self.replay_rows,
            "missing": self.missing,
            "extra": self.extra,
            "changed": self.changed,
            "keys": self.keys,
        }


@dataclass
class ReplayReport:
    """The replay's comparison with the live view at ``position``."""

    position: int
    tables: list[TableDiff] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and all(t.ok for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "position": self.position,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "tables": [t.to_dict() for t in self.tables],
        }


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def replay_check(engine: Engine, *, sample: int = 20, batch_size: int = 200_000) -> ReplayReport:
    """Replay the log up to the live view's position and compare it with the live view."""
    require_store(engine)
    started = time.perf_counter()
    engine.project()
    live = engine.view
    position = engine.projector.position()
    catalog = _q(live.execute("SELECT current_database()").fetchall()[0][0])
    report = ReplayReport(position)
    cur = live.cursor()
    try:
        cur.execute("SET TimeZone = 'UTC'")
        report.tables = _Replay(engine, cur, f"{catalog}.main", position, sample).run(batch_size)
    except duckdb.Error as e:
        report.error = f"the replay could not be compared: {e}"
    except Exception as e:  # a log the projector cannot read is itself a finding
        report.error = f"the log could not be replayed: {type(e).__name__}: {e}"
    finally:
        cur.close()
    report.seconds = time.perf_counter() - started
    return report


class _Replay:
    """One replay: decode the log batch by batch, compare, then recompute ``customers``.

    Each batch of stored rows is decoded exactly as the projector decodes it, the decisions of
    its ``actions.decided`` events expanded into rows of their own at the event's position
    (:func:`expand_decisions_sql`), and compared with the live rows position by position: how
    many rows stand at the position and the sum of their hashes (over every column). A sum, so
    that the order of the rows that share a position does not matter while a row missing,
    changed or stored twice does. The log's rows at the positions that differ are kept
    (``replay_fix``) and the live positions that differ are marked (``replay_bad``). The
    replayed events are thus the live rows that matched plus the log's own rows where they did
    not — the events table a rebuild would write — and ``customers`` is recomputed from them
    with the projector's own SQL and compared with the live table.
    """

    def __init__(
        self,
        engine: Engine,
        con: duckdb.DuckDBPyConnection,
        live: str,
        head: int,
        sample: int,
    ) -> None:
        self.engine = engine
        self.con = con
        self.live = live
        self.head = head
        self.sample = sample
        self.cols = ", ".join(_q(c) for c in event_columns())
        self.decode = decode_sql("batch")
        self.found: list[tuple[str, int | None]] = []  # (kind, position)

    def run(self, batch_size: int) -> list[TableDiff]:
        con = self.con
        for scratch in ("replay_fix", "replay_batch"):
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {scratch} AS "
                f"SELECT * FROM {self.live}.events LIMIT 0"
            )
        con.execute("CREATE OR REPLACE TEMP TABLE replay_bad (position BIGINT)")
        self._outside()
        replayed = 0
        with ThreadPoolExecutor(max_workers=1) as pool:

            def read(after: int) -> pa.Table:
                return self.engine.store.read_range(after, min(self.head, after + batch_size))

            pending: Future[pa.Table] | None = pool.submit(read, 0) if self.head > 0 else None
            after = 0
            while pending is not None:
                batch = pending.result()
                if batch.num_rows == 0:
                    break
                last = int(batch.column("position")[-1].as_py())
                pending = pool.submit(read, last) if last < self.head else None
                replayed += self._batch(batch, after, last)
                after = last
        if after < self.head:  # the log ends before the view's position: rows were removed
            tail = self.con.execute(
                f"SELECT DISTINCT position FROM {self.live}.events "
                f"WHERE position > {after} AND position <= {self.head} ORDER BY position"
            ).fetchall()
            self.found += [("extra", int(k)) for (k,) in tail]
            self.con.register("replay_tail", pa.table({"position": [int(k) for (k,) in tail]}))
            self.con.execute("INSERT INTO replay_bad SELECT position FROM replay_tail")
            self.con.unregister("replay_tail")
        live_rows = _count(con, f"{self.live}.events")
        events = self._events_diff(live_rows, replayed)
        return [events, self._customers(), self._position()]

    def _replayed(self, batch: pa.Table) -> tuple[str, int]:
        """The view rows the projector makes of ``batch`` (registered as ``batch``): a relation
        to select from and how many rows it has. The decoded rows themselves, or — when the
        batch holds ``actions.decided`` events — the scratch table ``replay_batch`` of the
        decoded rows with their decisions expanded."""
        if not holds_decisions(batch):
            return f"({self.decode})", batch.num_rows
        con = self.con
        con.execute("DELETE FROM replay_batch")
        con.execute(f"INSERT INTO replay_batch {self.decode}")
        for statement in expand_decisions_sql("TRUE", "replay_batch"):
            con.execute(statement)
        return "replay_batch", _count(con, "replay_batch")

    def _batch(self, batch: pa.Table, after: int, last: int) -> int:
        """Compare the replay of ``batch`` with the live rows at positions in (``after``,
        ``last``], keep what differs; the number of rows replayed."""
        con = self.con
        con.register("batch", batch)
        try:
            source, replayed = self._replayed(batch)
            per_position = f"position AS k, count(*) AS n, sum(hash({self.cols})) AS h"
            rows = con.execute(
                f"""
                WITH r AS (SELECT {per_position} FROM {source} GROUP BY position),
                l AS (SELECT {per_position} FROM {self.live}.events
                      WHERE position > {after} AND position <= {last} GROUP BY position)
                SELECT CASE WHEN l.k IS NULL THEN 'missing' WHEN r.k IS NULL THEN 'extra'
                            ELSE 'changed' END, coalesce(l.k, r.k)
                FROM l FULL OUTER JOIN r ON l.k = r.k
                WHERE l.n IS DISTINCT FROM r.n OR l.h IS DISTINCT FROM r.h
                """
            ).fetchall()
            self.found += [(kind, int(k)) for kind, k in rows]
            if rows:
                marked = pa.table({"position": pa.array([int(k) for _, k in rows], pa.int64())})
                con.register("replay_marked", marked)
                con.execute("INSERT INTO replay_bad SELECT position FROM replay_marked")
                con.execute(
                    f"INSERT INTO replay_fix SELECT * FROM {source} "
                    "WHERE position IN (SELECT position FROM replay_marked)"
                )
                con.unregister("replay_marked")
            return replayed
        finally:
            con.unregister("batch")

    def _outside(self) -> None:
        """Live rows the log cannot have produced: at positions outside (0, head]."""
        rows = self.con.execute(
            f"SELECT DISTINCT position FROM {self.live}.events "
            f"WHERE position IS NULL OR position < 1 OR position > {self.head} ORDER BY position"
        ).fetchall()
        self.found += [("extra", None if k is None else int(k)) for (k,) in rows]

    def _events_diff(self, live_rows: int, replay_rows: int) -> TableDiff:
        by_kind: dict[str, int] = {}
        keys: dict[str, list[dict[str, Any]]] = {}
        for kind, k in sorted(self.found, key=lambda f: (f[0], f[1] or 0)):
            by_kind[kind] = by_kind.get(kind, 0) + 1
            listed = keys.setdefault(kind, [])
            if len(listed) < self.sample:
                listed.append({"kind": kind, "key": k, "columns": []})
        return TableDiff(
            "events",
            live_rows=live_rows,
            replay_rows=replay_rows,
            missing=by_kind.get("missing", 0),
            extra=by_kind.get("extra", 0),
            changed=by_kind.get("changed", 0),
            keys=[k for kind in sorted(keys) for k in keys[kind]],
        )

    def _customers(self) -> TableDiff:
        con = self.con
        con.execute(
            "CREATE OR REPLACE TEMP VIEW replay_events AS "
            f"SELECT e.* FROM {self.live}.events e ANTI JOIN replay_bad b "
            f"ON e.position = b.position WHERE e.position BETWEEN 1 AND {self.head} "
            "UNION ALL SELECT * FROM replay_fix"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE replay_customers AS " + customer_rows_sql("replay_events")
        )
        ctypes = dict(
            con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE table_name = 'replay_customers' AND database_name = 'temp'"
            ).fetchall()
        )
        conds = [_differs(c, ctypes.get(c, "")) for c in STORED_COLUMNS if c != "customer_id"]
        names = ", ".join(f"CASE WHEN {cond} THEN '{c}' END" for c, cond in conds)
        cols = ", ".join(_q(c) for c in STORED_COLUMNS)
        return _diff(
            con,
            "customers",
            f"SELECT customer_id AS k, {cols} FROM {self.live}.customers",
            f"SELECT customer_id AS k, {cols} FROM replay_customers",
            " OR ".join(f"({cond})" for _, cond in conds),
            f"[x FOR x IN [{names}] IF x IS NOT NULL]",
            (_count(con, f"{self.live}.customers"), _count(con, "replay_customers")),
            self.sample,
        )

    def _position(self) -> TableDiff:
        rows = self.con.execute(
            f"SELECT projection, position FROM {self.live}.radar_position WHERE projection = 'view'"
        ).fetchall()
        changed = [{"kind": "changed", "key": "view", "columns": ["position"]}]
        ok = len(rows) == 1 and rows[0][1] == self.head
        return TableDiff(
            "radar_position", len(rows), 1, changed=0 if ok else 1, keys=[] if ok else changed
        )


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _differs(column: str, data_type: str) -> tuple[str, str]:
    a, b = f"l.{_q(column)}", f"r.{_q(column)}"
    if data_type == "DOUBLE":
        return column, (
            f"{a} IS DISTINCT FROM {b} AND NOT coalesce(abs({a} - {b}) <= "
            f"{DOUBLE_TOLERANCE} * greatest(1.0, abs({a}), abs({b})), FALSE)"
        )
    return column, f"{a} IS DISTINCT FROM {b}"


def _diff(
    con: duckdb.DuckDBPyConnection,
    table: str,
    live_sql: str,
    replay_sql: str,
    changed: str,
    columns: str,
    counts: tuple[int, int],
    sample: int,
) -> TableDiff:
    rows = con.execute(
        f"""
        WITH l AS ({live_sql}), r AS ({replay_sql}),
        d AS (
            SELECT CAST(coalesce(l.k, r.k) AS VARCHAR) AS k,
                   CASE WHEN l.k IS NULL THEN 'missing' WHEN r.k IS NULL THEN 'extra'
                        ELSE 'changed' END AS kind,
                   CASE WHEN l.k IS NULL OR r.k IS NULL THEN []::VARCHAR[]
                        ELSE {columns} END AS columns
            FROM l FULL OUTER JOIN r ON l.k = r.k
            WHERE l.k IS NULL OR r.k IS NULL OR ({changed})
        )
        SELECT kind, count(*) OVER (PARTITION BY kind) AS n, k, columns FROM d
        QUALIFY row_number() OVER (PARTITION BY kind ORDER BY k) <= {int(sample)}
        ORDER BY kind, k
        """
    ).fetchall()
    counts_by_kind = {kind: int(n) for kind, n, _, _ in rows}
    keys = [{"kind": kind, "key": k, "columns": list(cols)} for kind, _, k, cols in rows]
    return TableDiff(
        table,
        live_rows=counts[0],
        replay_rows=counts[1],
        missing=counts_by_kind.get("missing", 0),
        extra=counts_by_kind.get("extra", 0),
        changed=counts_by_kind.get("changed", 0),
        keys=keys,
    )


# -- the tamper-evidence chain ------------------------------------------------------------


def chain_store(engine: Engine) -> SQLiteChainReader | PostgresChainReader:
    """The chain reader/checkpoint store over the engine's event store."""
    require_store(engine)
    url = engine.settings.store_url
    if url.startswith("sqlite:///"):
        return SQLiteChainReader(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        store: Any = engine.store
        table = f"{getattr(store, 'schema', 'public')}.{getattr(store, 'table', 'stored_events')}"
        return PostgresChainReader(url, table=table)
    raise ConfigurationError(f"no tamper-evidence chain for the event store {url!r}")


def check_chain(engine: Engine, *, anchor: str | None = None) -> VerifyReport:
    """Verify every sealed row of the log against the chain (see :mod:`radar.audit.chain`)."""
    with chain_store(engine) as reader:
        return verify(reader, anchor=anchor)


def seal_log(engine: Engine, *, every: int = 10_000) -> SealResult:
    """Extend the chain over the rows appended since the last seal."""
    with chain_store(engine) as reader:
        return seal(reader, every=every)


# -- everything ---------------------------------------------------------------------------


@dataclass
class AuditReport:
    """What ``radar verify`` found: replay, chain, consent; and the seal it added."""

    replay: ReplayReport
    chain: VerifyReport
    consent: ConsentReport
    sealed: SealResult | None = None

    @property
    def ok(self) -> bool:
        return self.replay.ok and self.chain.ok and self.consent.ok

    def chain_head(self) -> str | None:
        """The newest chain hash after this verify (record it outside radar as an anchor)."""
        return self.sealed.head if self.sealed is not None else self.chain.head

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "replay": self.replay.to_dict(),
            "chain": self.chain.to_dict(),
            "consent": self.consent.to_dict(),
            "sealed": self.sealed.to_dict() if self.sealed else None,
            "chain_head": self.chain_head(),
        }


def verify_radar(
    engine: Engine, *, anchor: str | None = None, extend_seal: bool = True
) -> AuditReport:
    """Run every check; then, if the chain verified clean, extend the seal to the log's end.

    The chain is verified (then extended) on a worker thread while the replay runs (SQLite
    reads and hashing there, DuckDB here, mostly outside the GIL), so both cores are used. The
    seal covers the log up to its end when the seal ran, which may be beyond the replayed
    position if events are appended meanwhile: the seal is about the log, not the view.
    """
    require_store(engine)

    def chain_then_seal() -> tuple[VerifyReport, SealResult | None]:
        chain = check_chain(engine, anchor=anchor)
        return chain, (seal_log(engine) if extend_seal and chain.ok else None)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="radar-verify") as pool:
        chain_future = pool.submit(chain_then_seal)
        replay = replay_check(engine)
        chain, sealed = chain_future.result()
    consent = consent_violations(engine, catch_up=False)
    return AuditReport(replay, chain, consent, sealed)
