"""The live loop paces its catch-ups while appends stream in, and an appended event is still in
the view within a second."""

from __future__ import annotations

import threading
import time

import pytest
from factories import purchase
from fastapi.testclient import TestClient
from service_support import headers

from radar.service.live import STREAMING_COMMITS, pause_after


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
