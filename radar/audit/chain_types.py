"""The checkpoint record and the two backend protocols of the tamper-evidence chain.

Only these protocols are backend specific: the chain logic in ``radar.audit.chain`` is the same
for every store. A backend object usually implements both (``SQLiteChainReader``,
``PostgresChainReader``): the checkpoints live next to the events, in the same database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

import pyarrow as pa

CHECKPOINTS_TABLE = "radar_chain_checkpoints"

#: What a reader returns for one chunk: an Arrow batch/table whose columns are, in this order,
#: position (int64), originator_id, originator_version, topic, state; or tuples of the same.
RowChunk: TypeAlias = pa.RecordBatch | pa.Table | Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Checkpoint:
    """One sealed segment: rows with ``prev_position < position_i <= position``.

    ``count`` is the cumulative number of rows sealed up to and including this checkpoint;
    ``positions`` (packed, see ``chain_codec.pack_positions``) and ``digests`` (8 bytes per row)
    let verification name the exact rows that changed. ``prev_position`` is ``None`` for the
    first checkpoint (its segment starts at the beginning of the log).
    """

    seq: int
    position: int
    prev_position: int | None
    count: int
    segment_count: int
    chain_hash: bytes
    sealed_at: str
    positions: bytes
    digests: bytes
    scheme: str


@runtime_checkable
class ChainReader(Protocol):
    """Reads the event rows in position (global, notification id) order."""

    def read(self, after: int | None, limit: int) -> RowChunk:
        """Up to ``limit`` rows with position > ``after`` (all rows if ``None``), ascending.

        Fewer than ``limit`` rows means the end of the log. The chain calls this from a worker
        thread (to read the next chunk while hashing the current one), one call at a time.
        """
        ...

    def count_after(self, after: int | None) -> int:
        """How many rows have position > ``after`` (all rows if ``None``)."""
        ...


@runtime_checkable
class CheckpointStore(Protocol):
    """Keeps the checkpoints, in the same database as the events."""

    def checkpoints(self) -> Iterator[Checkpoint]:
        """Every checkpoint in ``seq`` order (an empty iterator when none/no table)."""
        ...

    def last_checkpoint(self) -> Checkpoint | None:
        """The checkpoint with the highest ``seq``, or ``None``."""
        ...

    def append_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store one checkpoint durably (committed), creating the table if needed."""
        ...


@runtime_checkable
class ChainStore(ChainReader, CheckpointStore, Protocol):
    """A reader that is also its own checkpoint store (what ``seal``/``verify`` take)."""


#: How many checkpoints a backend fetches per query when iterating them.
CHECKPOINT_PAGE = 64


def paged_checkpoints(
    fetch_page: Callable[[int | None], Sequence[tuple[Any, ...]]],
    convert: Callable[[tuple[Any, ...]], Checkpoint],
) -> Iterator[Checkpoint]:
    """Every checkpoint in ``seq`` order; ``fetch_page(last_seq)`` returns the next page of rows
    (``seq`` first) after ``last_seq`` (None: from the start), at most :data:`CHECKPOINT_PAGE`."""
    last: int | None = None
    while rows := fetch_page(last):
        yield from (convert(row) for row in rows)
        last = int(rows[-1][0])
