"""Readers that turn input files into batches of ``(line_no, raw)`` — one JSON envelope per row.

* JSONL: split in C (``bytes.split``) into Arrow arrays, one batch per ``batch_size`` lines; the
  line number is the line in the file (blank lines are skipped, not counted as events).
* CSV: columns named like the envelope (``event_id, type, customer_id, occurred_at, source,
  channel, direction``), a ``data`` column holding a JSON object and/or ``data.<field>`` columns;
  the line number counts the header as line 1.
* Parquet: the same columns, typed (timestamps, numbers, a ``data`` struct or JSON string); the
  "line" is the row number starting at 1.
CSV and Parquet rows are turned into JSON text in DuckDB, so that every format goes through the one
validator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import ENVELOPE_FIELDS
from radar.domain.fieldspec import payload_fields
from radar.ingest.sql_codec import lit

RAW_SCHEMA = pa.schema([("line_no", pa.int64()), ("raw", pa.string())])


def _lines_to_table(lines: list[bytes], first_line_no: int) -> pa.Table:
    numbers = pa.array(range(first_line_no, first_line_no + len(lines)), pa.int64())
    binary = pa.array(lines, pa.binary())
    try:
        text = binary.cast(pa.string())
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere: decode line by line, marking bad bytes
        text = pa.array([b.decode("utf-8", errors="replace") for b in lines], pa.string())
    keep = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0)
    return pa.table({"line_no": numbers, "raw": text}).filter(keep)


def read_jsonl(path: Path, batch_size: int) -> Iterator[pa.Table]:
    """Batches of up to ``batch_size`` lines of a JSONL file."""
    pending = b""
    line_no = 1
    buffered: list[bytes] = []
    with open(path, "rb") as fh:
        while True:
            block = fh.read(64 * 1024 * 1024)
            if not block:
                break
            parts = (pending + block).split(b"\n")
            pending = parts.pop()
            buffered.extend(parts)
            while len(buffered) >= batch_size:
                chunk, buffered = buffered[:batch_size], buffered[batch_size:]
                yield _lines_to_table(chunk, line_no)
                line_no += len(chunk)
    if pending:
        buffered.append(pending)
    for i in range(0, len(buffered), batch_size):
        chunk = buffered[i : i + batch_size]
        yield _lines_to_table([c.rstrip(b"\r") for c in chunk], line_no)
        line_no += len(chunk)


def _data_field_kinds() -> dict[str, frozenset[str]]:
    kinds: dict[str, frozenset[str]] = {}
    for name in CATALOGUE:
        for f in payload_fields(name):
            kinds.setdefault(f.name, f.json_types)
    return kinds


def _value_json(col: str, duck_type: str, kinds: frozenset[str] | None) -> str:
    """SQL turning one input column into a JSON value (NULL when empty)."""
    q = '"' + col.replace('"', '""') + '"'
    t = duck_type.upper()
    if t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
        return f"to_json(strftime({q} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ'))"
    if t.startswith("TIMESTAMP"):
        return f"to_json(strftime({q}, '%Y-%m-%dT%H:%M:%S.%fZ'))"
    if t == "DATE":
        return f"to_json(strftime({q}, '%Y-%m-%d'))"
    if t != "VARCHAR":
        return f"to_json({q})"
    value = f"nullif(trim({q}), '')"
    if kinds and kinds <= {"number", "integer"}:
        return (
            f"CASE WHEN TRY_CAST({value} AS DOUBLE) IS NOT NULL THEN {value}::JSON "
            f"ELSE to_json({value}) END"
        )
    if kinds == frozenset({"boolean"}):
        return (
            f"CASE WHEN lower({value}) IN ('true', 'false') THEN lower({value})::JSON "
            f"ELSE to_json({value}) END"
        )
    if kinds and kinds & {"object", "array"}:
        return f"CASE WHEN json_valid({value}) THEN {value}::JSON ELSE to_json({value}) END"
    return f"to_json({value})"


def _frame_to_raw(con: duckdb.DuckDBPyConnection, frame: pa.Table, first_line: int) -> pa.Table:
    """Rows of a columnar input (CSV/Parquet) → ``(line_no, raw JSON)``."""
    con.register("frame_in", frame)
    types = dict(
        zip(
            frame.column_names,
            [str(t) for t in con.sql("SELECT * FROM frame_in").types],
            strict=True,
        )
    )
    kinds = _data_field_kinds()
    env_parts = []
    data_parts = []
    for col, t in types.items():
        if col == "__row":
            continue
        if col.startswith("data."):
            field = col[len("data.") :]
            data_parts.append(f"{lit(field)}, {_value_json(col, t, kinds.get(field))}")
        elif col == "data":
            continue
        else:
            env_parts.append(f"{lit(col)}, {_value_json(col, t, None)}")
    if "data" in types:
        dt = types["data"].upper()
        base = (
            "CASE WHEN json_valid(nullif(trim(data), '')) THEN data::JSON "
            "ELSE to_json(nullif(trim(data), '')) END"
            if dt == "VARCHAR"
            else "to_json(data)"
        )
    else:
        base = "NULL"
    extra = f"json_object({', '.join(data_parts)})" if data_parts else "NULL"
    if data_parts and base != "NULL":
        data_sql = (
            f"CASE WHEN json_type({base}) = 'OBJECT' "
            f"THEN json_merge_patch({base}, {extra}) ELSE {base} END"
        )
    elif data_parts:
        data_sql = f"json_merge_patch('{{}}', {extra})"
    else:
        data_sql = base
    env_parts.append(f"'data', {data_sql}")
    sql = (
        f"SELECT __row + {first_line} AS line_no, "
        f"CAST(json_merge_patch('{{}}', json_object({', '.join(env_parts)})) AS VARCHAR) AS raw "
        "FROM frame_in ORDER BY __row"
    )
    out = con.sql(sql).to_arrow_table()
    con.unregister("frame_in")
    return out.cast(RAW_SCHEMA)


def read_csv(path: Path, batch_size: int, con: duckdb.DuckDBPyConnection) -> Iterator[pa.Table]:
    """Batches of a CSV file (all values read as text, typed by the catalogue)."""
    frame = pl.read_csv(path, infer_schema=False).with_row_index("__row")
    for i in range(0, frame.height, batch_size):
        yield _frame_to_raw(con, frame.slice(i, batch_size).to_arrow(), 2)


def read_parquet(path: Path, batch_size: int, con: duckdb.DuckDBPyConnection) -> Iterator[pa.Table]:
    """Batches of a Parquet file."""
    frame = pl.read_parquet(path).with_row_index("__row")
    for i in range(0, frame.height, batch_size):
        yield _frame_to_raw(con, frame.slice(i, batch_size).to_arrow(), 1)


def known_envelope_columns() -> tuple[str, ...]:
    return ENVELOPE_FIELDS
