"""Opening an event store from its URL: ``sqlite:///path`` or ``postgresql://…``."""

from __future__ import annotations

from radar.domain.errors import ConfigurationError
from radar.store.base import EventStore


def open_store(url: str) -> EventStore:
    """The backend named by ``url``; raises ConfigurationError for an unknown scheme."""
    if url.startswith("sqlite:///"):
        from radar.store.sqlite_store import SQLiteEventStore

        return SQLiteEventStore(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        from radar.store.postgres_store import PostgresEventStore

        return PostgresEventStore(url)
    raise ConfigurationError(
        f"unknown event store URL {url!r}: use sqlite:///PATH or postgresql://…"
    )
