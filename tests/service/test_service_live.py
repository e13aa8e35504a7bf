"""The live loop paces its catch-ups while appends stream in, and an appended event is still in
the view within a second."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from factories import purchase
from fastapi.testclient import TestClient
from service_support import headers, planned_action

from radar.engine import build_engine
from radar.service.live import STREAMING_COMMITS, LiveView, pause_after
from radar.service.queue import ActionQueue


def test_after_a_quiet_spell_the_next_catch_up_may_start_at_once() -> None:
    assert pause_after(0, 10, 0.1, min_gap=0.15, lag_target=0.5) == 0.0
    assert pause_after(5, STREAMING_COMMITS - 1, 0.1, min_gap=0.15, lag_target=0.5) == 0.0


def test_while_appends_stream_in_catch_ups_are_paced_to_the_lag_target() -> None:
    assert pause_after(5, STREAMING_COMMITS, 0.1, min_gap=0.15, lag_target=0.5) == pytest.approx(
        0.4
    )
    # a slow catch-up leaves less to wait, but never less than the minimum gap
    assert pause_after(5, 9, 0.45, min_gap=0.15, lag_target=0.5) == pytest.approx(0.15)


def test_under_a_stream_of_appends_each_is_in_the_view_within_a_second(
    client: TestClient, keys: dict[str, str]
) -> None:
    writer, auditor = headers(keys, "appender"), headers(keys, "auditor")
    stop = threading.Event()

    def stream() -> None:  # a steady stream of appends from another client
        i = 0
        while not stop.is_set():
            client.post("/events", json=purchase(1000 + i, customer=f"S-{i}"), headers=writer)
            i += 1
            time.sleep(0.01)

    streamer = threading.Thread(target=stream)
    streamer.start()
    lags = []
    try:
        for i in range(4):
            started = time.monotonic()
            client.post("/events", json=purchase(i, customer=f"L-{i}"), headers=writer)
            while client.get(f"/customers/L-{i}", headers=auditor).status_code != 200:
                assert time.monotonic() - started < 1.0, f"event {i} not in the view after 1 s"
                time.sleep(0.01)
            lags.append(time.monotonic() - started)
    finally:
        stop.set()
        streamer.join()
    assert max(lags) < 1.0, lags


def test_the_live_loop_queues_the_planned_actions_except_those_of_forgotten_customers(
    tmp_path: Path,
) -> None:
    engine = build_engine(data_dir=tmp_path / "data", event_store=None)
    queue = ActionQueue.sqlite(tmp_path / "actions.sqlite")
    live = LiveView(engine, queue)
    engine.append([purchase(1, "C-1"), purchase(2, "C-2")])
    assert live.catch_up() == 2
    assert queue.synced_position() == engine.projector.position()
    assert queue.counts()["open"] == 0
    forgotten = {
        "event_id": "forgotten:C-2",
        "type": "customer.forgotten",
        "customer_id": "C-2",
        "occurred_at": "2026-02-01T11:00:00Z",
        "source": "radar",
        "data": {},
    }
    results = engine.append([planned_action("a-1", "C-1"), planned_action("a-2", "C-2"), forgotten])
    assert all(r.status == "accepted" for r in results), results
    assert live.catch_up() == 3
    assert queue.synced_position() == engine.projector.position()
    assert queue.get("a-1") is not None
    assert queue.get("a-2") is None
    queue.close()
    engine.close()


def _wal_bytes(view_path: Path) -> int:
    wal = Path(f"{view_path}.wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize(("threshold", "saved"), [("1KB", True), ("256MB", False)])
def test_a_catch_up_saves_the_view_only_past_the_checkpoint_threshold(
    tmp_path: Path, threshold: str, saved: bool
) -> None:
    engine = build_engine(data_dir=tmp_path / "data", event_store=None)
    try:
        live = LiveView(engine, checkpoint_threshold=threshold)
        engine.append([purchase(i, customer=f"C-{i}") for i in range(200)])
        assert live.catch_up() == 200
        assert (_wal_bytes(engine.settings.view_path) == 0) is saved
    finally:
        engine.close()


def test_the_live_loop_saves_the_view_in_a_quiet_spell(tmp_path: Path) -> None:
    engine = build_engine(data_dir=tmp_path / "data", event_store=None)
    live = LiveView(engine, interval=0.05)
    live.start()
    try:
        engine.append([purchase(i, customer=f"C-{i}") for i in range(200)])
        live.wake()
        deadline = time.monotonic() + 10
        while live.stats.events_projected < 200 or _wal_bytes(engine.settings.view_path):
            assert time.monotonic() < deadline, "the view was not saved in the quiet spell"
            time.sleep(0.02)
    finally:
        live.stop()
        engine.close()
