"""SQLite backend of the tamper-evidence chain: eventsourcing's ``stored_events`` rowid table.

The position of a row is its ``rowid`` (the notification id). Chunks are read by keyset
(``rowid > ? ORDER BY rowid LIMIT ?``) through the ADBC SQLite driver, which returns Arrow
directly; if ADBC cannot type a chunk (e.g. a tampered row with the wrong storage class), that
chunk is read with the stdlib ``sqlite3`` module instead, with the same values. Checkpoints live
in ``radar_chain_checkpoints`` in the same file, written with ``sqlite3``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from radar.audit.chain_codec import rows_to_batch
from radar.audit.chain_types import (
    CHECKPOINT_PAGE,
    CHECKPOINTS_TABLE,
    Checkpoint,
    RowChunk,
    paged_checkpoints,
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPECTED = (pa.int64(), pa.string(), pa.string(), pa.string(), pa.binary())
_COLUMNS = (
    "rowid, CAST(originator_id AS TEXT), CAST(originator_version AS TEXT), "
    "CAST(topic AS TEXT), CAST(state AS BLOB)"
)
_CP_COLUMNS = (
    "seq, position, prev_position, count, segment_count, chain_hash, sealed_at, positions, "
    "digests, scheme"
)
# Read back with explicit storage classes: a tampered value of another class (e.g. TEXT made
# by ``||``) must reach verification as a finding, not crash the reader.
_CP_SELECT = (
    "CAST(seq AS INTEGER), CAST(position AS INTEGER), CAST(prev_position AS INTEGER), "
    "CAST(count AS INTEGER), CAST(segment_count AS INTEGER), CAST(chain_hash AS BLOB), "
    "CAST(sealed_at AS BLOB), CAST(positions AS BLOB), CAST(digests AS BLOB), "
    "CAST(scheme AS BLOB)"
)


def check_identifier(name: str) -> str:
    """``name`` if it is a plain SQL identifier (tables are interpolated into SQL), else raise."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def _int(value: Any) -> int:
    """A NOT NULL integer column; a NULL planted by hand reads as 0 and then fails the chain."""
    return 0 if value is None else int(value)


def _checkpoint(row: tuple[Any, ...]) -> Checkpoint:
    return Checkpoint(
        seq=_int(row[0]),
        position=_int(row[1]),
        prev_position=None if row[2] is None else int(row[2]),
        count=_int(row[3]),
        segment_count=_int(row[4]),
        chain_hash=bytes(row[5] or b""),
        sealed_at=bytes(row[6] or b"").decode("utf-8", "replace"),
        positions=bytes(row[7] or b""),
        digests=bytes(row[8] or b""),
        scheme=bytes(row[9] or b"").decode("utf-8", "replace"),
    )


class SQLiteChainReader:
    """Reads ``table`` of the SQLite file at ``path`` and keeps checkpoints beside it."""

    def __init__(
        self,
        path: str | Path,
        table: str = "stored_events",
        checkpoints_table: str = CHECKPOINTS_TABLE,
        *,
        use_adbc: bool = True,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no event store at {self.path}")
        self.table = check_identifier(table)
        self.checkpoints_table = check_identifier(checkpoints_table)
        self._use_adbc = use_adbc
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_read: sqlite3.Connection | None = None  # used by read() only
        self._adbc: Any = None

    # -- connections -----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._sqlite is None:
            self._sqlite = sqlite3.connect(self.path, timeout=30.0)
        return self._sqlite

    def _read_conn(self) -> sqlite3.Connection:
        # read() may run on the chain's prefetch thread, one call at a time.
        if self._sqlite_read is None:
            self._sqlite_read = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        return self._sqlite_read

    def _adbc_conn(self) -> Any:
        if self._adbc is None:
            import adbc_driver_sqlite.dbapi as adbc_sqlite

            # autocommit: no read transaction is held open between chunks (it would pin a
            # snapshot and, without WAL, block the checkpoint writes).
            self._adbc = adbc_sqlite.connect(str(self.path), autocommit=True)
        return self._adbc

    def close(self) -> None:
        """Close the connections (the reader reopens them if used again)."""
        for conn in (self._sqlite, self._sqlite_read):
            if conn is not None:
                conn.close()
        self._sqlite = self._sqlite_read = None
        if self._adbc is not None:
            self._adbc.close()
            self._adbc = None

    def __enter__(self) -> SQLiteChainReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ChainReader -----------------------------------------------------------------------
    def _query(self, after: int | None) -> tuple[str, tuple[int, ...]]:
        where = "" if after is None else "WHERE rowid > ? "
        sql = f"SELECT {_COLUMNS} FROM {self.table} {where}ORDER BY rowid LIMIT ?"
        return sql, (() if after is None else (after,))

    def read(self, after: int | None, limit: int) -> RowChunk:
        """Up to ``limit`` rows after position ``after``, as an Arrow table."""
        sql, params = self._query(after)
        if self._use_adbc:
            table = self._read_adbc(sql, (*params, limit))
            if table is not None:
                return table
        rows = self._read_conn().execute(sql, (*params, limit)).fetchall()
        return rows_to_batch(rows)

    def _read_adbc(self, sql: str, params: tuple[int, ...]) -> pa.Table | None:
        cur = self._adbc_conn().cursor()
        try:
            cur.execute(sql, params)
            table: pa.Table = cur.fetch_arrow_table()
        except Exception:  # ADBC types each chunk by guess; sqlite3 reads any row
            return None
        finally:
            cur.close()
        columns = []
        for col, expected in zip(table.columns, _EXPECTED, strict=True):
            if col.type == expected:
                columns.append(col)
            elif col.null_count == len(col):  # an all-NULL chunk is typed by guess
                columns.append(pa.chunked_array([pa.nulls(len(col), expected)]))
            else:
                return None
        return pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(5)])

    def count_after(self, after: int | None) -> int:
        """Rows with position > ``after``."""
        where = "" if after is None else " WHERE rowid > ?"
        params = () if after is None else (after,)
        row = self._conn().execute(f"SELECT count(*) FROM {self.table}{where}", params).fetchone()
        return int(row[0])

    # -- CheckpointStore -------------------------------------------------------------------
    def _has_checkpoints(self) -> bool:
        row = (
            self._conn()
            .execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (self.checkpoints_table,),
            )
            .fetchone()
        )
        return row is not None

    def checkpoints(self) -> Iterator[Checkpoint]:
        """Every checkpoint in ``seq`` order, fetched a page at a time."""
        if not self._has_checkpoints():
            return iter(())
        return paged_checkpoints(self._checkpoint_page, _checkpoint)

    def _checkpoint_page(self, last: int | None) -> list[tuple[Any, ...]]:
        where = "" if last is None else "WHERE seq > ? "
        params: tuple[int, ...] = () if last is None else (last,)
        sql = (
            f"SELECT {_CP_SELECT} FROM {self.checkpoints_table} {where}"
            f"ORDER BY seq LIMIT {CHECKPOINT_PAGE}"
        )
        return list(self._conn().execute(sql, params).fetchall())

    def last_checkpoint(self) -> Checkpoint | None:
        """The checkpoint with the highest ``seq``."""
        if not self._has_checkpoints():
            return None
        row = (
            self._conn()
            .execute(f"SELECT {_CP_SELECT} FROM {self.checkpoints_table} ORDER BY seq DESC LIMIT 1")
            .fetchone()
        )
        return None if row is None else _checkpoint(row)

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Insert and commit one checkpoint (a duplicate ``seq`` raises: a concurrent seal)."""
        conn = self._conn()
        with conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.checkpoints_table} ("
                "seq INTEGER PRIMARY KEY, position INTEGER NOT NULL, prev_position INTEGER, "
                "count INTEGER NOT NULL, segment_count INTEGER NOT NULL, "
                "chain_hash BLOB NOT NULL, sealed_at TEXT NOT NULL, positions BLOB NOT NULL, "
                "digests BLOB NOT NULL, scheme TEXT NOT NULL)"
            )
            c = checkpoint
            conn.execute(
                f"INSERT INTO {self.checkpoints_table} ({_CP_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
