"""Backend-neutral, set-based steps of an append: numbering streams and completing states.

Both backends stage a batch, ask their database which keys are stored already and where each
stream stands, and then call :func:`finalise` to get the rows to insert — so the two backends
cannot differ in how they number versions or stamp the recorded time.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc


def iso(ts: datetime) -> str:
    """The library's datetime encoding (``datetime.isoformat``)."""
    return ts.isoformat()


def timestamp_prefix(recorded_at: datetime) -> str:
    """Opening of a state: ``{"timestamp":{"_type_":"datetime_iso","_data_":"…"},``."""
    enc = json.dumps({"_type_": "datetime_iso", "_data_": iso(recorded_at)}, separators=(",", ":"))
    return '{"timestamp":' + enc + ","


def drop_repeated_keys(staged: pa.Table) -> tuple[pa.Table, list[int]]:
    """``staged`` without later repeats of a (source, event_id) key, and their line numbers.

    The first line of a key wins; the others are duplicates of it.
    """
    keys = pc.binary_join_element_wise(staged.column("source"), staged.column("event_id"), "\x1f")
    if pc.count_distinct(keys).as_py() == staged.num_rows:  # the common case, checked cheaply
        return staged, []
    frame = pl.from_arrow(staged)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.sort("line_no")
    repeat = ~pl.struct("source", "event_id").is_first_distinct()
    flagged = frame.with_columns(repeat.alias("_repeat"))
    repeated = flagged.filter(pl.col("_repeat"))["line_no"].to_list()
    if not repeated:
        return staged, []
    return flagged.filter(~pl.col("_repeat")).drop("_repeat").to_arrow().cast(
        staged.schema
    ), repeated


def first_of_each_key(staged: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    """:func:`drop_repeated_keys` for a few staged rows as dicts: the rows without later
    repeats of a (source, event_id) key, in line order, and the line numbers of the repeats."""
    seen: set[tuple[str, str]] = set()
    kept: list[dict[str, Any]] = []
    repeated: list[int] = []
    for row in sorted(staged, key=_line):
        key = (row["source"], row["event_id"])
        if key in seen:
            repeated.append(row["line_no"])
        else:
            seen.add(key)
            kept.append(row)
    return kept, repeated


def _line(row: dict[str, Any]) -> int:
    return int(row["line_no"])


def _rank_in_runs(values: pa.Array) -> np.ndarray:
    """1, 2, 3, … within each run of equal ``values`` (sorted), as int64."""
    n = len(values)
    index = np.arange(n, dtype=np.int64)
    if n == 0:
        return index
    starts = np.ones(n, dtype=bool)
    if n > 1:
        starts[1:] = pc.not_equal(values.slice(1), values.slice(0, n - 1)).to_numpy(
            zero_copy_only=False
        )
    return index - np.maximum.accumulate(np.where(starts, index, 0)) + 1


def finalise(
    staged: pa.Table,
    duplicate_lines: pa.Array | list[int],
    stream_versions: pa.Table | pl.DataFrame,
    recorded_at: datetime,
) -> pa.Table:
    """The rows to insert, sorted by (stream, version).

    ``stream_versions`` has columns ``stream`` and ``version`` (current max, null when new).
    Returns columns: line_no, source, event_id, originator_id, originator_version, topic, state.
    Rows are sorted by stream so that the primary-key index is written in order (faster).
    Arrow compute only: cheap for one event as for a hundred thousand.
    """
    rows = staged
    if len(duplicate_lines):
        dups = pa.array(duplicate_lines, pa.int64())
        rows = rows.filter(pc.invert(pc.is_in(rows.column("line_no"), value_set=dups)))
    rows = rows.take(pc.sort_indices(rows, [("stream", "ascending"), ("line_no", "ascending")]))
    versions = (
        stream_versions.to_arrow() if isinstance(stream_versions, pl.DataFrame) else stream_versions
    )
    streams = rows.column("stream").combine_chunks()
    known = pc.index_in(streams, value_set=versions.column("stream").cast(pa.string()))
    base = pc.fill_null(pc.take(versions.column("version").cast(pa.int64()), known), 0)
    numbers = pc.add(base, pa.array(_rank_in_runs(streams)))
    state = pc.binary_join_element_wise(timestamp_prefix(recorded_at), rows.column("body"), "")
    return pa.table(
        {
            "line_no": rows.column("line_no"),
            "source": rows.column("source"),
            "event_id": rows.column("event_id"),
            "originator_id": streams,
            "originator_version": numbers,
            "topic": rows.column("topic"),
            "state": state.cast(pa.binary()),
        }
    )


def finalise_rows(
    staged: list[dict[str, Any]],
    duplicate_lines: list[int],
    stream_versions: dict[str, int | None],
    recorded_at: datetime,
) -> list[dict[str, Any]]:
    """:func:`finalise` for a few staged rows as dicts (Arrow's fixed cost per call outweighs
    the work for a handful of rows): the same rows, in the same order, as dicts."""
    dups = set(duplicate_lines)
    rows = sorted((r for r in staged if r["line_no"] not in dups), key=_stream_then_line)
    prefix = timestamp_prefix(recorded_at)
    out: list[dict[str, Any]] = []
    version, stream = 0, None
    for r in rows:
        if r["stream"] != stream:
            stream, version = r["stream"], stream_versions.get(r["stream"]) or 0
        version += 1
        out.append(
            {
                "line_no": r["line_no"],
                "source": r["source"],
                "event_id": r["event_id"],
                "originator_id": stream,
                "originator_version": version,
                "topic": r["topic"],
                "state": (prefix + r["body"]).encode(),
            }
        )
    return out


def _stream_then_line(row: dict[str, Any]) -> tuple[str, int]:
    return row["stream"], row["line_no"]


def versions_after(versions: pa.Table, final: pa.Table) -> pl.DataFrame:
    """(stream, version) of a batch's streams once ``final`` (from :func:`finalise`) is stored."""
    before = pl.from_arrow(versions)
    assert isinstance(before, pl.DataFrame)
    frame = pl.from_arrow(final.select(["originator_id", "originator_version"]))
    assert isinstance(frame, pl.DataFrame)
    written = (
        frame.group_by("originator_id")
        .agg(pl.col("originator_version").max())
        .select(
            pl.col("originator_id").alias("stream"), pl.col("originator_version").alias("version")
        )
    )
    return pl.concat([before.join(written, on="stream", how="anti"), written])
