"""API keys and roles of the HTTP service.

A key is ``radar_<key_id>_<secret>``. Only a salted HMAC-SHA256 of the secret is stored (in
``<data>/api_keys.sqlite``, table ``api_keys``), keyed by ``key_id``; a presented key is checked in
constant time. Verified keys are remembered in memory for a short while so that a busy appender
does not pay a SQLite read per request; revoking a key takes effect within that time.

Roles (what each may do):

| role      | may                                                                        |
|-----------|----------------------------------------------------------------------------|
| appender  | append events, pull actions (leases) and report their outcomes             |
| marketer  | rules (list, check, preview, effect), segments, analyses, aggregates/KPIs  |
| auditor   | customer view, history, as-of view, explain, verify (personal data) and    |
|           | the aggregates                                                             |
| admin     | everything, including forgetting a customer and managing keys              |
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

KEYS_FILE = "api_keys.sqlite"
PREFIX = "radar_"
CACHE_SECONDS = 30.0


class Role(StrEnum):
    appender = "appender"
    marketer = "marketer"
    auditor = "auditor"
    admin = "admin"


ROLES: tuple[Role, ...] = tuple(Role)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role."""

    key_id: str
    role: Role
    name: str = ""


@dataclass(frozen=True)
class KeyInfo:
    """A stored key as listed (never the secret)."""

    key_id: str
    role: Role
    name: str
    created_at: str
    revoked: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "role": self.role.value,
            "name": self.name,
            "created_at": self.created_at,
            "revoked": self.revoked,
        }


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest()


class KeyRing:
    """The API keys of one data folder. Thread-safe."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, role TEXT NOT NULL, "
            "name TEXT NOT NULL DEFAULT '', salt BLOB NOT NULL, digest BLOB NOT NULL, "
            "created_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)"
        )
        self._conn.commit()
        self._cache: dict[str, tuple[float, Principal]] = {}

    @classmethod
    def in_folder(cls, data_dir: Path) -> KeyRing:
        return cls(data_dir / KEYS_FILE)

    def create(self, role: Role | str, name: str = "") -> tuple[str, KeyInfo]:
        """Make a key for ``role``; returns the key (shown once) and its stored description."""
        the_role = Role(role)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        salt = secrets.token_bytes(16)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._conn.execute(
                "INSERT INTO api_keys (key_id, role, name, salt, digest, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, the_role.value, name, salt, _digest(salt, secret), created),
            )
            self._conn.commit()
        return f"{PREFIX}{key_id}_{secret}", KeyInfo(key_id, the_role, name, created, False)

    def list(self) -> list[KeyInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_id, role, name, created_at, revoked FROM api_keys ORDER BY created_at"
            ).fetchall()
        return [KeyInfo(k, Role(r), n, c, bool(v)) for k, r, n, c, v in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when there is no such key."""
        with self._lock:
            cur = self._conn.execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,))
            self._conn.commit()
            self._cache = {k: v for k, v in self._cache.items() if v[1].key_id != key_id}
        return cur.rowcount > 0

    def remembered(self, token: str) -> Principal | None:
        """The principal of a key verified less than :data:`CACHE_SECONDS` ago, else None
        (no I/O: cheap enough to call on the event loop)."""
        cached = self._cache.get(token)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    def verify(self, token: str) -> Principal | None:
        """The principal of a presented key, or None when it is unknown, wrong or revoked."""
        known = self.remembered(token)
        if known is not None:
            return known
        now = time.monotonic()
        if not token.startswith(PREFIX):
            return None
        key_id, sep, secret = token[len(PREFIX) :].partition("_")
        if not sep or not key_id or not secret:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT role, name, salt, digest, revoked FROM api_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        if row is None:
            return None
        role, name, salt, digest, revoked = row
        if revoked or not hmac.compare_digest(_digest(salt, secret), digest):
            return None
        principal = Principal(key_id, Role(role), name)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (now + CACHE_SECONDS, principal)
        return principal

    def close(self) -> None:
        with self._lock:
            self._conn.close()
