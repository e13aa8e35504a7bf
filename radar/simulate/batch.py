"""A batch of generated events of one type, and assembling batches into the events frame.

Generators produce :class:`Batch` objects in *model time* (float days since ``start``); the
assembly maps model time onto the calendar (each model day onto 07:00–22:00 UTC of that day,
monotonically), encodes payloads as JSON text, sorts by time and numbers event ids per type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from radar.domain.envelope import ENVELOPE_FIELDS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: The envelope columns of an events frame, in order.
EVENT_COLUMNS: tuple[str, ...] = ENVELOPE_FIELDS
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "type": pl.String(),
    "customer_id": pl.String(),
    "occurred_at": pl.Datetime("us", "UTC"),
    "source": pl.String(),
    "channel": pl.String(),
    "direction": pl.String(),
    "data": pl.String(),
}

Labels = str | pl.Series | None

DAY_OPEN_H = 7.0
DAY_SPAN_H = 15.0


@dataclass
class Batch:
    """Events of one type: customer index, model time (days), envelope labels and payload columns.

    ``source``, ``channel`` and ``direction`` are one value for the batch or a Series per event.
    ``data`` holds exactly the payload fields to emit (no nulls), one row per event.
    """

    type: str
    cust: IntArray
    t: FloatArray
    source: Labels
    data: pl.DataFrame
    channel: Labels = None
    direction: Labels = None

    def __post_init__(self) -> None:
        n = len(self.cust)
        if len(self.t) != n or self.data.height != n:
            raise ValueError(f"batch {self.type}: lengths differ")

    def keep(self, mask: BoolArray) -> Batch:
        """The events where ``mask`` holds."""
        m = pl.Series(mask)

        def sel(v: Labels) -> Labels:
            return v.filter(m) if isinstance(v, pl.Series) else v

        return Batch(
            self.type,
            self.cust[mask],
            self.t[mask],
            sel(self.source),
            self.data.filter(m),
            sel(self.channel),
            sel(self.direction),
        )


def pick(names: tuple[str, ...] | list[str], codes: npt.NDArray[np.integer]) -> pl.Series:
    """The names at ``codes`` as a String series."""
    return pl.Series(list(names), dtype=pl.String).gather(pl.Series(codes.astype(np.int64)))


def ids(prefix: str, numbers: npt.NDArray[np.integer]) -> pl.Series:
    """``prefix`` followed by each number, as a String series."""
    s = pl.Series(numbers.astype(np.int64)).cast(pl.String)
    return pl.select(pl.lit(prefix) + s).to_series()


def day_dates(start: date, t: FloatArray) -> pl.Series:
    """The calendar date of each model time."""
    epoch_day = (start - date(1970, 1, 1)).days
    return pl.Series(np.floor(t).astype(np.int64) + epoch_day).cast(pl.Date)


def clock_seconds(t: FloatArray) -> npt.NDArray[np.int64]:
    """Seconds since ``start`` of each model time (business hours of the model day)."""
    day = np.floor(t)
    frac = t - day
    secs = day * 86400.0 + (DAY_OPEN_H + DAY_SPAN_H * frac) * 3600.0
    return np.floor(secs).astype(np.int64)


def to_datetime(start: date, t: FloatArray) -> pl.Series:
    """UTC datetimes of model times."""
    base = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 1_000_000
    us = clock_seconds(t) * 1_000_000 + base
    return pl.Series(us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _label(v: Labels, n: int) -> pl.Series:
    if isinstance(v, pl.Series):
        return v.cast(pl.String)
    return pl.repeat(v, n, dtype=pl.String, eager=True)


def _drop_nulls(data: pl.Series) -> pl.Series:
    """Remove ``"field":null`` members from JSON objects (payload fields not given)."""
    return (
        data.str.replace_all(r'"[a-z_]+":null,', "")
        .str.replace_all(r',"[a-z_]+":null', "")
        .str.replace_all(r'\{"[a-z_]+":null\}', "{}")
    )


def assemble(batches: list[Batch], start: date, n_customers: int) -> pl.DataFrame:
    """The events frame of all batches, sorted by occurred_at, with ids ``sim-<type>-<n>``.

    Events of equal model time keep the order of ``batches``; ``n`` numbers the events of a type
    in time order from 0.
    """
    frames = []
    for b in batches:
        n = len(b.cust)
        if n == 0:
            continue
        data = b.data.select(pl.struct(pl.all()).struct.json_encode().alias("data")).to_series()
        if any(c.null_count() for c in b.data.iter_columns()):
            data = _drop_nulls(data)
        frames.append(
            pl.DataFrame(
                {
                    "cust": b.cust.astype(np.int64),
                    "type": _label(b.type, n),
                    "source": _label(b.source, n),
                    "channel": _label(b.channel, n),
                    "direction": _label(b.direction, n),
                    "data": data,
                }
            )
        )
    if not frames:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    live = [b for b in batches if len(b.cust)]
    t = np.concatenate([b.t for b in live]).astype(np.float64)
    order = np.argsort(t, kind="stable")
    df = pl.concat(frames, rechunk=True)[order]
    # number the events of each type in time order
    names = sorted({b.type for b in live})
    code = np.concatenate([np.full(len(b.cust), names.index(b.type), np.int64) for b in live])
    code = code[order]
    number = np.empty(len(code), dtype=np.int64)
    for k in range(len(names)):
        where = np.flatnonzero(code == k)
        number[where] = np.arange(len(where))
    cid = pl.Series(customer_ids(n_customers)).gather(df["cust"])
    return df.select(
        event_id=pl.concat_str(
            pl.lit("sim-"), "type", pl.lit("-"), pl.Series(number).cast(pl.String)
        ),
        type="type",
        customer_id=cid,
        occurred_at=to_datetime(start, t[order]),
        source="source",
        channel="channel",
        direction="direction",
        data="data",
    )


def customer_ids(n: int) -> list[str]:
    """The customer ids of a simulation of ``n`` customers, by index."""
    width = max(6, len(str(n)))
    return [f"C-{i:0{width}d}" for i in range(n)]
