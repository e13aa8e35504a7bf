"""Canonical row encoding, row digests and segment hashes of the tamper-evidence chain (pure).

Contract (scheme ``radar-chain-v1``; changing any byte here invalidates every existing seal):

* A row is ``(position, originator_id, originator_version, topic, state)``. Its *content* is the
  last four fields, each taken as bytes (text as UTF-8, ``originator_version`` as its decimal
  text, so ``3`` and ``'3abc'`` differ) and encoded as ``b"<len>:" + value`` (``b"-:"`` for
  NULL). The *row digest* is ``SHA-256(content)``. The position is deliberately not in the row
  digest: it is bound by the segment hash, and keeping it out lets verification recognise a row
  that moved to another position (``reordered``) rather than report it as modified.
* A *segment* is the rows sealed by one checkpoint, in position order. Its chain hash is
  ``SHA-256("radar-chain-v1" || previous chain hash (32 zero bytes for the first) || header ||
  positions as big-endian int64 || the rows' full 32-byte digests)`` where the header packs the
  checkpoint's seq, previous position, position, cumulative count, segment count and sealed_at.
  This is the per-row chain ``h_i = SHA-256(h_{i-1} || position_i || digest_i)`` evaluated one
  segment at a time: any change to a row, its position, the order, the checkpoint metadata or an
  earlier checkpoint changes every later chain hash, while costing one hash call per row.
* Checkpoints store, per row, the first 8 bytes of its digest (``DIGEST_PREFIX``) and the
  positions (zlib-compressed int64 deltas) so verification can name the exact rows that differ.

Bulk path: rows arrive as Arrow batches; the encoding is built with Arrow compute kernels and the
only per-row Python work is one ``hashlib.sha256`` call over a memoryview slice.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

SCHEME = "radar-chain-v1"
GENESIS = bytes(32)
DIGEST_SIZE = 32
DIGEST_PREFIX = 8

Positions = npt.NDArray[np.int64]
Prefixes = npt.NDArray[np.uint64]

_COMBINE_LIMIT = 1 << 30
_SEP = pa.scalar(b":", pa.large_binary())
_EMPTY = pa.scalar(b"", pa.large_binary())
_NULL_LEN = pa.scalar("-", pa.large_string())


def rows_to_batch(rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """Turn ``(position, originator_id, originator_version, topic, state)`` tuples into a batch."""
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    if len(columns) != 5:
        raise ValueError(f"a chain row has 5 fields, got {len(columns)}")
    arrays = [pa.array(columns[0], type=pa.int64())]
    for col in columns[1:]:
        arrays.append(pa.array(col) if any(v is not None for v in col) else pa.nulls(len(col)))
    return pa.RecordBatch.from_arrays(
        arrays, names=["position", "originator_id", "originator_version", "topic", "state"]
    )


def _as_large_binary(col: pa.Array) -> pa.Array:
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.large_binary())
    if pa.types.is_integer(col.type):
        col = pc.cast(col, pa.large_string())
    if pa.types.is_large_binary(col.type):
        return col
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pc.cast(pc.cast(col, pa.large_string()), pa.large_binary())
    if pa.types.is_binary(col.type) or pa.types.is_fixed_size_binary(col.type):
        return pc.cast(col, pa.large_binary())
    raise TypeError(f"cannot encode a column of type {col.type} into the chain")


def _column(batch: pa.RecordBatch | pa.Table, i: int) -> pa.Array:
    col = batch.column(i)
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def encode_contents(batch: pa.RecordBatch | pa.Table) -> pa.LargeBinaryArray:
    """The canonical content encoding of every row of ``batch`` (columns 1..4), as one array."""
    parts: list[pa.Array | pa.Scalar] = []
    for i in range(1, 5):
        value = _as_large_binary(_column(batch, i))
        length = pc.fill_null(pc.cast(pc.binary_length(value), pa.large_string()), _NULL_LEN)
        parts += [pc.cast(length, pa.large_binary()), _SEP, pc.fill_null(value, _EMPTY)]
    out = pc.binary_join_element_wise(*parts, _EMPTY)
    assert isinstance(out, pa.LargeBinaryArray)
    return out


@dataclass(frozen=True)
class EncodedRows:
    """Rows ready to hash: positions and their canonical contents (one array per record batch)."""

    positions: Positions
    contents: list[pa.LargeBinaryArray]


def encode_rows(batch: pa.RecordBatch | pa.Table) -> EncodedRows:
    """Positions and canonical contents of ``batch`` (Arrow kernels only: releases the GIL)."""
    if isinstance(batch, pa.Table):
        # Drivers hand over many small batches (ADBC: 1024 rows); one big batch encodes faster,
        # unless it could overflow 32-bit binary offsets.
        if batch.num_rows and batch.nbytes < _COMBINE_LIMIT:
            batch = batch.combine_chunks()
        batches = batch.to_batches()
    else:
        batches = [batch]
    batches = [b for b in batches if b.num_rows]
    positions = [
        np.asarray(b.column(0).to_numpy(zero_copy_only=False), dtype=np.int64) for b in batches
    ]
    return EncodedRows(
        positions=np.concatenate(positions) if positions else np.empty(0, dtype=np.int64),
        contents=[encode_contents(b) for b in batches],
    )


def hash_contents(contents: list[pa.LargeBinaryArray]) -> bytes:
    """The concatenated SHA-256 digests of every value (one ``hashlib`` call per row)."""
    sha = hashlib.sha256
    out: list[bytes] = []
    for encoded in contents:
        n = len(encoded)
        offsets_buf, data_buf = encoded.buffers()[1], encoded.buffers()[2]
        assert offsets_buf is not None
        offsets = np.frombuffer(offsets_buf, dtype=np.int64)[
            encoded.offset : encoded.offset + n + 1
        ]
        data = memoryview(data_buf if data_buf is not None else b"")
        bounds = offsets.tolist()
        out.append(b"".join([sha(data[a:b]).digest() for a, b in itertools.pairwise(bounds)]))
    return b"".join(out)


def row_digests(batch: pa.RecordBatch | pa.Table) -> tuple[Positions, bytes]:
    """Positions (column 0) and the concatenated 32-byte row digests of ``batch``."""
    encoded = encode_rows(batch)
    return encoded.positions, hash_contents(encoded.contents)


def prefixes(digests: bytes) -> Prefixes:
    """The 8-byte prefix of each 32-byte digest, as uint64 (for set comparisons)."""
    arr = np.frombuffer(digests, dtype=np.uint8).reshape(-1, DIGEST_SIZE)[:, :DIGEST_PREFIX]
    return np.ascontiguousarray(arr).view(np.uint64).ravel()


def prefix_blob(digests: bytes) -> bytes:
    """What a checkpoint stores per row: the first ``DIGEST_PREFIX`` bytes of each digest."""
    return prefixes(digests).tobytes()


def stored_prefixes(blob: bytes) -> Prefixes:
    """Inverse of :func:`prefix_blob`."""
    if len(blob) % DIGEST_PREFIX:
        raise ValueError("digest list length is not a multiple of 8")
    return np.frombuffer(blob, dtype=np.uint64)


def pack_positions(positions: Positions) -> bytes:
    """Positions as zlib-compressed little-endian int64 deltas (contiguous ids compress to ~0)."""
    deltas = np.diff(positions, prepend=np.int64(0)).astype("<i8")
    return zlib.compress(deltas.tobytes(), 6)


def unpack_positions(blob: bytes) -> Positions:
    """Inverse of :func:`pack_positions`; raises ``ValueError`` on a damaged blob."""
    try:
        raw = zlib.decompress(blob)
    except zlib.error as exc:
        raise ValueError(f"positions blob does not decompress: {exc}") from exc
    if len(raw) % 8:
        raise ValueError("positions blob length is not a multiple of 8")
    return np.cumsum(np.frombuffer(raw, dtype="<i8"), dtype=np.int64)


def segment_hash(
    prev_hash: bytes,
    *,
    seq: int,
    prev_position: int | None,
    position: int,
    count: int,
    segment_count: int,
    sealed_at: str,
    positions: Positions,
    digests: bytes,
) -> bytes:
    """The chain hash of one checkpoint (see the module docstring)."""
    h = hashlib.sha256(SCHEME.encode())
    h.update(prev_hash)
    h.update(
        struct.pack(
            ">q?qqqq",
            seq,
            prev_position is None,
            0 if prev_position is None else prev_position,
            position,
            count,
            segment_count,
        )
    )
    stamp = sealed_at.encode()
    h.update(struct.pack(">I", len(stamp)) + stamp)
    h.update(np.asarray(positions, dtype=">i8").tobytes())
    h.update(digests)
    return h.digest()
