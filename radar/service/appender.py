"""Group commit for the HTTP append path.

Every store transaction has a fixed cost of a few milliseconds, so one transaction per request
would cap single-event appends far below 1k/s. The :class:`Appender` queues the requests that
arrive while a transaction is running and commits them together in the next one: each request
keeps its own per-event results, and a batch request is still all-or-nothing for its valid events
(the group is one transaction). Small groups go through the engine's Python path (per-event
pydantic validation); large ones through the set-based ingest path (DuckDB validation), whose
fixed cost is higher but whose cost per event is far lower. Both are the same validator
(``tests/contract`` checks that they agree).

Two threads share the work: the stager gathers a group and validates and encodes it, the
committer stores it. A batch is staged while the group before it is being committed; a small
request (a single event) first waits until the committer has stored what it was given, so that
the single events arriving meanwhile join the same transaction. Groups are stored in the order
they were gathered.

Both threads do as little per event as they can: a request with nothing to refuse is passed on
whole, each result is made once, with its index in its own request (a group of one request, the
common case for batches, reuses the engine's results as they are).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, cast

import orjson
import pyarrow as pa

from radar.domain.envelope import MAX_EVENT_BYTES, given_event_id
from radar.engine import Engine, EventResult, StagedAppend
from radar.store.base import SMALL_BATCH_ROWS

#: Groups of at least this many events use the set-based ingest path. Its DuckDB statements cost
#: a fixed ≈ 34 ms of planning plus ≈ 8 µs per event, the Python path ≈ 16 µs per event under the
#: interpreter lock: they cross near 4k events (1.5k made the service's 2k-event groups slower).
BULK_THRESHOLD = 4_000
#: Most events committed in one transaction.
MAX_GROUP = 20_000


@dataclass
class _Request:
    """One request: its events as parsed objects and as compact JSON (UTF-8 bytes)."""

    events: list[Any]
    texts: list[bytes]
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

    def count(self, results: Sequence[Sequence[EventResult]]) -> None:
        """Add one committed group: the results of each of its requests."""
        self.requests += len(results)
        self.transactions += 1
        for mine in results:
            self.events += len(mine)
            for r in mine:
                if r.status == "accepted":
                    self.accepted += 1
                elif r.status == "duplicate":
                    self.duplicates += 1
                else:
                    self.rejected += 1


@dataclass
class _Group:
    """The requests of one transaction, with the events the service lets through to the
    validator (``kept``) and where each came from (``origin``: request and index in it)."""

    requests: list[_Request]
    results: list[list[EventResult | None]]
    kept: list[Any] = field(default_factory=list)
    kept_texts: list[bytes] = field(default_factory=list)
    origin: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Staged:
    """A group validated and encoded (its kept events, in ``group.kept`` order), waiting for
    its transaction."""

    group: _Group
    append: StagedAppend


class Appender:
    """Two threads that commit queued append requests in groups: the stager validates and
    encodes a group while the committer stores the one before it (a pipeline of depth one, so
    validation, which mostly runs in DuckDB or pydantic, overlaps the store's transaction)."""

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
        self._staged: queue.Queue[_Staged | None] = queue.Queue(maxsize=1)
        self._in_store = 0  # groups handed to the committer and not stored yet
        self._store_free = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._on_commit: list[Callable[[], object]] = []

    def on_commit(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` after each committed group (e.g. to wake the live loop)."""
        self._on_commit.append(callback)

    def start(self) -> None:
        """Start the stager and committer threads (without them, :meth:`submit` commits at
        once)."""
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._stage_loop, name="radar-stager", daemon=True),
                threading.Thread(target=self._commit_loop, name="radar-committer", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the threads."""
        if self._threads:
            self._queue.put(None)
            for thread in self._threads:
                thread.join(timeout=30)
            self._threads = []

    def submit(self, events: list[Any], texts: list[bytes]) -> Future[list[EventResult]]:
        """Queue one request; the future gives one result per event, in order."""
        request = _Request(events, texts)
        if not self._threads:
            staged = self._stage_group([request])
            if staged is not None:
                self._commit(staged)
        else:
            self._queue.put(request)
        return request.future

    # -- the stager ---------------------------------------------------------------------------

    def _stage_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._staged.put(None)
                return
            if len(first.events) < SMALL_BATCH_ROWS:
                self._wait_for_store()
            requests, stop = self._gather(first)
            staged = self._stage_group(requests)
            if staged is not None:
                with self._store_free:
                    self._in_store += 1
                self._staged.put(staged)  # waits while the committer is busy with one
            if stop:
                self._staged.put(None)
                return

    def _wait_for_store(self) -> None:
        """Wait until the committer has stored every group handed to it. Small requests
        (single events) gain nothing from being staged early, but every transaction has a fixed
        cost: waiting lets the requests that arrive meanwhile join the next group."""
        with self._store_free:
            self._store_free.wait_for(lambda: self._in_store == 0)

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """``first`` and the requests queued behind it, up to :data:`MAX_GROUP` events; and
        whether the stop sign was among them."""
        group = [first]
        size = len(first.events)
        while size < MAX_GROUP:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return group, False
            if more is None:
                return group, True
            group.append(more)
            size += len(more.events)
        return group, False

    def _stage_group(self, requests: list[_Request]) -> _Staged | None:
        """Refuse, validate and encode the events of a group; None (each request answered with
        the error) when that fails."""
        try:
            group = self._sort(requests)
            if len(group.kept) >= self.bulk_threshold:
                return _Staged(group, self._stage_bulk(group))
            return _Staged(group, self.engine.stage_append(group.kept))
        except BaseException as e:
            _fail(requests, e)
            return None

    def _sort(self, requests: list[_Request]) -> _Group:
        """Split a group's events into those the service refuses (with their results) and
        those it passes on to the validator."""
        group = _Group(requests, [[None] * len(r.events) for r in requests])
        for r, request in enumerate(requests):
            if not self._refuses_any(request):  # the common case, checked in bulk
                group.kept.extend(request.events)
                group.kept_texts.extend(request.texts)
                group.origin.extend(zip(repeat(r), range(len(request.events))))
                continue
            for i, (event, text) in enumerate(zip(request.events, request.texts, strict=True)):
                refusal = self._refusal(event, text)
                if refusal is None:
                    group.kept.append(event)
                    group.kept_texts.append(text)
                    group.origin.append((r, i))
                else:
                    event_id = given_event_id(event)
                    group.results[r][i] = EventResult(i, "rejected", event_id, *refusal)
        return group

    def _refuses_any(self, request: _Request) -> bool:
        """Whether :meth:`_refusal` refuses any event of ``request``."""
        return any(
            self._refusal(event, text) is not None
            for event, text in zip(request.events, request.texts, strict=True)
        )

    def _refusal(self, event: Any, text: bytes) -> tuple[str, str] | None:
        """(field, reason) when the service refuses an event before validation."""
        if len(text) > MAX_EVENT_BYTES:
            return "", f"event too large (more than {MAX_EVENT_BYTES // 1024} KiB of JSON)"
        if isinstance(event, dict):
            kind = event.get("type")
            if isinstance(kind, str) and kind in self.refused_types:
                return "type", f"{kind!r} events are written by radar itself, not appended"
        return None

    def _stage_bulk(self, group: _Group) -> StagedAppend:
        """Validate and encode the kept events through the set-based ingest path."""
        texts = group.kept_texts
        raw = pa.table(
            {
                "line_no": pa.array(range(len(texts)), pa.int64()),
                "raw": pa.array(texts, pa.string()),
            }
        )
        prepared = self.engine.ingestor.prepare(raw)
        return StagedAppend.of_batch(prepared, [given_event_id(e) for e in group.kept])

    # -- the committer ------------------------------------------------------------------------

    def _commit_loop(self) -> None:
        while True:
            staged = self._staged.get()
            if staged is None:
                return
            try:
                self._commit(staged)
            finally:
                with self._store_free:
                    self._in_store -= 1
                    self._store_free.notify_all()

    def _commit(self, staged: _Staged) -> None:
        """Store one staged group in one transaction and answer each request's future."""
        group = staged.group
        try:
            stored = self.engine.commit_append(staged.append)
        except BaseException as e:  # the group's transaction failed: nothing of it is stored
            _fail(group.requests, e)
            return
        if len(group.requests) == 1 and len(stored) == len(group.requests[0].events):
            done = [stored]  # one request, nothing refused: the results are its own
        else:
            for result, (r, i) in zip(stored, group.origin, strict=True):
                result.index = i  # its index in its own request
                group.results[r][i] = result
            done = [_complete(mine) for mine in group.results]
        self.stats.count(done)
        for request, mine in zip(group.requests, done, strict=True):
            request.future.set_result(mine)
        for callback in self._on_commit:
            callback()


def _fail(requests: list[_Request], error: BaseException) -> None:
    """Answer every request of a group with ``error`` (nothing of the group is stored)."""
    for request in requests:
        request.future.set_exception(error)


def _complete(results: list[EventResult | None]) -> list[EventResult]:
    """The results of one request, once every event has one (a gap would be a bug)."""
    if any(r is None for r in results):
        raise RuntimeError("an event of the group got no result")
    return cast(list[EventResult], results)


def event_text(event: Any) -> bytes:
    """The compact JSON of one parsed event, as :meth:`Appender.submit` takes it (its size is
    checked; the bulk path parses it)."""
    try:
        return orjson.dumps(event)
    except TypeError:  # e.g. an integer beyond 64 bits: let the validator name the field
        return b"{}"
