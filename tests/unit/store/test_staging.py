"""The two forms of the store's last step agree: ``finalise`` (Arrow, bulk batches) and
``finalise_rows`` (dicts, small batches) give the same rows for the same input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from radar.store.base import staged_schema
from radar.store.staging import finalise, finalise_rows

RECORDED_AT = datetime(2026, 11, 22, 12, 30, 5, 123456, tzinfo=UTC)
STREAMS = ["C-1", "C-2", "C-3", "__radar__/ruleset.published"]


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[int], dict[str, int | None]]:
    """Staged rows (unique keys, random streams and line order), some duplicate lines and the
    current version of some of the streams."""
    n = draw(st.integers(1, 12))
    lines = draw(st.permutations(range(1, n + 1)))
    rows = [
        {
            "line_no": line,
            "source": "crm",
            "event_id": f"e-{line}",
            "stream": draw(st.sampled_from(STREAMS)),
            "topic": "radar.domain.events:Purchase",
            "body": f'"type":"purchase","n":{line}' + "}",
        }
        for line in lines
    ]
    dups = draw(st.lists(st.sampled_from(list(lines)), unique=True))
    versions = {s: draw(st.one_of(st.none(), st.integers(0, 50))) for s in STREAMS}
    return rows, dups, versions


@settings(deadline=None)  # the first call loads Arrow's compute kernels
@given(batches())
def test_finalising_rows_one_by_one_gives_what_the_arrow_form_gives(
    batch: tuple[list[dict[str, Any]], list[int], dict[str, int | None]],
) -> None:
    rows, dups, versions = batch
    table = pa.Table.from_pylist(rows, schema=staged_schema())
    known = pa.table(
        {"stream": list(versions), "version": list(versions.values())},
        schema=pa.schema([("stream", pa.string()), ("version", pa.int64())]),
    )

    arrow = finalise(table, dups, known, RECORDED_AT).to_pylist()

    assert finalise_rows(rows, dups, versions, RECORDED_AT) == arrow
    assert len(arrow) == len(rows) - len(dups)
