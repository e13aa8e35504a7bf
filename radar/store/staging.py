"""Backend-neutral, set-based steps of an append: numbering streams and completing states.

Both backends stage a batch, ask their database which keys are stored already and where each
stream stands, and then call :func:`finalise` to get the rows to insert — so the two backends
cannot differ in how they number versions or stamp the recorded time.
"""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pyarrow as pa


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


def finalise(
    staged: pa.Table,
    duplicate_lines: pa.Array | list[int],
    stream_versions: pa.Table,
    recorded_at: datetime,
) -> pl.DataFrame:
    """The rows to insert, sorted by (stream, version).

    ``stream_versions`` has columns ``stream`` and ``version`` (current max, null when new).
    Returns columns: line_no, source, event_id, originator_id, originator_version, topic, state.
    Rows are sorted by stream so that the primary-key index is written in order (faster).
    """
    frame = pl.from_arrow(staged)
    assert isinstance(frame, pl.DataFrame)
    dups = pl.Series("line_no", duplicate_lines, dtype=pl.Int64)
    if len(dups):
        frame = frame.filter(~pl.col("line_no").is_in(dups.implode()))
    versions = pl.from_arrow(stream_versions)
    assert isinstance(versions, pl.DataFrame)
    versions = versions.select(
        pl.col("stream").cast(pl.String), pl.col("version").cast(pl.Int64).fill_null(0)
    )
    prefix = timestamp_prefix(recorded_at)
    return (
        frame.join(versions, on="stream", how="left")
        .sort("stream", "line_no")
        .with_columns(
            (pl.col("version").fill_null(0) + pl.int_range(1, pl.len() + 1).over("stream")).alias(
                "originator_version"
            ),
            (pl.lit(prefix) + pl.col("body")).cast(pl.Binary).alias("state"),
        )
        .select(
            "line_no",
            "source",
            "event_id",
            pl.col("stream").alias("originator_id"),
            "originator_version",
            "topic",
            "state",
        )
    )
