"""PostgreSQL backend of the tamper-evidence chain (psycopg 3).

The position of a row is its ``notification_id``. eventsourcing's PostgreSQL recorder takes a
table lock while inserting, so notification ids become visible in order and a seal never misses
a row that commits later with a lower id (do not enable ``POSTGRES_ENABLE_DB_FUNCTIONS``, see
DESIGN.md). ``originator_id`` may be ``uuid`` or ``text``: it is read as text, as SQLite stores
it, so the same events hash the same in both stores. Checkpoints live in a table in the same
database (default ``radar_chain_checkpoints``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from radar.audit.chain_codec import rows_to_batch
from radar.audit.chain_sqlite import check_identifier
from radar.audit.chain_types import (
    CHECKPOINT_PAGE,
    CHECKPOINTS_TABLE,
    Checkpoint,
    RowChunk,
    paged_checkpoints,
)

_CP_COLUMNS = (
    "seq, position, prev_position, count, segment_count, chain_hash, sealed_at, positions, "
    "digests, scheme"
)


def _checkpoint(row: tuple[Any, ...]) -> Checkpoint:
    return Checkpoint(
        seq=int(row[0]),
        position=int(row[1]),
        prev_position=None if row[2] is None else int(row[2]),
        count=int(row[3]),
        segment_count=int(row[4]),
        chain_hash=bytes(row[5]),
        sealed_at=str(row[6]),
        positions=bytes(row[7]),
        digests=bytes(row[8]),
        scheme=str(row[9]),
    )


class PostgresChainReader:
    """Reads ``table`` (``schema.table`` allowed) of the database at ``url``."""

    def __init__(
        self,
        url: str,
        table: str = "stored_events",
        checkpoints_table: str = CHECKPOINTS_TABLE,
    ) -> None:
        self.url = url
        self.table = ".".join(check_identifier(p) for p in table.split("."))
        self.checkpoints_table = ".".join(check_identifier(p) for p in checkpoints_table.split("."))
        self._conn_obj: Any = None

    def _conn(self) -> Any:
        if self._conn_obj is None:
            import psycopg

            self._conn_obj = psycopg.connect(self.url, autocommit=True)
        return self._conn_obj

    def close(self) -> None:
        """Close the connection (reopened if the reader is used again)."""
        if self._conn_obj is not None:
            self._conn_obj.close()
            self._conn_obj = None

    def __enter__(self) -> PostgresChainReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ChainReader -----------------------------------------------------------------------
    def read(self, after: int | None, limit: int) -> RowChunk:
        """Up to ``limit`` rows after position ``after``, as an Arrow batch."""
        where = "" if after is None else "WHERE notification_id > %s "
        params: tuple[int, ...] = (limit,) if after is None else (after, limit)
        sql = (
            "SELECT notification_id, originator_id::text, originator_version::text, topic, state "
            f"FROM {self.table} {where}ORDER BY notification_id LIMIT %s"
        )
        with self._conn().cursor(binary=True) as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return rows_to_batch(rows)

    def count_after(self, after: int | None) -> int:
        """Rows with position > ``after``."""
        where = "" if after is None else " WHERE notification_id > %s"
        params: tuple[int, ...] = () if after is None else (after,)
        with self._conn().cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {self.table}{where}", params)
            row = cur.fetchone()
        return int(row[0])

    # -- CheckpointStore -------------------------------------------------------------------
    def _has_checkpoints(self) -> bool:
        with self._conn().cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (self.checkpoints_table,))
            row = cur.fetchone()
        return row is not None and row[0] is not None

    def checkpoints(self) -> Iterator[Checkpoint]:
        """Every checkpoint in ``seq`` order, fetched a page at a time."""
        if not self._has_checkpoints():
            return iter(())
        return paged_checkpoints(self._checkpoint_page, _checkpoint)

    def _checkpoint_page(self, last: int | None) -> list[tuple[Any, ...]]:
        where = "" if last is None else "WHERE seq > %s "
        params: tuple[int, ...] = () if last is None else (last,)
        with self._conn().cursor() as cur:
            cur.execute(
                f"SELECT {_CP_COLUMNS} FROM {self.checkpoints_table} {where}"
                f"ORDER BY seq LIMIT {CHECKPOINT_PAGE}",
                params,
            )
            return list(cur.fetchall())

    def last_checkpoint(self) -> Checkpoint | None:
        """The checkpoint with the highest ``seq``."""
        if not self._has_checkpoints():
            return None
        with self._conn().cursor() as cur:
            cur.execute(
                f"SELECT {_CP_COLUMNS} FROM {self.checkpoints_table} ORDER BY seq DESC LIMIT 1"
            )
            row = cur.fetchone()
        return None if row is None else _checkpoint(row)

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Insert and commit one checkpoint (a duplicate ``seq`` raises: a concurrent seal)."""
        c = checkpoint
        conn = self._conn()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.checkpoints_table} ("
                "seq bigint PRIMARY KEY, position bigint NOT NULL, prev_position bigint, "
                "count bigint NOT NULL, segment_count bigint NOT NULL, "
                "chain_hash bytea NOT NULL, sealed_at text NOT NULL, positions bytea NOT NULL, "
                "digests bytea NOT NULL, scheme text NOT NULL)"
            )
            cur.execute(
                f"INSERT INTO {self.checkpoints_table} ({_CP_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    c.seq,
                    c.position,
                    c.prev_position,
                    c.count,
                    c.segment_count,
                    c.chain_hash,
                    c.sealed_at,
                    c.positions,
                    c.digests,
                    c.scheme,
                ),
            )
