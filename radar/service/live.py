"""The live loop: the service keeps its DuckDB view caught up with the log in the background.

The service process owns the view (DuckDB allows one writer per file). All access to it goes
through :meth:`LiveView.read`, which holds one lock, so the background catch-up and the request
handlers never use the connection at the same time. After each catch-up that applied events the
loop also copies new ``action.planned`` events into the action queue and, when
``radar.rules.live`` offers ``run_event_rules(engine)``, runs the rules meant to react to events.

An append wakes the loop. A catch-up has a fixed cost (tens of milliseconds, whatever it
applies), and it runs in the same process as the appends, so under a steady stream of appends
(several commits while one catch-up ran) the loop paces itself: after a catch-up that took ``d``
seconds it waits ``lag_target - d`` (at least ``min_gap``) before the next one. An event appended
just after a catch-up began is then in the view about ``lag_target`` plus one catch-up later —
well within a second — while the view costs the appends far less CPU than a catch-up after every
commit. An append after a quiet spell is caught up at once.

The view's commits write its write-ahead log; a checkpoint (the log written into the file) is left
to quiet spells — the first loop turn that no append woke — rather than to the commit that
crosses DuckDB's default 16 MB, since a checkpoint rewrites the ``customers`` row groups that
every catch-up touches (see :data:`CHECKPOINT_THRESHOLD`).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from radar.engine import Engine
from radar.ingest.sql_codec import lit
from radar.service.queue import COLUMNS, ActionQueue

log = logging.getLogger("radar.service")

RULES_HOOK = ("radar.rules.live", "run_event_rules")
#: Commits during one catch-up that mean appends are streaming in (and catch-ups are paced).
STREAMING_COMMITS = 2
#: Write-ahead log size at which a commit of the view checkpoints (DuckDB's default is 16 MB).
#: A checkpoint rewrites the changed row groups of ``customers``, which every catch-up touches:
#: at the default, a steady stream of appends paid one in every few catch-ups, and it doubled
#: their cost. The live loop checkpoints in quiet spells instead (and DuckDB on close).
CHECKPOINT_THRESHOLD = "256MB"


@dataclass
class LiveStats:
    catch_ups: int = 0
    events_projected: int = 0
    last_catch_up: float = 0.0
    last_error: str = ""


class LiveView:
    """The view, a lock around it, and the background catch-up thread."""

    def __init__(
        self,
        engine: Engine,
        queue: ActionQueue | None = None,
        *,
        interval: float = 0.25,
        min_gap: float = 0.15,
        lag_target: float = 0.5,
        checkpoint_threshold: str = CHECKPOINT_THRESHOLD,
    ) -> None:
        self.engine = engine
        self._unsaved = False  # the view has changes since its last checkpoint
        self.queue = queue
        self.interval = interval
        self.min_gap = min(min_gap, interval)
        self.lag_target = max(lag_target, self.min_gap)
        self.stats = LiveStats()
        self._next_at = 0.0  # monotonic time before which the loop does not catch up again
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._wakes = 0  # appends committed since the service started (see wake)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rules_hook: Callable[[Engine], object] | None = _find_rules_hook()
        with self.read() as view:
            view.execute(f"SET checkpoint_threshold = {lit(checkpoint_threshold)}")

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The view connection, held exclusively for the block."""
        with self._lock:
            yield self.engine.view

    def position(self) -> int:
        with self._lock:
            return self.engine.projector.position()

    # -- catching up --------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply new events to the view, fill the action queue, run event rules; events applied."""
        with self._lock:
            result = self.engine.project()
            applied = result.events
            if self._rules_hook is not None and applied:
                self._rules_hook(self.engine)
                result = self.engine.project()
                applied += result.events
            if self.queue is not None:
                self._sync_queue(result.position)
        self._unsaved = self._unsaved or applied > 0
        self.stats.catch_ups += 1
        self.stats.events_projected += applied
        self.stats.last_catch_up = time.time()
        return applied

    def _sync_queue(self, upto: int) -> None:
        """Copy into the queue the actions planned up to log position ``upto`` (where the view
        now is) that it has not seen yet."""
        assert self.queue is not None
        after = self.queue.synced_position()
        if upto <= after:
            return
        self.queue.add(self._planned_actions(after, upto), upto)

    def _planned_actions(self, after: int, upto: int) -> list[tuple[Any, ...]]:
        """The deliverable ``action.planned`` events at log positions in (``after``, ``upto``],
        in log order, as rows in :data:`COLUMNS` order (none for a forgotten customer).

        Most catch-ups bring no action, so a cheap existence check comes first: the full query
        (a join with ``customers``) costs DuckDB about three times as much to plan, at every
        catch-up of the live loop.
        """
        view = self.engine.view
        planned = f"type = 'action.planned' AND position > {int(after)} AND position <= {int(upto)}"
        if not view.execute(f"SELECT EXISTS (FROM events WHERE {planned})").fetchall()[0][0]:
            return []
        return view.execute(
            f"SELECT {', '.join(COLUMNS[:-1])}, strftime(occurred_at, '%Y-%m-%dT%H:%M:%SZ') "
            f"FROM events e WHERE {planned} AND channel IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM customers c WHERE c.customer_id = e.customer_id AND c.forgotten) "
            "ORDER BY position"
        ).fetchall()

    # -- the thread ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Catch up soon: events were appended (called by the appender after each commit)."""
        self._wakes += 1
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="radar-live", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(self.interval)
            self._wake.clear()
            self._stop.wait(max(0.0, self._next_at - time.monotonic()))
            if not self._stop.is_set():
                self._paced_catch_up()
                if not woken and self._unsaved:  # a quiet spell: save the view now
                    self._checkpoint()

    def _checkpoint(self) -> None:
        """Write the view's changes from its write-ahead log into the file."""
        try:
            with self.read() as view:
                view.execute("CHECKPOINT")
            self._unsaved = False
        except Exception:  # the next quiet spell tries again
            log.exception("checkpoint of the view failed")

    def _paced_catch_up(self) -> None:
        """One catch-up, and when the next may start (see the module's docstring)."""
        started, wakes = time.monotonic(), self._wakes
        try:
            applied = self.catch_up()
            self.stats.last_error = ""
        except Exception as e:  # keep serving; report it in /health
            self.stats.last_error = f"{type(e).__name__}: {e}"
            log.exception("catch-up failed")
            self._next_at = time.monotonic() + 1.0
            return
        ended = time.monotonic()
        pause = pause_after(
            applied, self._wakes - wakes, ended - started, self.min_gap, self.lag_target
        )
        self._next_at = ended + pause


def pause_after(
    applied: int, commits: int, seconds: float, min_gap: float, lag_target: float
) -> float:
    """Seconds to wait before the next catch-up, after one that applied ``applied`` events in
    ``seconds`` while ``commits`` appends were committed: none after a quiet spell; while appends
    stream in, whatever keeps an appended event's wait for the view near ``lag_target``."""
    if applied == 0 or commits < STREAMING_COMMITS:
        return 0.0
    return max(min_gap, lag_target - seconds)


def _find_rules_hook() -> Callable[[Engine], object] | None:
    module_name, function = RULES_HOOK
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return None
        raise
    hook = getattr(module, function, None)
    return hook if callable(hook) else None
