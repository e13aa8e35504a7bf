"""The action queue: the pull side of phase 4, with leases and acknowledgements.

Actions are the ``action.planned`` events of the log (found in the view's ``events`` table). The
queue copies them into a small table with lease state — in ``<data>/actions.sqlite``, or in the
PostgreSQL database when the event store is PostgreSQL, so that several service processes share
one queue. Claiming is one atomic statement::

    UPDATE radar_action_queue SET lease_token = …, lease_expires = now + ttl, attempts + 1
    WHERE action_id IN (SELECT … WHERE channel = ? AND settled_at IS NULL
                        AND lease_expires < now ORDER BY position LIMIT n)   RETURNING …

so two workers never hold the same action, and an action whose worker died (its lease ran out)
is handed out again. A worker acknowledges by reporting the outcome: the service first extends
the lease it still holds (``hold``), appends the outcome event, then marks the action ``settled``.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUE_FILE = "actions.sqlite"

DDL = (
    "CREATE TABLE IF NOT EXISTS radar_action_queue ("
    "action_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, channel TEXT NOT NULL, "
    "position BIGINT NOT NULL, rule_id TEXT, campaign_id TEXT, offer TEXT, template TEXT, "
    "planned_at TEXT, lease_token TEXT, lease_worker TEXT, "
    "lease_expires DOUBLE PRECISION NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
    "settled_at DOUBLE PRECISION, outcome_event_id TEXT)",
    "CREATE INDEX IF NOT EXISTS radar_action_queue_open "
    "ON radar_action_queue (channel, settled_at, position)",
    "CREATE TABLE IF NOT EXISTS radar_action_queue_sync ("
    "name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
)
COLUMNS = (
    "action_id",
    "customer_id",
    "channel",
    "position",
    "rule_id",
    "campaign_id",
    "offer",
    "template",
    "planned_at",
)
_RETURNING = ", ".join((*COLUMNS, "attempts", "lease_token", "lease_expires", "settled_at"))


@dataclass(frozen=True)
class QueuedAction:
    """One action as the queue knows it."""

    action_id: str
    customer_id: str
    channel: str
    position: int
    rule_id: str | None
    campaign_id: str | None
    offer: str | None
    template: str | None
    planned_at: str | None
    attempts: int
    lease_token: str | None
    lease_expires: float
    settled_at: float | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> QueuedAction:
        return cls(
            str(row[0]),
            str(row[1]),
            str(row[2]),
            int(row[3]),
            row[4],
            row[5],
            row[6],
            row[7],
            row[8],
            int(row[9]),
            row[10],
            float(row[11]),
            None if row[12] is None else float(row[12]),
        )

    def to_dict(self, *, lease: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action_id": self.action_id,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "position": self.position,
            "rule_id": self.rule_id,
            "campaign_id": self.campaign_id,
            "offer": self.offer,
            "template": self.template,
            "planned_at": self.planned_at,
            "attempts": self.attempts,
            "settled": self.settled_at is not None,
        }
        if lease:
            out["lease"] = self.lease_token
            out["lease_expires"] = self.lease_expires
        return out


class ActionQueue:
    """Lease-based pull queue over a DB-API connection (sqlite3 or psycopg). Thread-safe."""

    def __init__(self, conn: Any, *, placeholder: str = "?", skip_locked: bool = False) -> None:
        self._conn = conn
        self._ph = placeholder
        self._skip_locked = skip_locked
        self._lock = threading.Lock()
        for statement in DDL:
            self._run(statement)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def sqlite(cls, path: Path | str) -> ActionQueue:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=60000")
        return cls(conn)

    @classmethod
    def postgres(cls, url: str) -> ActionQueue:
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        return cls(conn, placeholder="%s", skip_locked=True)

    @classmethod
    def for_store(cls, store_url: str, data_dir: Path) -> ActionQueue:
        """The queue beside the event store: PostgreSQL when the store is, else SQLite."""
        if store_url.startswith(("postgresql://", "postgres://")):
            return cls.postgres(store_url)
        return cls.sqlite(data_dir / QUEUE_FILE)

    # -- plumbing -----------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self._ph == "?" else sql.replace("?", self._ph)

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute(self._sql(sql), tuple(params))
                rows = cur.fetchall() if cur.description else []
            finally:
                cur.close()
        return [tuple(r) for r in rows]

    # -- filling ------------------------------------------------------------------------------

    def synced_position(self) -> int:
        rows = self._run("SELECT position FROM radar_action_queue_sync WHERE name = 'view'")
        return int(rows[0][0]) if rows else 0

    def add(self, rows: Sequence[Sequence[Any]], upto: int) -> int:
        """Add planned actions (tuples in :data:`COLUMNS` order; already known ones are kept as
        they are) and record that the log was scanned up to ``upto``. Returns rows offered."""
        marks = ", ".join("?" for _ in COLUMNS)
        insert = self._sql(
            f"INSERT INTO radar_action_queue ({', '.join(COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (action_id) DO NOTHING"
        )
        upsert = self._sql(
            "INSERT INTO radar_action_queue_sync (name, position) VALUES ('view', ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position "
            "WHERE excluded.position > radar_action_queue_sync.position"
        )
        with self._lock:
            cur = self._conn.cursor()
            try:
                if self._ph == "?":
                    cur.execute("BEGIN IMMEDIATE")
                    try:
                        if rows:
                            cur.executemany(insert, [tuple(r) for r in rows])
                        cur.execute(upsert, (upto,))
                        cur.execute("COMMIT")
                    except BaseException:
                        cur.execute("ROLLBACK")
                        raise
                else:
                    with self._conn.transaction():
                        if rows:
                            cur.executemany(insert, [tuple(r) for r in rows])
                        cur.execute(upsert, (upto,))
            finally:
                cur.close()
        return len(rows)

    # -- leases -------------------------------------------------------------------------------

    def claim(
        self, channel: str, *, limit: int, lease_seconds: float, worker: str = ""
    ) -> list[QueuedAction]:
        """Lease up to ``limit`` open actions of ``channel`` (oldest first) to one worker."""
        now = time.time()
        token = secrets.token_urlsafe(16)
        lock = " FOR UPDATE SKIP LOCKED" if self._skip_locked else ""
        rows = self._run(
            "UPDATE radar_action_queue SET lease_token = ?, lease_worker = ?, "
            "lease_expires = ?, attempts = attempts + 1 "
            "WHERE action_id IN (SELECT action_id FROM radar_action_queue WHERE channel = ? "
            "AND settled_at IS NULL AND lease_expires < ? ORDER BY position LIMIT ?"
            f"{lock}) AND settled_at IS NULL AND lease_expires < ? RETURNING {_RETURNING}",
            (token, worker, now + lease_seconds, channel, now, limit, now),
        )
        return sorted((QueuedAction.from_row(r) for r in rows), key=lambda a: a.position)

    def get(self, action_id: str) -> QueuedAction | None:
        rows = self._run(
            f"SELECT {_RETURNING} FROM radar_action_queue WHERE action_id = ?", (action_id,)
        )
        return QueuedAction.from_row(rows[0]) if rows else None

    def hold(self, action_id: str, token: str, seconds: float) -> bool:
        """Extend the lease ``token`` still holds on an open action (False if it lost it)."""
        rows = self._run(
            "UPDATE radar_action_queue SET lease_expires = ? WHERE action_id = ? "
            "AND lease_token = ? AND settled_at IS NULL RETURNING action_id",
            (time.time() + seconds, action_id, token),
        )
        return bool(rows)

    def settle(self, action_id: str, token: str, outcome_event_id: str) -> bool:
        """Mark the action carried out (its outcome event is in the log)."""
        rows = self._run(
            "UPDATE radar_action_queue SET settled_at = ?, outcome_event_id = ? "
            "WHERE action_id = ? AND lease_token = ? AND settled_at IS NULL RETURNING action_id",
            (time.time(), outcome_event_id, action_id, token),
        )
        return bool(rows)

    def release(self, action_id: str, token: str) -> bool:
        """Give a leased action back at once (the worker could not carry it out now)."""
        rows = self._run(
            "UPDATE radar_action_queue SET lease_expires = 0 WHERE action_id = ? "
            "AND lease_token = ? AND settled_at IS NULL RETURNING action_id",
            (action_id, token),
        )
        return bool(rows)

    def counts(self) -> dict[str, int]:
        """Open (not settled), leased (open with a live lease) and settled actions."""
        now = time.time()
        row = self._run(
            "SELECT count(*) FILTER (WHERE settled_at IS NULL), "
            "count(*) FILTER (WHERE settled_at IS NULL AND lease_expires >= ?), "
            "count(*) FILTER (WHERE settled_at IS NOT NULL) FROM radar_action_queue",
            (now,),
        )[0]
        return {"open": int(row[0] or 0), "leased": int(row[1] or 0), "settled": int(row[2] or 0)}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
