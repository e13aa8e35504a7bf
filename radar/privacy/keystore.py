"""Per-customer data keys, kept outside the event log, for crypto-shredding.

Personal fields are stored in the log encrypted under a key of their own customer. Forgetting a
customer deletes the key (SQLite ``secure_delete`` overwrites the freed bytes and the file is
vacuumed), after which the ciphertext in the log can no longer be read, while the log itself is
never rewritten. A tombstone remembers that the customer was forgotten, so no new key is made for
them and later personal data for them is dropped instead of stored.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from radar.domain.errors import ConfigurationError

DDL = (
    "CREATE TABLE IF NOT EXISTS customer_keys (customer_id TEXT PRIMARY KEY, key BLOB NOT NULL, "
    "created_at TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS forgotten (customer_id TEXT PRIMARY KEY, forgotten_at TEXT "
    "NOT NULL) WITHOUT ROWID",
)
KEY_BYTES = 32


class KeyStore:
    """Get-or-create and destroy per-customer AES-256 keys in a SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=120
            )
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA journal_mode=DELETE")
            for stmt in DDL:
                self._db.execute(stmt)
        except sqlite3.DatabaseError as e:
            raise ConfigurationError(f"key store {self.path} is damaged or unreadable: {e}") from e

    def keys_for(self, customer_ids: Iterable[str], *, create: bool = True) -> dict[str, bytes]:
        """Keys of the given customers, creating missing ones (not for forgotten customers)."""
        wanted = sorted(set(customer_ids))
        if not wanted:
            return {}
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                found = self._select(wanted)
                missing = [c for c in wanted if c not in found]
                if create and missing:
                    gone = self._forgotten(missing)
                    now = datetime.now(UTC).isoformat()
                    new = {c: os.urandom(KEY_BYTES) for c in missing if c not in gone}
                    self._db.executemany(
                        "INSERT INTO customer_keys VALUES (?, ?, ?)",
                        [(c, k, now) for c, k in new.items()],
                    )
                    found.update(new)
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise ConfigurationError(f"key store {self.path}: {e}") from e
        return found

    def _select(self, ids: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT customer_id, key FROM customer_keys WHERE customer_id IN ({marks})", chunk
            )
            out.update({c: bytes(k) for c, k in rows})
        return out

    def _forgotten(self, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT customer_id FROM forgotten WHERE customer_id IN ({marks})", chunk
            )
            out.update(c for (c,) in rows)
        return out

    def is_forgotten(self, customer_id: str) -> bool:
        with self._lock:
            return bool(self._forgotten([customer_id]))

    def forget(self, customer_id: str) -> bool:
        """Destroy the customer's key; True when a key existed. Idempotent."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(
                "DELETE FROM customer_keys WHERE customer_id = ?", (customer_id,)
            )
            self._db.execute(
                "INSERT OR IGNORE INTO forgotten VALUES (?, ?)",
                (customer_id, datetime.now(UTC).isoformat()),
            )
            self._db.execute("COMMIT")
            self._db.execute("VACUUM")
            return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
