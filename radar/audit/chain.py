"""Tamper evidence over the event store: seal it with a hash chain, verify nothing was altered.

Public API
----------
``ChainReader`` (protocol)
    ``read(after, limit)`` → up to ``limit`` rows with position > ``after`` in position order,
    as an Arrow batch/table or tuples ``(position, originator_id, originator_version, topic,
    state)``; ``count_after(after)``. This is the only backend-specific part, together with
    ``CheckpointStore`` (``checkpoints()``, ``last_checkpoint()``, ``append_checkpoint(cp)``).
    ``ChainStore`` is both, and is what ``seal``/``verify`` take.
``SQLiteChainReader(path, table="stored_events", checkpoints_table="radar_chain_checkpoints")``
    eventsourcing's SQLite recorder; position = rowid; reads through ADBC (Arrow).
``PostgresChainReader(url, table="stored_events", checkpoints_table=...)``
    eventsourcing's PostgreSQL recorder; position = notification_id; psycopg 3.
``seal(store, every=10_000, *, chunk_rows=100_000) -> SealResult``
    Extends the chain from the last checkpoint to the current end, hashing only the new rows,
    recording a checkpoint every ``every`` rows and one at the end. ``SealResult.head`` is the
    newest chain hash: record it outside the database (a ticket, a log, a signed mail) and pass
    it back as ``verify(anchor=...)`` to also catch an attacker who rewrote the checkpoints.
``verify(store, *, anchor=None, chunk_rows=100_000, max_findings=10_000) -> VerifyReport``
    Recomputes every sealed segment. ``VerifyReport.ok``, ``.findings`` (``Finding(kind,
    position, detail, checkpoint)``), ``.checked`` (sealed rows checked), ``.unsealed`` (rows
    appended after the last checkpoint: counted, not an error), ``.counts``, ``.to_dict()``.

Finding kinds
-------------
``modified``  the row at this position has different content than when sealed.
``deleted``   a sealed position is missing.
``inserted``  a row whose position lies in a sealed range was not there when sealed.
``reordered`` the whole row sealed at another position is here (rows swapped, or a rowid
              changed); the detail names the other position. A row moved past the sealed range
              is found among the unsealed rows. Exchanging only some fields (e.g. two rows'
              ``state``) gives rows that never existed: ``modified`` at both positions.
``checkpoint_tampered`` the checkpoints table itself is inconsistent: missing/duplicated
              checkpoints, broken links, a chain hash or locator list that does not fit the rows.
``anchor_mismatch`` the externally recorded head hash is not in the chain.

How it works (scheme ``radar-chain-v1``, details in ``chain_codec``)
---------------------------------------------------------------------
Each row gets a SHA-256 digest of its canonical content; each checkpoint stores
``chain_hash = SHA-256(previous chain_hash || header || positions || full row digests)`` — the
per-row chain ``h_i = H(h_{i-1} || position_i || row_i)`` evaluated one segment at a time — and,
to locate changes, the positions (compressed deltas) and the first 8 bytes of each row digest
(10M rows ≈ 80 MB). Verification compares each segment's recomputed hash with the stored one and,
where they differ, compares positions and digest prefixes to name the rows. Reading the next
chunk (and its Arrow encoding) runs on a worker thread while the current chunk is hashed, so both
cores work. Without a secret or an external anchor nobody can stop someone with write access from
rewriting events *and* every later checkpoint consistently (or deleting the newest rows together
with their checkpoints, or the whole checkpoints table: the rows then read as unsealed); the chain
makes that the only way, and the anchor catches it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from radar.audit.chain_codec import (
    DIGEST_SIZE,
    GENESIS,
    SCHEME,
    EncodedRows,
    Positions,
    encode_rows,
    hash_contents,
    pack_positions,
    prefix_blob,
    prefixes,
    rows_to_batch,
    segment_hash,
    stored_prefixes,
    unpack_positions,
)
from radar.audit.chain_postgres import PostgresChainReader
from radar.audit.chain_sqlite import SQLiteChainReader
from radar.audit.chain_types import (
    ChainReader,
    ChainStore,
    Checkpoint,
    CheckpointStore,
    RowChunk,
)

__all__ = [
    "ChainReader",
    "ChainStore",
    "Checkpoint",
    "CheckpointStore",
    "Finding",
    "FindingKind",
    "PostgresChainReader",
    "SQLiteChainReader",
    "SealResult",
    "VerifyReport",
    "seal",
    "verify",
]

FindingKind = Literal[
    "modified", "deleted", "inserted", "reordered", "checkpoint_tampered", "anchor_mismatch"
]


@dataclass(frozen=True)
class Finding:
    """One thing verification found wrong, at ``position`` (None when not about one row)."""

    kind: FindingKind
    position: int | None
    detail: str
    checkpoint: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "position": self.position,
            "detail": self.detail,
            "checkpoint": self.checkpoint,
        }


@dataclass(frozen=True)
class SealResult:
    """What one ``seal`` call did: ``sealed`` new rows hashed into ``checkpoints`` checkpoints."""

    sealed: int
    checkpoints: int
    total: int
    position: int | None
    head: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass
class VerifyReport:
    """Outcome of ``verify``: ``ok`` when there are no findings (unsealed rows are not errors)."""

    checked: int = 0
    unsealed: int = 0
    checkpoints: int = 0
    head: str | None = None
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing was found (``counts`` covers findings beyond ``max_findings`` too)."""
        return not self.counts

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "unsealed": self.unsealed,
            "checkpoints": self.checkpoints,
            "head": self.head,
            "counts": dict(self.counts),
            "truncated": self.truncated,
            "seconds": round(self.seconds, 3),
            "findings": [f.to_dict() for f in self.findings],
        }


# -- reading -------------------------------------------------------------------------------


def _as_batch(chunk: RowChunk) -> pa.RecordBatch | pa.Table:
    if isinstance(chunk, pa.RecordBatch | pa.Table):
        return chunk
    return rows_to_batch(chunk)


class _RowStream:
    """Hashed rows of a reader in position order, consumed by position limit or row count.

    The next chunk is read on a worker thread while the current one is hashed (reading releases
    the GIL in the drivers, hashing small rows does not), so the two cores are both used.
    ``ChainReader.read`` is thus called from that thread, one call at a time.
    """

    def __init__(self, reader: ChainReader, chunk_rows: int, after: int | None = None) -> None:
        self._reader = reader
        self._chunk_rows = chunk_rows
        self._after = after
        self._pos: Positions = np.empty(0, dtype=np.int64)
        self._dig = b""
        self._i = 0
        self._exhausted = False
        self._pool: ThreadPoolExecutor | None = None
        self._next: Future[EncodedRows] | None = None
        self.hashed = 0

    def __enter__(self) -> _RowStream:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _fetch(self, after: int | None) -> EncodedRows:
        return encode_rows(_as_batch(self._reader.read(after, self._chunk_rows)))

    def _prefetch(self, after: int | None) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="radar-chain")
        self._next = self._pool.submit(self._fetch, after)

    def _fill(self) -> bool:
        if self._next is None:
            if self._exhausted:
                return False
            rows = self._fetch(self._after)
        else:
            rows, self._next = self._next.result(), None
        pos = rows.positions
        if len(pos) == 0:
            self._exhausted = True
            return False
        lower = self._after
        if np.any(np.diff(pos) <= 0) or (lower is not None and pos[0] <= lower):
            raise ValueError("the reader returned rows out of position order")
        self._after = int(pos[-1])
        if len(pos) < self._chunk_rows:
            self._exhausted = True
        else:
            self._prefetch(self._after)  # read and encode the next chunk while this one hashes
        self._pos, self._dig, self._i = pos, hash_contents(rows.contents), 0
        self.hashed += len(pos)
        return True

    def take(
        self, until: int | None = None, max_rows: int | None = None
    ) -> tuple[Positions, bytes]:
        """Rows with position <= ``until`` (all if None), at most ``max_rows`` of them."""
        pos_parts: list[Positions] = []
        dig_parts: list[bytes] = []
        taken = 0
        while True:
            if self._i >= len(self._pos) and not self._fill():
                break
            end = len(self._pos)
            if until is not None:
                end = int(np.searchsorted(self._pos, until, side="right"))
            if max_rows is not None:
                end = min(end, self._i + max_rows - taken)
            if end > self._i:
                pos_parts.append(self._pos[self._i : end])
                dig_parts.append(self._dig[self._i * DIGEST_SIZE : end * DIGEST_SIZE])
                taken += end - self._i
                self._i = end
            if self._i < len(self._pos) or (max_rows is not None and taken >= max_rows):
                break
        if not pos_parts:
            return np.empty(0, dtype=np.int64), b""
        return np.concatenate(pos_parts), b"".join(dig_parts)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# -- seal ----------------------------------------------------------------------------------


def seal(
    store: ChainStore,
    every: int = 10_000,
    *,
    chunk_rows: int = 100_000,
    clock: Callable[[], str] = _now,
) -> SealResult:
    """Extend the chain over rows appended since the last checkpoint; only new rows are hashed."""
    if every < 1 or chunk_rows < 1:
        raise ValueError("every and chunk_rows must be positive")
    started = time.perf_counter()
    last = store.last_checkpoint()
    if last is not None and last.scheme != SCHEME:
        raise ValueError(f"the store was sealed with scheme {last.scheme!r}, not {SCHEME!r}")
    seq = last.seq if last else 0
    total = last.count if last else 0
    prev_hash = last.chain_hash if last else GENESIS
    prev_position = last.position if last else None
    with _RowStream(store, chunk_rows, after=prev_position) as stream:
        added, seq, prev_hash, prev_position, total = _seal_segments(
            store, stream, every, clock, seq, total, prev_hash, prev_position
        )
    return SealResult(
        sealed=stream.hashed,
        checkpoints=added,
        total=total,
        position=prev_position,
        head=None if seq == 0 else prev_hash.hex(),
        seconds=time.perf_counter() - started,
    )


def _seal_segments(
    store: ChainStore,
    stream: _RowStream,
    every: int,
    clock: Callable[[], str],
    seq: int,
    total: int,
    prev_hash: bytes,
    prev_position: int | None,
) -> tuple[int, int, bytes, int | None, int]:
    added = 0
    while True:
        positions, digests = stream.take(max_rows=every)
        n = len(positions)
        if n == 0:
            break
        seq += 1
        total += n
        position = int(positions[-1])
        sealed_at = clock()
        chain_hash = segment_hash(
            prev_hash,
            seq=seq,
            prev_position=prev_position,
            position=position,
            count=total,
            segment_count=n,
            sealed_at=sealed_at,
            positions=positions,
            digests=digests,
        )
        store.append_checkpoint(
            Checkpoint(
                seq=seq,
                position=position,
                prev_position=prev_position,
                count=total,
                segment_count=n,
                chain_hash=chain_hash,
                sealed_at=sealed_at,
                positions=pack_positions(positions),
                digests=prefix_blob(digests),
                scheme=SCHEME,
            )
        )
        added += 1
        prev_hash, prev_position = chain_hash, position
        if n < every:
            break
    return added, seq, prev_hash, prev_position, total


# -- verify --------------------------------------------------------------------------------


@dataclass
class _Anomalies:
    """Row differences found so far; classified into findings once all segments are seen."""

    modified: list[tuple[int, int, int, int]] = field(default_factory=list)  # pos, cur, sealed, cp
    deleted: list[tuple[int, int, int]] = field(default_factory=list)  # pos, sealed, cp
    inserted: list[tuple[int, int, int]] = field(default_factory=list)  # pos, cur, cp


def _metadata_problems(cp: Checkpoint, prev: Checkpoint | None) -> list[str]:
    problems: list[str] = []
    if cp.scheme != SCHEME:
        problems.append(f"unknown scheme {cp.scheme!r}")
    if prev is None:
        if cp.seq != 1:
            problems.append(f"checkpoints 1..{cp.seq - 1} are missing")
        if cp.prev_position is not None:
            problems.append("the first checkpoint does not start at the beginning of the log")
        if cp.count != cp.segment_count:
            problems.append(f"count {cp.count} != segment count {cp.segment_count}")
    else:
        if cp.seq != prev.seq + 1:
            problems.append(f"checkpoint follows seq {prev.seq}: seq {prev.seq + 1}.. missing")
        if cp.prev_position != prev.position:
            problems.append(
                f"starts after position {cp.prev_position}, previous ended at {prev.position}"
            )
        if cp.count != prev.count + cp.segment_count:
            problems.append(f"count {cp.count} != {prev.count} + {cp.segment_count}")
    if cp.prev_position is not None and cp.position <= cp.prev_position:
        problems.append(f"position {cp.position} <= previous position {cp.prev_position}")
    return problems


def _compare(
    cp: Checkpoint, positions: Positions, digests: bytes, out: _Anomalies
) -> tuple[int, str | None]:
    """Add the rows of one segment that differ from its locator lists; (count, error)."""
    try:
        sealed_pos = unpack_positions(cp.positions)
        sealed_dig = stored_prefixes(cp.digests)
    except ValueError as exc:
        return 0, f"locator lists are damaged: {exc}"
    if len(sealed_pos) != len(sealed_dig) or len(sealed_pos) != cp.segment_count:
        return 0, (
            f"locator lists hold {len(sealed_pos)} positions and {len(sealed_dig)} digests "
            f"for {cp.segment_count} rows"
        )
    current = prefixes(digests)
    if len(positions) == len(sealed_pos) and np.array_equal(positions, sealed_pos):
        changed = np.flatnonzero(current != sealed_dig)
        for i in changed.tolist():
            out.modified.append((int(positions[i]), int(current[i]), int(sealed_dig[i]), cp.seq))
        return len(changed), None
    _, ci, si = np.intersect1d(positions, sealed_pos, assume_unique=True, return_indices=True)
    changed_mask = current[ci] != sealed_dig[si]
    for i, s in zip(ci[changed_mask].tolist(), si[changed_mask].tolist(), strict=True):
        out.modified.append((int(positions[i]), int(current[i]), int(sealed_dig[s]), cp.seq))
    gone = np.flatnonzero(~np.isin(sealed_pos, positions))
    for s in gone.tolist():
        out.deleted.append((int(sealed_pos[s]), int(sealed_dig[s]), cp.seq))
    new = np.flatnonzero(~np.isin(positions, sealed_pos))
    for i in new.tolist():
        out.inserted.append((int(positions[i]), int(current[i]), cp.seq))
    return int(changed_mask.sum()) + len(gone) + len(new), None


def _classify(found: _Anomalies, moved_out: dict[int, int]) -> Iterator[Finding]:
    """Turn row differences into findings, recognising content that moved between positions."""
    sealed_at: dict[int, int] = {}  # digest prefix -> position it was sealed at (now gone/changed)
    now_at: dict[int, int] = dict(moved_out)  # digest prefix -> position it is at now
    for pos, cur, old, _ in found.modified:
        sealed_at[old] = pos
        now_at[cur] = pos
    for pos, old, _ in found.deleted:
        sealed_at[old] = pos
    for pos, cur, _ in found.inserted:
        now_at[cur] = pos
    for pos, cur, old, cp in found.modified:
        src, dst = sealed_at.get(cur), now_at.get(old)
        if (src is not None and src != pos) or (dst is not None and dst != pos):
            parts = []
            if src is not None and src != pos:
                parts.append(f"holds the row sealed at position {src}")
            if dst is not None and dst != pos:
                parts.append(f"its sealed row is now at position {dst}")
            yield Finding("reordered", pos, "; ".join(parts), cp)
        else:
            yield Finding("modified", pos, "row content differs from when it was sealed", cp)
    for pos, old, cp in found.deleted:
        dst = now_at.get(old)
        if dst is not None:
            yield Finding("reordered", pos, f"its sealed row is now at position {dst}", cp)
        else:
            yield Finding("deleted", pos, "a sealed row is missing", cp)
    for pos, cur, cp in found.inserted:
        src = sealed_at.get(cur)
        if src is not None:
            yield Finding("reordered", pos, f"holds the row sealed at position {src}", cp)
        else:
            yield Finding("inserted", pos, "row in a sealed range that was not sealed", cp)


def verify(
    store: ChainStore,
    *,
    anchor: str | None = None,
    chunk_rows: int = 100_000,
    max_findings: int = 10_000,
) -> VerifyReport:
    """Recompute the chain over every sealed row and report what differs (see module doc)."""
    started = time.perf_counter()
    report = VerifyReport()
    with _RowStream(store, chunk_rows) as stream:
        collected, last_position = _check_segments(store, stream, report, anchor)
    report.unsealed = store.count_after(last_position)
    collected.sort(key=lambda f: (f.position is None, f.position or 0, f.kind))
    for f in collected:
        report.counts[f.kind] = report.counts.get(f.kind, 0) + 1
    report.truncated = len(collected) > max_findings
    report.findings = collected[:max_findings]
    report.seconds = time.perf_counter() - started
    return report


def _check_segments(
    store: ChainStore, stream: _RowStream, report: VerifyReport, anchor: str | None
) -> tuple[list[Finding], int | None]:
    """Walk the checkpoints and the rows together; the findings and the last sealed position."""
    collected: list[Finding] = []
    found = _Anomalies()
    prev: Checkpoint | None = None
    prev_hash = GENESIS
    seen_anchor = anchor is None
    for cp in store.checkpoints():
        report.checkpoints += 1
        problems = _metadata_problems(cp, prev)
        start = cp.prev_position
        if prev is not None and (start is None or start < prev.position):
            start = prev.position  # overlapping ranges: already reported as a broken link
        if start is not None and (prev is None or start > prev.position):
            gap, _ = stream.take(until=start)
            if len(gap):
                problems.append(
                    f"{len(gap)} rows at positions {int(gap[0])}..{int(gap[-1])} are covered "
                    "by no checkpoint"
                )
        positions, digests = stream.take(until=cp.position)
        report.checked += len(positions)
        expected = segment_hash(
            prev_hash,
            seq=cp.seq,
            prev_position=cp.prev_position,
            position=cp.position,
            count=cp.count,
            segment_count=cp.segment_count,
            sealed_at=cp.sealed_at,
            positions=positions,
            digests=digests,
        )
        chain_ok = expected == cp.chain_hash
        segment = _Anomalies()
        differing, damaged = _compare(cp, positions, digests, segment)
        if damaged:
            problems.append(damaged)
        if not chain_ok and differing:
            found.modified += segment.modified
            found.deleted += segment.deleted
            found.inserted += segment.inserted
        elif chain_ok and differing:
            problems.append(f"locator lists name {differing} changed rows but the rows match")
        elif not chain_ok and not damaged:
            problems.append("chain hash does not match the rows, which match their digests")
        collected += [Finding("checkpoint_tampered", cp.position, p, cp.seq) for p in problems]
        if anchor is not None and cp.chain_hash.hex() == anchor.lower():
            seen_anchor = True
        prev, prev_hash = cp, cp.chain_hash
    report.head = prev.chain_hash.hex() if prev else None
    last_position = prev.position if prev else None
    moved_out: dict[int, int] = {}
    if found.deleted or found.modified:
        # A sealed row may have been moved past the sealed range: look for it there.
        positions, digests = stream.take()
        for p, d in zip(positions.tolist(), prefixes(digests).tolist(), strict=True):
            if last_position is None or p > last_position:
                moved_out[d] = p
    collected += _classify(found, moved_out)
    if not seen_anchor:
        collected.append(
            Finding("anchor_mismatch", None, f"anchor {anchor} is not a checkpoint hash", None)
        )
    return collected, last_position
