"""The action pull queue: leases, no double hand-out, re-hand-out after a lease runs out, and
acknowledgement by the outcome event."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.testclient import TestClient
from service_support import headers, planned_action, service_of


def plan(client: TestClient, *actions: dict[str, Any]) -> None:
    """Append action.planned events as the rules would, and let the live loop pick them up."""
    service = service_of(client)
    results = service.engine.append(list(actions))
    assert all(r.status == "accepted" for r in results)
    service.live.catch_up()


def pull(client: TestClient, keys: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get(
        "/actions", params={"channel": "email", **params}, headers=headers(keys, "appender")
    )
    assert r.status_code == 200, r.text
    actions: list[dict[str, Any]] = r.json()["actions"]
    return actions


def test_two_workers_never_get_the_same_action(client: TestClient, keys: dict[str, str]) -> None:
    plan(client, *(planned_action(f"a-{i}", customer=f"C-{i}") for i in range(40)))
    got: list[list[str]] = []
    lock = threading.Lock()

    def worker() -> None:
        mine: list[str] = []
        while True:
            batch = pull(client, keys, limit=3)
            if not batch:
                break
            mine += [a["action_id"] for a in batch]
        with lock:
            got.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handed = [a for mine in got for a in mine]
    assert sorted(handed) == sorted(f"a-{i}" for i in range(40))
    assert len(handed) == len(set(handed))


def test_only_actions_of_the_asked_channel_are_handed_out(
    client: TestClient, keys: dict[str, str]
) -> None:
    plan(client, planned_action("a-mail"), planned_action("a-sms", channel="sms"))
    assert [a["action_id"] for a in pull(client, keys, limit=10)] == ["a-mail"]


def test_an_action_whose_lease_ran_out_is_handed_out_again(
    client: TestClient, keys: dict[str, str]
) -> None:
    plan(client, planned_action("a-1"))
    first = pull(client, keys, lease_seconds=0.2)
    assert [a["action_id"] for a in first] == ["a-1"]
    assert pull(client, keys) == []
    time.sleep(0.3)
    again = pull(client, keys)
    assert [a["action_id"] for a in again] == ["a-1"]
    assert again[0]["attempts"] == 2
    # the first worker lost its lease: its report is refused
    r = client.post(
        "/actions/a-1/outcome", json={"lease": first[0]["lease"]}, headers=headers(keys, "appender")
    )
    assert r.status_code == 409


def test_an_outcome_appends_its_event_and_settles_the_action(
    client: TestClient, keys: dict[str, str]
) -> None:
    plan(client, planned_action("a-1", customer="C-9"))
    action = pull(client, keys)[0]
    h = headers(keys, "appender")
    r = client.post("/actions/a-1/outcome", json={"lease": action["lease"]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["settled"] is True
    service = service_of(client)
    service.live.catch_up()
    with service.live.read() as con:
        rows = con.execute(
            "SELECT type, customer_id, channel, campaign_id FROM events WHERE action_id = 'a-1' "
            "AND type <> 'action.planned'"
        ).fetchall()
    assert rows == [("campaign.sent", "C-9", "email", "WELCOME-1")]
    assert service.queue.counts() == {"open": 0, "leased": 0, "settled": 1}
    # the settled action is not handed out again, even after its lease would have run out
    assert pull(client, keys, lease_seconds=0.01) == []
    # a resent report is acknowledged without a second event
    again = client.post("/actions/a-1/outcome", json={"lease": action["lease"]}, headers=h)
    assert again.status_code == 200
    assert service.engine.store.count() == 2


def test_a_failed_action_is_recorded_as_a_contact_with_its_outcome(
    client: TestClient, keys: dict[str, str]
) -> None:
    plan(client, planned_action("a-1"))
    lease = pull(client, keys)[0]["lease"]
    r = client.post(
        "/actions/a-1/outcome",
        json={"lease": lease, "status": "failed", "outcome": "bounced"},
        headers=headers(keys, "appender"),
    )
    assert r.json()["event"]["type"] == "contact"
    service = service_of(client)
    service.live.catch_up()
    with service.live.read() as con:
        got = con.execute("SELECT outcome FROM events WHERE type = 'contact'").fetchall()
    assert got == [("bounced",)]


def test_retry_gives_the_action_back_at_once(client: TestClient, keys: dict[str, str]) -> None:
    plan(client, planned_action("a-1"))
    lease = pull(client, keys, lease_seconds=600)[0]["lease"]
    r = client.post(
        "/actions/a-1/outcome",
        json={"lease": lease, "status": "retry"},
        headers=headers(keys, "appender"),
    )
    assert r.json()["released"] is True
    assert [a["action_id"] for a in pull(client, keys)] == ["a-1"]


def test_a_wrong_lease_or_unknown_action_is_refused(
    client: TestClient, keys: dict[str, str]
) -> None:
    plan(client, planned_action("a-1"))
    pull(client, keys)
    h = headers(keys, "appender")
    assert client.post("/actions/a-1/outcome", json={"lease": "x"}, headers=h).status_code == 409
    assert client.post("/actions/zz/outcome", json={"lease": "x"}, headers=h).status_code == 404
    bad = client.get("/actions", params={"channel": "pigeon"}, headers=h)
    assert bad.status_code == 422


def test_actions_open_are_in_the_metrics(client: TestClient, keys: dict[str, str]) -> None:
    plan(client, planned_action("a-1"), planned_action("a-2", customer="C-2"))
    text = client.get("/metrics", headers=headers(keys, "appender")).text
    assert "radar_actions_open 2" in text
    m = client.get("/metrics?format=json", headers=headers(keys, "admin")).json()
    assert m["actions"]["open"] == 2
    assert m["projection_lag_events"] == 0
