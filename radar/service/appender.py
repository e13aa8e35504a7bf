"""Group commit for the HTTP append path.

Every store transaction has a fixed cost of a few milliseconds, so one transaction per request
would cap single-event appends far below 1k/s. The :class:`Appender` queues the requests that
arrive while a transaction is running and commits them together in the next one: each request
keeps its own per-event results, and a batch request is still all-or-nothing for its valid events
(the group is one transaction). Small groups go through the engine's Python path (per-event
pydantic validation); large ones through the set-based ingest path (DuckDB validation), whose
fixed cost is higher but whose cost per event is far lower. Both are the same validator
(``tests/contract`` checks that they agree).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from radar.domain.envelope import MAX_EVENT_BYTES
from radar.engine import Engine, EventResult, Status
from radar.ingest.pipeline import BatchResult

#: Groups of at least this many events use the set-based ingest path.
BULK_THRESHOLD = 1_500
#: Most events committed in one transaction.
MAX_GROUP = 20_000


@dataclass
class _Request:
    """One request: its events as parsed objects and as compact JSON text."""

    events: list[Any]
    texts: list[str]
    future: Future[list[EventResult]] = field(default_factory=Future)


@dataclass
class AppendStats:
    """Counters for /metrics."""

    requests: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    transactions: int = 0
    last_position: int = 0


class Appender:
    """A writer thread that commits queued append requests in groups."""

    def __init__(
        self,
        engine: Engine,
        *,
        bulk_threshold: int = BULK_THRESHOLD,
        refused_types: frozenset[str] = frozenset(),
    ) -> None:
        self.engine = engine
        self.refused_types = refused_types
        self.bulk_threshold = bulk_threshold
        self.stats = AppendStats()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._on_commit: list[Any] = []

    def on_commit(self, callback: Any) -> None:
        """Call ``callback()`` after each committed group (e.g. to wake the live loop)."""
        self._on_commit.append(callback)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="radar-appender", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(self, events: list[Any], texts: list[str]) -> Future[list[EventResult]]:
        """Queue one request; the future gives one result per event, in order."""
        request = _Request(events, texts)
        if self._thread is None:
            self._commit([request])
        else:
            self._queue.put(request)
        return request.future

    # -- the writer ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            size = len(first.events)
            stop = False
            while size < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
                size += len(more.events)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Request]) -> None:
        try:
            results = self._append(group)
        except BaseException as e:  # the group's transaction failed: nothing of it is stored
            for request in group:
                request.future.set_exception(e)
            return
        offset = 0
        for request in group:
            n = len(request.events)
            mine = [
                EventResult(r.index - offset, r.status, r.event_id, r.field, r.reason)
                for r in results[offset : offset + n]
            ]
            request.future.set_result(mine)
            offset += n
        for callback in self._on_commit:
            callback()

    def _append(self, group: list[_Request]) -> list[EventResult]:
        events = [e for r in group for e in r.events]
        texts = [t for r in group for t in r.texts]
        out: dict[int, EventResult] = {}
        keep: list[int] = []
        for i, (event, text) in enumerate(zip(events, texts, strict=True)):
            refusal = self._refusal(event, text)
            if refusal is None:
                keep.append(i)
            else:
                out[i] = EventResult(i, "rejected", _event_id(event), *refusal)
        if len(keep) >= self.bulk_threshold:
            inner = self._bulk([texts[i] for i in keep], [events[i] for i in keep])
        else:
            inner = self.engine.append([events[i] for i in keep]) if keep else []
        for j, r in enumerate(inner):
            i = keep[j]
            out[i] = EventResult(i, r.status, r.event_id, r.field, r.reason)
        results = [out[i] for i in range(len(events))]
        self._count(group, results)
        return results

    def _refusal(self, event: Any, text: str) -> tuple[str, str] | None:
        """(field, reason) when the service refuses an event before validation."""
        if len(text) > MAX_EVENT_BYTES or len(text.encode("utf-8")) > MAX_EVENT_BYTES:
            return "", f"event too large (more than {MAX_EVENT_BYTES // 1024} KiB of JSON)"
        if isinstance(event, dict):
            kind = event.get("type")
            if isinstance(kind, str) and kind in self.refused_types:
                return "type", f"{kind!r} events are written by radar itself, not appended"
        return None

    def _bulk(self, texts: list[str], events: list[Any]) -> list[EventResult]:
        raw = pa.table(
            {
                "line_no": pa.array(range(len(texts)), pa.int64()),
                "raw": pa.array(texts, pa.string()),
            }
        )
        result: BatchResult = self.engine.ingestor.ingest_raw(raw)
        rejected = {r.line: r for r in result.rejections}
        duplicates = set(result.duplicate_lines)
        out: list[EventResult] = []
        for i in range(len(texts)):
            r = rejected.get(i)
            if r is not None:
                out.append(EventResult(i, "rejected", r.event_id, r.field, r.reason))
            else:
                status: Status = "duplicate" if i in duplicates else "accepted"
                out.append(EventResult(i, status, _event_id(events[i])))
        return out

    def _count(self, group: list[_Request], results: list[EventResult]) -> None:
        s = self.stats
        s.requests += len(group)
        s.events += len(results)
        s.transactions += 1
        for r in results:
            if r.status == "accepted":
                s.accepted += 1
            elif r.status == "duplicate":
                s.duplicates += 1
            else:
                s.rejected += 1


def _event_id(raw: object) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("event_id")
        return value if isinstance(value, str) else None
    return None
