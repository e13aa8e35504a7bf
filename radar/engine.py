"""The composition root: builds a radar engine from settings. Nothing connects at import time.

``Engine`` is the Python API that operational systems and the CLI use: append events, ingest files,
keep the view caught up, and hand out the DuckDB view to analyses, rules and audits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from radar.domain.envelope import parse_events
from radar.domain.errors import RadarError
from radar.ingest.pipeline import BatchResult, Ingestor, Prepared, Rejection
from radar.privacy.keystore import KeyStore
from radar.projections.projector import CatchUp, Projector, connect_view
from radar.settings import Settings
from radar.store.base import EventStore
from radar.store.factory import open_store

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(slots=True)
class EventResult:
    """The fate of one event given to :meth:`Engine.append` (not frozen: a batch makes one per
    event, and a frozen dataclass takes twice as long to make; treat it as read-only)."""

    index: int
    status: Status
    event_id: str | None = None
    field: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id:
            out["event_id"] = self.event_id
        if self.status == "rejected":
            out |= {"field": self.field, "reason": self.reason}
        return out


@dataclass(frozen=True)
class StagedAppend:
    """The events of one :meth:`Engine.append`, validated and encoded but not stored yet; each
    event's index in the call is its line number in ``prepared``."""

    prepared: Prepared
    #: The rejected events' results, by index.
    rejected: dict[int, EventResult]
    #: (index, event id) of each valid event, in index order.
    valid: list[tuple[int, str | None]]

    @staticmethod
    def of_batch(prepared: Prepared, event_ids: list[str | None]) -> StagedAppend:
        """A batch validated by the set-based path (line numbers: the events' indexes), with
        the event id each event gave."""
        rejected = {
            r.line: EventResult(r.line, "rejected", r.event_id, r.field, r.reason)
            for r in prepared.rejections
        }
        return StagedAppend(
            prepared, rejected, [(i, e) for i, e in enumerate(event_ids) if i not in rejected]
        )

    def results(self, outcome: BatchResult) -> list[EventResult]:
        """One result per event, in order, once the store has taken the staged events."""
        duplicates = set(outcome.duplicate_lines)
        stored = [
            EventResult(i, "duplicate" if i in duplicates else "accepted", event_id)
            for i, event_id in self.valid
        ]
        if not self.rejected:
            return stored  # the valid events are all the events, in order
        results = {**self.rejected, **{r.index: r for r in stored}}
        return [results[i] for i in sorted(results)]


class Engine:
    """One radar: an event store, a key store and a DuckDB view, built from :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: EventStore | None = None
        self._keys: KeyStore | None = None
        self._ingestor: Ingestor | None = None
        self._view: duckdb.DuckDBPyConnection | None = None
        self._projector: Projector | None = None

    # -- parts, made on first use -------------------------------------------------------------

    @property
    def store(self) -> EventStore:
        if self._store is None:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._store = open_store(self.settings.store_url)
        return self._store

    @property
    def keys(self) -> KeyStore:
        if self._keys is None:
            self._keys = KeyStore(self.settings.keys_path)
        return self._keys

    @property
    def ingestor(self) -> Ingestor:
        if self._ingestor is None:
            self._ingestor = Ingestor(self.store, self.keys)
        return self._ingestor

    @property
    def view(self) -> duckdb.DuckDBPyConnection:
        """The read-write DuckDB view (one process at a time may hold it)."""
        if self._view is None:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                self._view = connect_view(
                    self.settings.view_path, memory_limit=self.settings.memory_limit
                )
            except duckdb.IOException as e:
                raise RadarError(
                    f"the view {self.settings.view_path} is in use by another radar process "
                    f"(DuckDB allows one writer per file): {e}"
                ) from e
        return self._view

    @property
    def projector(self) -> Projector:
        if self._projector is None:
            self._projector = Projector(self.store, self.view)
        return self._projector

    # -- operational CRM: appending -----------------------------------------------------------

    def append(self, events: Iterable[Mapping[str, Any]]) -> list[EventResult]:
        """Validate and append a few events atomically (the valid ones); one result per event.

        Invalid events are rejected with the field and reason; valid ones are stored in one
        transaction; an event whose (source, event_id) is already stored is a duplicate.
        """
        return self.commit_append(self.stage_append(events))

    def stage_append(self, events: Iterable[Mapping[str, Any]]) -> StagedAppend:
        """The first half of :meth:`append`: validate and encode, without touching the store
        (so a caller may stage the next events while earlier ones are committed)."""
        valid, refused = parse_events(events)
        rejected = {
            r.index: EventResult(r.index, "rejected", r.event_id, r.field, r.reason)
            for r in refused
        }
        prepared = self.ingestor.stage_events([e for _, e in valid], [i for i, _ in valid])
        return StagedAppend(prepared, rejected, [(i, e.event_id) for i, e in valid])

    def commit_append(self, staged: StagedAppend) -> list[EventResult]:
        """The second half of :meth:`append`: store the staged events in one transaction."""
        return staged.results(self.ingestor.commit(staged.prepared))

    def ingest_file(
        self, path: Path, *, progress: Callable[[int], None] | None = None
    ) -> BatchResult:
        """Import a JSONL, CSV or Parquet file batch by batch (each batch atomic)."""
        from radar.ingest.files import ingest_file

        return ingest_file(self.ingestor, path, self.settings.batch_size, progress)

    # -- stored data: the view ----------------------------------------------------------------

    def project(self) -> CatchUp:
        """Catch the view up with the log."""
        return self.projector.catch_up()

    def rebuild(self) -> CatchUp:
        """Rebuild the view from the log."""
        return self.projector.rebuild()

    def close(self) -> None:
        for part in (self._ingestor, self._store, self._keys, self._view):
            if part is not None:
                part.close()
        self._ingestor = self._store = self._keys = self._view = self._projector = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_engine(settings: Settings | None = None, **overrides: Any) -> Engine:
    """The engine for ``settings`` (default: from the environment), with optional overrides."""
    base = settings or Settings()
    if overrides:
        base = base.model_copy(update=overrides)
    return Engine(base)


__all__ = ["Engine", "EventResult", "Rejection", "build_engine"]
