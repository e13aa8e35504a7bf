"""Events frames as public envelopes: JSONL files and Python dicts.

An events frame has the columns of :data:`~radar.simulate.batch.EVENT_COLUMNS` with ``data`` as
JSON text. Written out, each event is one envelope object per line, exactly as DESIGN.md shows:
``data`` nested, ``occurred_at`` ISO 8601 with ``Z``, absent ``channel``/``direction`` omitted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

_ISO = "%Y-%m-%dT%H:%M:%SZ"


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _quoted(events: pl.DataFrame, name: str) -> pl.Expr:
    """The column as JSON string literals (null stays null); escapes only when needed."""
    col = pl.col(name)
    if events[name].str.contains(_NEEDS_ESCAPE).any():
        encoded = pl.struct(col).struct.json_encode()
        text = encoded.str.slice(len(name) + 4).str.head(-1)
        return pl.when(col.is_null()).then(None).otherwise(text)
    return pl.concat_str(pl.lit('"'), col, pl.lit('"'))


def envelope_lines(events: pl.DataFrame) -> pl.Series:
    """One JSON envelope text per event (same order); absent optional members omitted."""
    parts: list[pl.Expr] = [pl.lit('{"event_id":'), _quoted(events, "event_id")]
    parts += [pl.lit(',"type":'), _quoted(events, "type")]
    parts.append(pl.lit(',"customer_id":') + _quoted(events, "customer_id"))
    iso = pl.col("occurred_at").dt.convert_time_zone("UTC").dt.strftime(_ISO)
    parts += [pl.lit(',"occurred_at":"'), iso, pl.lit('"')]
    parts += [pl.lit(',"source":'), _quoted(events, "source")]
    parts.append(pl.lit(',"channel":') + _quoted(events, "channel"))
    parts.append(pl.lit(',"direction":') + _quoted(events, "direction"))
    parts += [pl.lit(',"data":'), pl.col("data").fill_null("{}"), pl.lit("}")]
    return events.select(pl.concat_str(parts, ignore_nulls=True).alias("line")).to_series()


def write_events_jsonl(events: pl.DataFrame, path: str | Path) -> int:
    """Write the events as JSONL envelopes; returns the number of lines written."""
    lines = envelope_lines(events)
    pl.DataFrame({"line": lines}).write_csv(Path(path), include_header=False, quote_style="never")
    return len(lines)


def to_envelopes(events: pl.DataFrame) -> list[dict[str, Any]]:
    """The events as envelope dicts (``data`` nested), as an operational system would send."""
    return [json.loads(line) for line in envelope_lines(events)]
