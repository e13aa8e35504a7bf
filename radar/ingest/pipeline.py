"""Ingestion: raw envelopes → validated, encoded, encrypted, staged → appended atomically.

One batch is handled set-based: DuckDB validates every row with SQL generated from the catalogue
and encodes the valid ones into the library's JSON; polars completes the states; the store appends
the batch in one transaction. Only personal fields are handled per row (AES-GCM under the
customer's own key), and only for the rows that carry them.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import ENVELOPE_FIELDS, SYSTEM_STREAM_PREFIX, Event
from radar.domain.errors import RadarError
from radar.domain.events import TOPICS, class_version
from radar.domain.suggest import did_you_mean
from radar.domain.vocabulary import CHANNELS, DIRECTIONS
from radar.ingest.py_codec import encode_event
from radar.ingest.sql_codec import ENCODE_SQL, install_catalogue, validate_steps
from radar.privacy.cipher import encrypt
from radar.privacy.keystore import KeyStore
from radar.store.base import (
    SMALL_BATCH_ROWS,
    STAGED_COLUMNS,
    AppendOutcome,
    EventStore,
    staged_schema,
)
from radar.store.staging import drop_repeated_keys, first_of_each_key

T = TypeVar("T")


@dataclass(frozen=True)
class Rejection:
    """One rejected input line: where it was and why (no event content, so no personal data)."""

    line: int
    field: str
    reason: str
    event_id: str | None = None
    type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
            "event_id": self.event_id,
            "type": self.type,
        }


@dataclass
class BatchResult:
    """What happened to one batch (or, summed, to a whole file)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    duplicate_lines: list[int] = field(default_factory=list)
    first_position: int | None = None
    last_position: int | None = None

    def add(self, other: BatchResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.rejections.extend(other.rejections)
        self.duplicate_lines.extend(other.duplicate_lines)
        if other.first_position is not None and self.first_position is None:
            self.first_position = other.first_position
        if other.last_position is not None:
            self.last_position = other.last_position

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "first_position": self.first_position,
            "last_position": self.last_position,
        }


def _split_error(error: str) -> tuple[str, str]:
    fld, _, reason = error.partition(": ")
    return fld, reason


def _suggest_types(rejections: list[Rejection]) -> list[Rejection]:
    out = []
    for r in rejections:
        if r.field == "type" and r.reason.startswith("unknown event type") and r.type:
            r = Rejection(
                r.line, r.field, r.reason + did_you_mean(r.type, CATALOGUE), r.event_id, r.type
            )
        out.append(r)
    return out


#: Columns :meth:`Ingestor._stage` takes from an encoded batch.
STAGE_INPUT = pa.schema(
    [
        ("line_no", pa.int64()),
        ("source", pa.string()),
        ("event_id", pa.string()),
        ("stream", pa.string()),
        ("topic", pa.string()),
        ("customer_id", pa.string()),
        ("head", pa.string()),
        ("pii_plain", pa.string()),
    ]
)


def _duck(threads: int) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ingest settings (UTC, no progress bar)."""
    con = duckdb.connect(config={"threads": threads})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


@dataclass(frozen=True)
class Prepared:
    """A validated, encoded batch ready to append (``staged`` is None when nothing is valid)."""

    staged: pa.Table | None
    in_batch_duplicates: list[int]
    rejections: list[Rejection]
    lines: int = 0  # input lines the batch came from (for progress)


#: Columns of a frame of radar-built events (see :meth:`Ingestor.prepare_trusted`).
TRUSTED_COLUMNS = ENVELOPE_FIELDS


def check_trusted(frame: pl.DataFrame) -> None:
    """Raise ValueError when radar-built events break the catalogue's envelope rules."""
    missing = [c for c in TRUSTED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"radar-built events lack columns {missing}")
    allowed = [n for n, t in CATALOGUE.items() if t.written_by == "radar" and not t.personal_fields]
    problems = {
        "type not written by radar": ~pl.col("type").is_in(allowed),
        "event_id missing": pl.col("event_id").is_null()
        | (pl.col("event_id").str.len_chars() == 0),
        "customer_id missing": pl.col("customer_id").is_null()
        & pl.col("type").is_in([n for n in allowed if CATALOGUE[n].customer]),
        "channel missing": pl.col("channel").is_null()
        & pl.col("type").is_in([n for n in allowed if CATALOGUE[n].channel_required]),
        "unknown channel": pl.col("channel").is_not_null() & ~pl.col("channel").is_in(CHANNELS),
        "direction not allowed": pl.col("direction").is_not_null()
        & pl.col("type").is_in([n for n in allowed if CATALOGUE[n].direction == "none"]),
        "data is not a JSON object": ~pl.col("data").str.starts_with("{"),
        "occurred_at missing": pl.col("occurred_at").is_null(),
    }
    found = frame.select(
        *(expr.fill_null(False).any().alias(name) for name, expr in problems.items())
    ).row(0, named=True)
    bad = [name for name, hit in found.items() if hit]
    if bad:
        raise ValueError(f"radar-built events are invalid: {', '.join(bad)}")


class Ingestor:
    """Validates and appends batches of events to one store, encrypting personal fields."""

    def __init__(self, store: EventStore, keys: KeyStore, workers: int = 2) -> None:
        self.store = store
        self.keys = keys
        #: How many batches may be validated at once (one single-threaded DuckDB connection
        #: each: a validation statement barely gains from a second thread, two batches do).
        self.workers = workers
        self._validate = validate_steps("raw_in")
        self._reader = _duck(threads=2)
        self._idle: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        self._all = [_duck(threads=1) for _ in range(workers)]
        for con in self._all:
            install_catalogue(con)
            self._idle.put(con)

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection for the readers (they convert CSV/Parquet with it)."""
        return self._reader

    # -- bulk path ----------------------------------------------------------------------------

    def ingest_raw(self, raw: pa.Table) -> BatchResult:
        """Validate and append one batch of ``(line_no, raw)`` rows; atomic for the batch."""
        return self.commit(self.prepare(raw))

    def prepare(self, raw: pa.Table) -> Prepared:
        """Validate, encode and encrypt one batch (no store access). Thread-safe: up to
        :attr:`workers` batches are prepared at once, each on its own DuckDB connection."""
        con = self._idle.get()
        con.register("raw_in", raw)
        try:
            for statement in self._validate:
                con.execute(statement)
            bad = con.sql(
                "SELECT line_no, error, s_event_id, s_type FROM checked "
                "WHERE error IS NOT NULL ORDER BY line_no"
            ).fetchall()
            encoded = con.sql(ENCODE_SQL).to_arrow_table()
        finally:
            con.unregister("raw_in")
            self._idle.put(con)
        rejections = _suggest_types(
            [Rejection(int(ln), *_split_error(err), eid, typ) for ln, err, eid, typ in bad]
        )
        return replace(self._stage(encoded, rejections), lines=raw.num_rows)

    # -- Python API path ----------------------------------------------------------------------

    def ingest_events(self, events: Sequence[Event]) -> BatchResult:
        """Append already validated events (the ``append`` API); atomic for the call."""
        return self.commit(self.stage_events(events))

    def stage_events(self, events: Sequence[Event], lines: Sequence[int] = ()) -> Prepared:
        """Encode and encrypt already validated events for one append (no store access); their
        line numbers are ``lines`` (ascending; by default the events' indexes)."""
        numbers = lines or range(len(events))
        rows = [{"line_no": i, **encode_event(e)} for i, e in zip(numbers, events, strict=True)]
        if not rows:
            return Prepared(None, [], [])
        if len(rows) <= SMALL_BATCH_ROWS:
            return self._stage_rows(rows)
        table = pa.Table.from_pylist(rows, schema=STAGE_INPUT)  # other keys are left out
        return self._stage(table, [])

    def _stage_rows(self, rows: list[dict[str, Any]]) -> Prepared:
        """:meth:`_stage` for a few encoded rows, row by row (Arrow's fixed cost per call
        outweighs the work for a handful of events): the same rows come out."""
        kept, repeated = first_of_each_key(rows)
        secret = [r for r in kept if r["pii_plain"] is not None and r["customer_id"] is not None]
        tokens = self._tokens([r["customer_id"] for r in secret], [r["pii_plain"] for r in secret])
        pii = {id(r): f',"pii":"{t}"' for r, t in zip(secret, tokens, strict=True) if t}
        staged = {name: [r[name] for r in kept] for name in STAGED_COLUMNS if name != "body"}
        staged["body"] = [r["head"] + pii.get(id(r), "") + "}" for r in kept]
        return Prepared(pa.table(staged, schema=staged_schema()), repeated, [])

    # -- radar's own events, built from typed data ----------------------------------------------

    def prepare_trusted(self, frame: pl.DataFrame, first_line: int = 1) -> Prepared:
        """Stage events that radar itself built from typed data (rule decisions, analysis
        results): the envelope as typed columns (:data:`TRUSTED_COLUMNS`; ``occurred_at`` a UTC
        datetime) and ``data`` as the canonical JSON text of the facts (no nulls, defaults given).

        Only radar-written types without personal fields are accepted; the envelope rules of
        the catalogue are checked set-based (a violation is a programming error, ValueError).
        The payload JSON is not parsed again: its shape is guaranteed by its producer and
        checked against the pydantic models by the producers' contract tests.
        """
        check_trusted(frame)
        iso = pl.col("occurred_at").dt.convert_time_zone("UTC")
        iso_text = (
            pl.when(iso.dt.microsecond() == 0)
            .then(iso.dt.strftime("%Y-%m-%dT%H:%M:%S"))
            .otherwise(iso.dt.strftime("%Y-%m-%dT%H:%M:%S.%6f"))
        )
        defaults = {n: t.direction for n, t in CATALOGUE.items() if t.direction in DIRECTIONS}
        staged = frame.with_columns(
            pl.coalesce(
                pl.col("direction"),
                pl.col("type").replace_strict(defaults, default=None, return_dtype=pl.String),
            ).alias("direction")
        )

        def members(*cols: str) -> pl.Expr:
            return pl.struct(*cols).struct.json_encode().str.slice(1).str.head(-1)

        versions = {n: class_version(n) for n in CATALOGUE if class_version(n) > 1}
        version_part = pl.col("type").replace_strict(
            {n: f',"class_version":{v}' for n, v in versions.items()},
            default="",
            return_dtype=pl.String,
        )
        encoded = staged.select(
            (pl.int_range(pl.len(), dtype=pl.Int64) + first_line).alias("line_no"),
            "source",
            "event_id",
            pl.coalesce(pl.col("customer_id"), pl.lit(SYSTEM_STREAM_PREFIX) + pl.col("type")).alias(
                "stream"
            ),
            pl.col("type").replace_strict(TOPICS, return_dtype=pl.String).alias("topic"),
            "customer_id",
            "occurred_at",
            "type",
            pl.concat_str(
                members("type", "event_id", "customer_id"),
                pl.lit(',"occurred_at":{"_type_":"datetime_iso","_data_":"'),
                iso_text,
                pl.lit('+00:00"},'),
                members("source", "channel", "direction"),
                pl.lit(',"data":'),
                pl.col("data"),
                version_part,
            ).alias("head"),
            pl.lit(None, dtype=pl.String).alias("pii_plain"),
        )
        return self._stage(encoded, [])

    # -- common tail --------------------------------------------------------------------------

    def _stage(self, encoded: pl.DataFrame | pa.Table, rejections: list[Rejection]) -> Prepared:
        """Staged rows of encoded events (:data:`STAGE_INPUT` columns): repeats of a key inside
        the batch dropped (the first line wins), personal fields encrypted into the body.
        Arrow compute only, so one event costs little more than nothing."""
        table = encoded.to_arrow() if isinstance(encoded, pl.DataFrame) else encoded
        if table.num_rows == 0:
            return Prepared(None, [], rejections)
        table, in_batch_dups = drop_repeated_keys(table.select(STAGE_INPUT.names).cast(STAGE_INPUT))
        tokens = self._encrypt(table)
        pii = pc.if_else(
            pc.is_null(tokens), "", pc.binary_join_element_wise(',"pii":"', tokens, '"', "")
        )
        body = pc.binary_join_element_wise(table.column("head"), pii, "}", "")
        staged = pa.table(
            [
                *(table.column(c) for c in ("line_no", "source", "event_id", "stream", "topic")),
                body,
            ],
            names=list(STAGED_COLUMNS),
        )
        return Prepared(staged.cast(staged_schema()), in_batch_dups, rejections)

    def commit(self, prepared: Prepared) -> BatchResult:
        """Append a prepared batch in one transaction and report what happened to it."""
        outcome = AppendOutcome(accepted=0)
        if prepared.staged is not None:
            outcome = self.store.append_staged(prepared.staged)
        dup_lines = sorted([*prepared.in_batch_duplicates, *outcome.duplicate_lines])
        return BatchResult(
            accepted=outcome.accepted,
            duplicates=len(dup_lines),
            rejected=len(prepared.rejections),
            rejections=list(prepared.rejections),
            duplicate_lines=dup_lines,
            first_position=outcome.first_position,
            last_position=outcome.last_position,
        )

    def _encrypt(self, table: pa.Table) -> pa.Array:
        """The ``pii`` token per row: encrypted personal fields, null where there are none."""
        plain, customers = table.column("pii_plain"), table.column("customer_id")
        rows = pc.indices_nonzero(pc.and_(pc.is_valid(plain), pc.is_valid(customers)))
        if len(rows) == 0:
            return pa.nulls(table.num_rows, pa.string())
        found = self._tokens(customers.take(rows).to_pylist(), plain.take(rows).to_pylist())
        tokens: list[str | None] = [None] * table.num_rows
        for i, token in zip(rows.to_pylist(), found, strict=True):
            tokens[i] = token
        return pa.array(tokens, pa.string())

    def _tokens(self, customers: list[str], texts: list[str]) -> list[str | None]:
        """Each text encrypted under its customer's key; None for a forgotten customer (no
        key: the personal data is dropped)."""
        keys = self.keys.keys_for(sorted(set(customers)))
        out: list[str | None] = []
        for cid, text in zip(customers, texts, strict=True):
            key = keys.get(cid)
            out.append(None if key is None else encrypt(key, cid, text))
        return out

    def close(self) -> None:
        for con in (*self._all, self._reader):
            con.close()


def raw_table(lines: Iterable[tuple[int, str]]) -> pa.Table:
    """A ``(line_no, raw)`` table from Python pairs (for small inputs and tests)."""
    pairs = list(lines)
    return pa.table(
        {
            "line_no": pa.array([p[0] for p in pairs], pa.int64()),
            "raw": pa.array([p[1] for p in pairs], pa.string()),
        }
    )


def commit_in_order(
    ingestor: Ingestor,
    inputs: Iterable[T],
    prepare: Callable[[T], Prepared],
    on_commit: Callable[[Prepared, BatchResult], None] | None = None,
) -> BatchResult:
    """Prepare each input on the ingestor's workers (several at once) and commit the prepared
    batches one at a time, in input order, each in its own transaction. ``inputs`` is iterated
    on the calling thread (a reader need not be thread-safe); DuckDB, polars and the store
    drivers release the GIL, so preparing and committing overlap."""
    total = BatchResult()
    pending: deque[Future[Prepared]] = deque()

    def commit_next() -> None:
        prepared = pending.popleft().result()
        result = ingestor.commit(prepared)
        total.add(result)
        if on_commit:
            on_commit(prepared, result)

    with ThreadPoolExecutor(max_workers=ingestor.workers) as pool:
        try:
            for item in inputs:
                pending.append(pool.submit(prepare, item))
                if len(pending) > ingestor.workers:
                    commit_next()
            while pending:
                commit_next()
        finally:
            for future in pending:
                future.cancel()
    return total


def line_batches(lines: pl.Series, batch_size: int) -> Iterator[pa.Table]:
    """``(line_no, raw)`` tables of up to ``batch_size`` JSON lines (line numbers from 1)."""
    for start in range(0, len(lines), batch_size):
        chunk = lines.slice(start, batch_size)
        yield pa.table(
            {
                "line_no": pa.array(range(start + 1, start + 1 + len(chunk)), pa.int64()),
                "raw": chunk.to_arrow().cast(pa.string()),
            }
        )


def append_radar_lines(
    ingestor: Ingestor, lines: pl.Series, batch_size: int, producer: str
) -> BatchResult:
    """Append JSON envelope lines that radar built itself, validated like any input, in atomic
    pipelined batches. A rejected line is a bug in ``producer``: :class:`RadarError`."""

    def prepare(raw: pa.Table) -> Prepared:
        batch = ingestor.prepare(raw)
        if batch.rejections:
            first = batch.rejections[0]
            raise RadarError(
                f"{producer} built {len(batch.rejections)} invalid event(s) (first: line "
                f"{first.line}, {first.type}: {first.field}: {first.reason})"
            )
        return batch

    return commit_in_order(ingestor, line_batches(lines, batch_size), prepare)


def append_trusted(ingestor: Ingestor, frame: pl.DataFrame, batch_size: int) -> BatchResult:
    """Append a typed frame of radar-built events (see :meth:`Ingestor.prepare_trusted`) in
    atomic pipelined batches."""
    return commit_in_order(
        ingestor,
        range(0, frame.height, batch_size),
        lambda start: ingestor.prepare_trusted(frame.slice(start, batch_size), start + 1),
    )
