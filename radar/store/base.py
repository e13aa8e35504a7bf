"""The event store port: what radar needs from any backend (SQLite file, PostgreSQL).

Every backend keeps the events in eventsourcing 9.5's own ``stored_events`` table format
(originator_id, originator_version, topic, state; the notification id is the global order), so the
library's recorder and mapper can read back everything radar wrote. On top of it radar keeps a
``radar_event_keys`` table of idempotency keys (source, event_id), written in the same transaction.

Appends are set-based: a batch arrives as an Arrow table of *staged* rows and is written in one
transaction, which
  * drops rows whose (source, event_id) is already stored (they are reported as duplicates),
  * numbers each stream's rows after the stream's current version (per-customer order is kept),
  * stamps the recorded time (knowledge time) into each state, taken once the write lock is held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import pyarrow as pa

#: Columns of a staged batch (see :func:`staged_schema`).
STAGED_COLUMNS = ("line_no", "source", "event_id", "stream", "topic", "body")
#: Batches of at most this many events are small: staged row by row in Python (and written by
#: the SQLite store with plain statements), since Arrow compute and ADBC calls cost a few hundred
#: microseconds each whatever the size, more than the work for a handful of events.
SMALL_BATCH_ROWS = 64
#: Columns returned by reads: the library's columns plus the notification id as ``position``.
READ_COLUMNS = ("position", "stream", "stream_version", "topic", "state")


READ_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("stream", pa.string()),
        ("stream_version", pa.int64()),
        ("topic", pa.string()),
        ("state", pa.binary()),
    ]
)


def staged_schema() -> pa.Schema:
    """Schema of a staged batch.

    ``body`` is the event's state as library JSON *without* its leading ``{`` and without the
    ``timestamp`` member; the store completes it as ``{"timestamp": …,`` + body.
    """
    return pa.schema(
        [
            ("line_no", pa.int64()),
            ("source", pa.string()),
            ("event_id", pa.string()),
            ("stream", pa.string()),
            ("topic", pa.string()),
            ("body", pa.string()),
        ]
    )


@dataclass(frozen=True)
class AppendOutcome:
    """What one append stored: counts, the line numbers found to be duplicates, positions."""

    accepted: int
    duplicate_lines: list[int] = field(default_factory=list)
    first_position: int | None = None
    last_position: int | None = None
    recorded_at: datetime | None = None


class EventStore(Protocol):
    """A backend of the event log. Implementations must pass ``tests/contract``."""

    url: str

    def append_staged(self, rows: pa.Table) -> AppendOutcome:
        """Write a staged batch atomically (all rows or none); idempotent on (source, event_id)."""
        ...

    def read_after(self, position: int, limit: int) -> pa.Table:
        """Up to ``limit`` stored events with position > ``position``, in position order."""
        ...

    def read_range(self, after: int, upto: int) -> pa.Table:
        """Stored events with ``after < position <= upto``, in position order."""
        ...

    def read_stream(self, stream: str) -> pa.Table:
        """Every stored event of one stream (a customer), in version order."""
        ...

    def max_position(self) -> int:
        """The highest notification id (0 for an empty store)."""
        ...

    def count(self) -> int:
        """How many events are stored."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
