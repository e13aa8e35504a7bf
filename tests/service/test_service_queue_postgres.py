"""The action queue on PostgreSQL: several service processes share it, and no action is leased
twice (needs RADAR_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from radar.service.queue import ActionQueue

URL = os.environ.get("RADAR_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="RADAR_TEST_POSTGRES_URL is not set"),
]


def test_queues_of_several_processes_never_lease_an_action_twice() -> None:
    assert URL is not None
    channel = f"test-{uuid.uuid4().hex[:8]}"  # a channel of its own: other runs do not interfere
    queues = [ActionQueue.postgres(URL) for _ in range(4)]
    try:
        rows = [
            (f"{channel}-{i}", f"C-{i}", channel, i, "r", None, None, None, None)
            for i in range(200)
        ]
        queues[0].add(rows, 0)
        queues[1].add(rows[:50], 0)  # another process offering the same actions keeps them
        got: list[str] = []
        lock = threading.Lock()

        def worker(q: ActionQueue) -> None:
            while batch := q.claim(channel, limit=7, lease_seconds=60):
                with lock:
                    got.extend(a.action_id for a in batch)

        threads = [threading.Thread(target=worker, args=(q,)) for q in queues]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == sorted(r[0] for r in rows)
        assert len(got) == len(set(got))
    finally:
        for q in queues:
            q._run("DELETE FROM radar_action_queue WHERE channel = ?", (channel,))
            q.close()
