"""Behaviour of the canonical row encoding, row digests and segment hashes."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from radar.audit.chain_codec import (
    GENESIS,
    encode_contents,
    pack_positions,
    prefix_blob,
    prefixes,
    row_digests,
    rows_to_batch,
    segment_hash,
    stored_prefixes,
    unpack_positions,
)


def _digest_of(row: tuple[object, ...]) -> bytes:
    return row_digests(rows_to_batch([row]))[1]


def test_row_digest_is_sha256_of_length_prefixed_fields() -> None:
    row = (7, "agg-1", 3, "radar:Purchase", b'{"a":1}')
    expected = hashlib.sha256(b"5:agg-11:314:radar:Purchase7:" + b'{"a":1}').digest()
    assert _digest_of(row) == expected


def test_field_boundaries_are_part_of_the_digest() -> None:
    a = _digest_of((1, "ab", "1", "c", b"x"))
    b = _digest_of((1, "a", "1", "bc", b"x"))
    assert a != b


def test_null_and_empty_values_hash_differently() -> None:
    assert _digest_of((1, "o", "1", "t", None)) != _digest_of((1, "o", "1", "t", b""))


def test_version_is_hashed_as_its_decimal_text() -> None:
    assert _digest_of((1, "o", 3, "t", b"s")) == _digest_of((1, "o", "3", "t", b"s"))
    assert _digest_of((1, "o", "3", "t", b"s")) != _digest_of((1, "o", "3abc", "t", b"s"))


def test_position_is_not_part_of_the_row_digest() -> None:
    assert _digest_of((1, "o", 1, "t", b"s")) == _digest_of((99, "o", 1, "t", b"s"))


def test_arrow_batches_and_tuples_give_the_same_digests() -> None:
    rows = [(i, f"agg-{i}", i % 3, "topic", f"state {i}".encode()) for i in range(1, 50)]
    table = pa.table(
        {
            "position": pa.array([r[0] for r in rows], pa.int64()),
            "originator_id": pa.array([r[1] for r in rows], pa.string()),
            "originator_version": pa.array([str(r[2]) for r in rows], pa.string()),
            "topic": pa.array([r[3] for r in rows], pa.string()),
            "state": pa.array([r[4] for r in rows], pa.binary()),
        }
    )
    pos_a, dig_a = row_digests(table)
    pos_b, dig_b = row_digests(rows_to_batch(rows))
    assert np.array_equal(pos_a, pos_b)
    assert dig_a == dig_b
    # a sliced batch (non-zero offset) hashes its own rows only
    _, dig_tail = row_digests(table.slice(10).to_batches()[0])
    assert dig_tail == dig_a[10 * 32 :]


def test_encoding_of_a_batch_with_all_null_columns() -> None:
    batch = rows_to_batch([(1, None, None, None, None)])
    assert encode_contents(batch).to_pylist() == [b"-:-:-:-:"]


def test_positions_round_trip_with_gaps_and_negative_values() -> None:
    positions = np.array([-5, 1, 2, 3, 10, 1_000_000], dtype=np.int64)
    assert np.array_equal(unpack_positions(pack_positions(positions)), positions)
    with pytest.raises(ValueError):
        unpack_positions(b"not zlib")


def test_digest_prefixes_round_trip_through_the_stored_blob() -> None:
    _, digests = row_digests(rows_to_batch([(i, "o", i, "t", b"s") for i in range(1, 6)]))
    blob = prefix_blob(digests)
    assert len(blob) == 5 * 8
    assert np.array_equal(stored_prefixes(blob), prefixes(digests))
    assert blob[:8] == digests[:8]


def test_segment_hash_changes_when_any_input_changes() -> None:
    digests = bytes(range(64))

    def h(prev: bytes = GENESIS, **change: Any) -> bytes:
        args: dict[str, Any] = {
            "seq": 1,
            "prev_position": None,
            "position": 2,
            "count": 2,
            "segment_count": 2,
            "sealed_at": "2026-01-01T00:00:00+00:00",
            "positions": np.array([1, 2], dtype=np.int64),
            "digests": digests,
        }
        return segment_hash(prev, **{**args, **change})

    reference = h()
    assert h() == reference
    variants: list[dict[str, Any]] = [
        {"seq": 2},
        {"prev_position": 0},
        {"position": 3},
        {"count": 3},
        {"segment_count": 1},
        {"sealed_at": "2026-01-01T00:00:01+00:00"},
        {"positions": np.array([1, 3], dtype=np.int64)},
        {"digests": digests[32:] + digests[:32]},
    ]
    for change in variants:
        assert h(**change) != reference, change
    assert h(b"\x01" * 32) != reference
