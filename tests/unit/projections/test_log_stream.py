"""The rebuild's log stream: the log cut into full row groups, then the rest."""

from __future__ import annotations

import pyarrow as pa
import pytest

from radar.projections.projector import _cut


def _tables(sizes: list[int]) -> list[pa.Table]:
    start = 0
    tables = []
    for n in sizes:
        tables.append(pa.table({"position": pa.array(range(start, start + n), pa.int64())}))
        start += n
    return tables


@pytest.mark.parametrize("sizes", [[], [3], [10], [7, 7, 7], [25], [4, 0, 16, 1], [10, 10, 10]])
def test_full_batches_in_order_then_the_rest(sizes: list[int]) -> None:
    rest: list[pa.Table] = []
    batches = list(_cut(iter(_tables(sizes)), 10, rest))
    assert all(b.num_rows == 10 for b in batches)
    assert len(batches) == sum(sizes) // 10
    positions = [p for b in batches for p in b.column(0).to_pylist()]
    positions += [p for t in rest for p in t.column(0).to_pylist()]
    assert positions == list(range(sum(sizes)))
    assert sum(t.num_rows for t in rest) == sum(sizes) % 10
