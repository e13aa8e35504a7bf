"""The running service: one engine and the parts the HTTP layer needs around it.

:class:`Service` owns the engine (and so the DuckDB view), the API key ring, the action queue,
the live loop that keeps the view caught up, and the group-commit appender. ``start()`` launches
the background threads; ``close()`` stops them and releases every connection. Nothing is opened
before the service is built (``create_app`` builds it when the application starts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from radar.domain.catalogue import CATALOGUE
from radar.engine import Engine
from radar.service.appender import Appender
from radar.service.auth import KeyRing
from radar.service.live import LiveView
from radar.service.queue import ActionQueue

#: Event types an HTTP client may not append: radar writes them itself.
RADAR_WRITTEN = frozenset(n for n, t in CATALOGUE.items() if t.written_by == "radar")


@dataclass(frozen=True)
class ServiceOptions:
    """Limits and timings of the HTTP service."""

    max_batch: int = 1000
    """Most events in one ``POST /events`` request (more is 413)."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body (more is 413)."""
    lease_seconds: float = 60.0
    """Default lease of a pulled action."""
    max_lease_seconds: float = 3600.0
    live_interval: float = 0.25
    """Seconds between catch-ups when nothing wakes the live loop."""
    live_lag_target: float = 0.5
    """Seconds within which the live loop aims to have an appended event in the view; under a
    steady stream of appends it paces its catch-ups to this (see :mod:`radar.service.live`)."""
    background: bool = True
    """Run the live loop and the appender in threads (off: synchronous, for some tests)."""


class Service:
    """An engine served over HTTP, with its key ring, action queue, live loop and appender."""

    def __init__(self, engine: Engine, options: ServiceOptions | None = None) -> None:
        self.engine = engine
        self.options = options or ServiceOptions()
        settings = engine.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.keyring = KeyRing.in_folder(settings.data_dir)
        self.queue = ActionQueue.for_store(settings.store_url, settings.data_dir)
        self.live = LiveView(
            engine,
            self.queue,
            interval=self.options.live_interval,
            lag_target=self.options.live_lag_target,
        )
        self.appender = Appender(engine, refused_types=RADAR_WRITTEN)
        self.appender.on_commit(self.live.wake)
        self.live.catch_up()

    def start(self) -> None:
        if self.options.background:
            self.appender.start()
            self.live.start()

    def close(self) -> None:
        self.appender.stop()
        self.live.stop()
        for part in (self.queue, self.keyring):
            part.close()
        self.engine.close()


EngineFactory = Callable[[], Engine]
