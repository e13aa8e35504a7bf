"""POST /events: per-event results, idempotency, limits, and nothing partial stored."""

from __future__ import annotations

import json
import time

from factories import purchase
from fastapi.testclient import TestClient
from service_support import headers, planned_action, service_of


def stored(client: TestClient) -> int:
    return service_of(client).engine.store.count()


def test_a_batch_gets_one_result_per_event(client: TestClient, keys: dict[str, str]) -> None:
    bad = purchase(3, amount="lots")  # type: ignore[arg-type]
    r = client.post(
        "/events", json=[purchase(1), purchase(2), bad], headers=headers(keys, "appender")
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 1)
    assert [x["status"] for x in body["results"]] == ["accepted", "accepted", "rejected"]
    assert body["results"][2]["field"] == "data.amount"
    assert stored(client) == 2


def test_resending_an_event_is_a_duplicate_and_stores_nothing_new(
    client: TestClient, keys: dict[str, str]
) -> None:
    h = headers(keys, "appender")
    assert client.post("/events", json=purchase(1), headers=h).json()["accepted"] == 1
    again = client.post("/events", json=purchase(1), headers=h).json()
    assert again["results"] == [{"index": 0, "status": "duplicate", "event_id": "order-1"}]
    assert stored(client) == 1


def test_malformed_json_is_422_with_a_clear_message(
    client: TestClient, keys: dict[str, str]
) -> None:
    r = client.post("/events", content=b'[{"type": "purchase",', headers=headers(keys, "appender"))
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["detail"]
    assert stored(client) == 0


def test_a_body_that_is_not_an_event_or_list_is_422(
    client: TestClient, keys: dict[str, str]
) -> None:
    for body in (b"42", b'"purchase"', b"[]", b""):
        r = client.post("/events", content=body, headers=headers(keys, "appender"))
        assert r.status_code == 422, body
        assert r.json()["detail"]
    assert stored(client) == 0


def test_a_batch_over_the_limit_is_413_and_nothing_is_stored(
    client: TestClient, keys: dict[str, str]
) -> None:
    events = [purchase(i) for i in range(1001)]
    r = client.post("/events", json=events, headers=headers(keys, "appender"))
    assert r.status_code == 413
    assert "1000" in r.json()["detail"]
    assert stored(client) == 0


def test_a_huge_body_is_413(client: TestClient, keys: dict[str, str]) -> None:
    body = json.dumps([purchase(1)]).encode() + b" " * (17 * 1024 * 1024)
    r = client.post("/events", content=body, headers=headers(keys, "appender"))
    assert r.status_code == 413
    assert stored(client) == 0


def test_an_oversized_event_is_rejected_alone(client: TestClient, keys: dict[str, str]) -> None:
    big = purchase(2)
    big["data"]["product"] = "x" * (70 * 1024)
    r = client.post("/events", json=[purchase(1), big], headers=headers(keys, "appender"))
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "rejected"]
    assert "too large" in results[1]["reason"]
    assert stored(client) == 1


def test_events_radar_writes_itself_cannot_be_appended_over_http(
    client: TestClient, keys: dict[str, str]
) -> None:
    r = client.post("/events", json=planned_action("a-1"), headers=headers(keys, "appender"))
    result = r.json()["results"][0]
    assert result["status"] == "rejected"
    assert result["field"] == "type"
    assert stored(client) == 0


def test_an_appended_event_is_in_the_view_within_a_second(
    client: TestClient, keys: dict[str, str]
) -> None:
    client.post("/events", json=purchase(7, customer="C-live"), headers=headers(keys, "appender"))
    started = time.monotonic()
    status = 404
    while time.monotonic() - started < 1.0 and status != 200:
        status = client.get("/customers/C-live", headers=headers(keys, "auditor")).status_code
        time.sleep(0.02)
    assert status == 200


def test_a_large_group_uses_the_bulk_path_with_the_same_results(
    client: TestClient, keys: dict[str, str]
) -> None:
    appender = service_of(client).appender
    appender.bulk_threshold = 2
    bad = purchase(3)
    bad["data"]["colour"] = "red"
    r = client.post(
        "/events", json=[purchase(1), purchase(1), bad], headers=headers(keys, "appender")
    )
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "duplicate", "rejected"]
    assert results[2]["field"] == "data.colour"
    assert stored(client) == 1
