"""Importing a file: pick the reader by extension, append batch by batch, write the reject file.

Each batch is atomic (validated and appended in one transaction); the good lines of a file are
stored even when other lines are rejected; importing the same file again stores nothing new
(events keep their (source, event_id) keys; events without an id get one from their content).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from radar.domain.errors import RadarError
from radar.ingest.pipeline import BatchResult, Ingestor, Rejection, commit_in_order
from radar.ingest.readers import read_csv, read_jsonl, read_parquet

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def file_format(path: Path) -> str:
    """``jsonl``, ``csv`` or ``parquet`` by extension; a RadarError names the file otherwise."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RadarError(
            f"{path}: unknown file type {path.suffix!r} (use .jsonl, .csv or .parquet)"
        )
    return fmt


def batches(ingestor: Ingestor, path: Path, batch_size: int) -> Iterator[pa.Table]:
    if not path.exists():
        raise RadarError(f"{path}: no such file")
    fmt = file_format(path)
    if fmt == "jsonl":
        return read_jsonl(path, batch_size)
    if fmt == "csv":
        return read_csv(path, batch_size, ingestor.duck)
    return read_parquet(path, batch_size, ingestor.duck)


def ingest_file(
    ingestor: Ingestor,
    path: Path,
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Ingest one file; ``progress`` is called with the number of lines of each batch done.

    Batches are pipelined: while one batch is appended to the store, the next ones are
    validated and encoded on the ingestor's workers; commits keep the file's order.
    """
    return commit_in_order(
        ingestor,
        batches(ingestor, path, batch_size),
        ingestor.prepare,
        on_commit=(lambda p, _: progress(p.lines)) if progress else None,
    )


def write_rejects(path: Path, source: Path, rejections: list[Rejection]) -> None:
    """One JSON object per rejected line: file, line, field, reason (never the line's content,
    which may hold personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in rejections:
            fh.write(json.dumps({"file": str(source), **r.to_dict()}, ensure_ascii=False) + "\n")
