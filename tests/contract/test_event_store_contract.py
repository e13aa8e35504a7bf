"""The event store contract, written once and run against every backend.

``sqlite`` always runs (a file in tmp); ``postgres`` runs when ``RADAR_TEST_POSTGRES_URL`` is set
(each test gets a fresh schema, dropped afterwards), otherwise it is skipped with the reason shown
by ``pytest -ra``. Events go in through the real :class:`~radar.ingest.pipeline.Ingestor` (or the
store directly where a test needs a staged batch) and are read back through the store and through
the eventsourcing library's own recorder and mapper.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow as pa
import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from factories import purchase

from radar.domain.events import EVENT_CLASSES, TOPICS, RecordedEvent
from radar.ingest.pipeline import BatchResult, Ingestor, raw_table
from radar.privacy.keystore import KeyStore
from radar.store.base import READ_COLUMNS, EventStore, staged_schema
from radar.store.sqlite_store import SQLiteEventStore

POSTGRES_ENV = "RADAR_TEST_POSTGRES_URL"
READ_TYPES = [pa.int64(), pa.string(), pa.int64(), pa.string(), pa.binary()]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "sqlite":
        sqlite = SQLiteEventStore(tmp_path / "events.sqlite")
        yield sqlite
        sqlite.close()
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} not set: PostgreSQL contract tests skipped")
    import psycopg

    from radar.store.postgres_store import PostgresEventStore

    schema = f"radar_test_{uuid.uuid4().hex[:12]}"
    postgres = PostgresEventStore(url, table=f"{schema}.stored_events")
    try:
        yield postgres
    finally:
        postgres.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def ingestor(store: EventStore, tmp_path: Path) -> Iterator[Ingestor]:
    keys = KeyStore(tmp_path / "keys.sqlite")
    ing = Ingestor(store, keys)
    yield ing
    ing.close()
    keys.close()


def ingest(ingestor: Ingestor, events: list[dict[str, Any]]) -> BatchResult:
    return ingestor.ingest_raw(raw_table((i, json.dumps(e)) for i, e in enumerate(events)))


def registered(customer: str) -> dict[str, Any]:
    return {
        "event_id": f"reg-{customer}",
        "type": "customer.registered",
        "customer_id": customer,
        "occurred_at": "2025-12-31T09:00:00Z",
        "source": "crm",
        "channel": "web",
        "data": {"name": "Ada Lovelace", "email": "ada@example.com", "city": "Utrecht"},
    }


def contact(i: int, customer: str) -> dict[str, Any]:
    return {
        "event_id": f"call-{i}",
        "type": "contact",
        "customer_id": customer,
        "occurred_at": "2026-02-01T12:30:00+01:00",
        "source": "callcentre",
        "channel": "phone",
        "direction": "inbound",
        "data": {"reason": "invoice_question", "outcome": "resolved"},
    }


def event_ids(table: pa.Table) -> list[str]:
    return [json.loads(s)["event_id"] for s in table.column("state").to_pylist()]


def library_mapper() -> Mapper[Any]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def staged(rows: list[tuple[str, str, str]]) -> pa.Table:
    """A staged batch of ``(source, event_id, stream)`` purchases, line numbers 0…n-1."""
    body = '"type":"purchase","event_id":"x","data":{}}'
    return pa.table(
        {
            "line_no": list(range(len(rows))),
            "source": [r[0] for r in rows],
            "event_id": [r[1] for r in rows],
            "stream": [r[2] for r in rows],
            "topic": [TOPICS["purchase"]] * len(rows),
            "body": [body] * len(rows),
        }
    ).cast(staged_schema())


# -- round trip through the library -----------------------------------------------------------


def test_stored_events_are_read_back_by_the_library_mapper_as_radar_domain_events(
    store: EventStore, ingestor: Ingestor
) -> None:
    before = datetime.now(UTC)
    result = ingest(ingestor, [registered("C-1"), purchase(1, "C-1", 49.95), contact(7, "C-1")])
    assert (result.accepted, result.rejected) == (3, 0)

    mapper = library_mapper()
    recorder: Any = store.recorder  # type: ignore[attr-defined]
    notifications = recorder.select_notifications(start=1, limit=10)
    decoded = [cast(RecordedEvent, mapper.to_domain_event(n)) for n in notifications]
    by_id = {e.event_id: e for e in decoded}
    assert set(by_id) == {"reg-C-1", "order-1", "call-7"}

    bought = by_id["order-1"]
    assert type(bought) is EVENT_CLASSES["purchase"]
    assert bought.originator_id == "C-1"
    assert bought.customer_id == "C-1"
    assert bought.source == "webshop"
    assert bought.occurred_at == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert float(bought.data["amount"]) == 49.95
    assert bought.data["order_id"] == "1"
    assert before <= bought.timestamp <= datetime.now(UTC)

    called = by_id["call-7"]
    assert type(called) is EVENT_CLASSES["contact"]
    assert (called.channel, called.direction) == ("phone", "inbound")
    assert called.data["reason"] == "invoice_question"
    assert called.occurred_at == datetime(2026, 2, 1, 11, 30, tzinfo=UTC)

    joined = by_id["reg-C-1"]
    assert type(joined) is EVENT_CLASSES["customer.registered"]
    assert joined.pii is not None and "ada@example.com" not in joined.pii  # encrypted

    history = [
        cast(RecordedEvent, mapper.to_domain_event(s)) for s in recorder.select_events("C-1")
    ]
    assert [e.originator_version for e in history] == [1, 2, 3]
    assert {e.event_id for e in history} == set(by_id)


def test_reads_have_the_read_columns_and_their_types(store: EventStore, ingestor: Ingestor) -> None:
    ingest(ingestor, [purchase(i, f"C-{i % 2}") for i in range(4)])
    for table in (store.read_after(0, 10), store.read_range(0, 4), store.read_stream("C-1")):
        assert table.num_rows > 0
        assert tuple(table.column_names) == READ_COLUMNS
        assert table.schema.types == READ_TYPES


# -- idempotency ------------------------------------------------------------------------------


def test_appending_the_same_key_twice_stores_it_once(store: EventStore, ingestor: Ingestor) -> None:
    first = ingest(ingestor, [purchase(i, f"C-{i % 3}") for i in range(6)])
    again = ingest(ingestor, [purchase(i, f"C-{i % 3}") for i in range(4, 9)])

    assert (first.accepted, first.duplicates) == (6, 0)
    assert (again.accepted, again.duplicates) == (3, 2)
    assert again.duplicate_lines == [0, 1]
    assert store.count() == 9
    stored = event_ids(store.read_after(0, 100))
    assert sorted(stored) == sorted(f"order-{i}" for i in range(9))


def test_a_key_already_stored_is_a_duplicate_even_under_another_stream(
    store: EventStore,
) -> None:
    store.append_staged(staged([("s", "e1", "C-1")]))
    outcome = store.append_staged(staged([("s", "e1", "C-2"), ("t", "e1", "C-2")]))

    assert outcome.accepted == 1 and outcome.duplicate_lines == [0]
    assert store.read_stream("C-2").num_rows == 1


def test_a_key_repeated_inside_one_staged_batch_is_stored_once(store: EventStore) -> None:
    outcome = store.append_staged(
        staged([("s", "e1", "C-1"), ("s", "e2", "C-1"), ("s", "e1", "C-2")])
    )

    assert outcome.accepted == 2 and outcome.duplicate_lines == [2]
    assert store.read_stream("C-2").num_rows == 0


# -- ordering ---------------------------------------------------------------------------------


def test_each_stream_is_numbered_densely_in_append_order(
    store: EventStore, ingestor: Ingestor
) -> None:
    sent: dict[str, list[str]] = {}
    for batch in range(3):
        events = [purchase(batch * 100 + i, f"C-{(i * 7) % 5}") for i in range(20)]
        ingest(ingestor, events)
        for e in events:
            sent.setdefault(e["customer_id"], []).append(e["event_id"])

    for customer, ids in sent.items():
        history = store.read_stream(customer)
        assert history.column("stream_version").to_pylist() == list(range(1, len(ids) + 1))
        assert event_ids(history) == ids


def test_read_stream_returns_the_full_history_of_one_customer_only(
    store: EventStore, ingestor: Ingestor
) -> None:
    ingest(ingestor, [purchase(i, "C-1" if i % 3 == 0 else "C-2") for i in range(30)])
    ingest(ingestor, [registered("C-1"), contact(1, "C-2"), contact(2, "C-1")])

    history = store.read_stream("C-1")

    assert set(history.column("stream").to_pylist()) == {"C-1"}
    assert event_ids(history) == [f"order-{i}" for i in range(0, 30, 3)] + ["reg-C-1", "call-2"]
    assert store.read_stream("C-unknown").num_rows == 0


def test_read_after_and_read_range_page_through_every_event_once_in_order(
    store: EventStore, ingestor: Ingestor
) -> None:
    for batch in range(4):
        ingest(ingestor, [purchase(batch * 50 + i, f"C-{i % 9}") for i in range(50)])
    head = store.max_position()
    everything = store.read_after(0, 1_000)

    pages, position = [], 0
    while True:
        page = store.read_after(position, 17)
        if page.num_rows == 0:
            break
        assert page.num_rows <= 17
        pages.append(page)
        position = page.column("position")[-1].as_py()
    ranges = [store.read_range(a, min(a + 23, head)) for a in range(0, head, 23)]

    positions = everything.column("position").to_pylist()
    assert len(positions) == 200 and positions == sorted(set(positions))
    assert pa.concat_tables(pages).equals(everything)
    assert pa.concat_tables(ranges).equals(everything)
    assert store.read_range(10, 20).column("position").to_pylist() == [
        p for p in positions if 10 < p <= 20
    ]
    assert store.read_after(head, 10).num_rows == 0


def test_max_position_and_count_follow_the_appends(store: EventStore, ingestor: Ingestor) -> None:
    assert (store.max_position(), store.count()) == (0, 0)

    first = ingest(ingestor, [purchase(i, f"C-{i % 4}") for i in range(12)])
    second = ingest(ingestor, [purchase(i, f"C-{i % 4}") for i in range(10, 15)])

    assert store.count() == 15
    assert store.max_position() == second.last_position
    assert first.first_position is not None and first.last_position is not None
    assert second.first_position == first.last_position + 1
    stored = store.read_after(0, 100).column("position").to_pylist()
    assert stored == list(range(first.first_position, second.last_position + 1))


# -- atomicity --------------------------------------------------------------------------------


def _finalise_raises(real: Callable[..., Any]) -> Callable[..., Any]:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected failure in finalise")

    return broken


def _version_clash_inside_the_events_insert(real: Callable[..., Any]) -> Callable[..., Any]:
    """The rows are fine, but the last one carries a stream version that is stored already: the
    events insert fails after the rows before it are written, in the same transaction. Wraps
    both forms of finalise: Arrow tables (bulk path) and lists of dicts (small batches)."""

    def clashing(*args: Any, **kwargs: Any) -> Any:
        rows = real(*args, **kwargs)
        if isinstance(rows, list):
            rows[-1] = {**rows[-1], "originator_id": "C-0", "originator_version": 1}
            return rows
        frame = pl.from_arrow(rows)
        assert isinstance(frame, pl.DataFrame)
        last = pl.int_range(pl.len()) == pl.len() - 1
        clashed = frame.with_columns(
            pl.when(last)
            .then(pl.lit("C-0"))
            .otherwise(pl.col("originator_id"))
            .alias("originator_id"),
            pl.when(last)
            .then(1)
            .otherwise(pl.col("originator_version"))
            .alias("originator_version"),
        )
        return clashed.to_arrow()

    return clashing


@pytest.mark.parametrize("size", [20, 200], ids=["small-batch", "bulk-batch"])
@pytest.mark.parametrize(
    "fault", [_finalise_raises, _version_clash_inside_the_events_insert], ids=lambda f: f.__name__
)
def test_a_failed_append_stores_nothing_of_its_batch(
    store: EventStore,
    ingestor: Ingestor,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[Callable[..., Any]], Callable[..., Any]],
    size: int,
) -> None:
    ingest(ingestor, [purchase(i, f"C-{i % 3}") for i in range(6)])
    before = store.read_after(0, 100)
    backend = sys.modules[type(store).__module__]
    batch = [purchase(i, f"C-{i % 4}") for i in range(6, 6 + size)]

    for name in ("finalise", "finalise_rows"):
        if hasattr(backend, name):
            monkeypatch.setattr(backend, name, fault(getattr(backend, name)))
    with pytest.raises(Exception):  # noqa: B017 - the backend's own error type
        ingest(ingestor, batch)
    assert store.read_after(0, 100).equals(before)
    assert store.count() == 6

    monkeypatch.undo()
    retried = ingest(ingestor, batch)
    assert (retried.accepted, retried.duplicates) == (size, 0)
    assert store.count() == 6 + size
    assert store.max_position() == 6 + size  # the failed attempt left no gap in the positions
    for customer in ("C-0", "C-1", "C-2", "C-3"):
        versions = store.read_stream(customer).column("stream_version").to_pylist()
        assert versions == list(range(1, len(versions) + 1))


def test_decisions_recorded_many_at_a_time_project_to_one_row_each(
    store: EventStore, ingestor: Ingestor
) -> None:
    """An ``actions.decided`` event of 2,000 decisions (a large state) round-trips through the
    store, and the projector gives each decision the row of its own ``action.*`` event."""
    from radar.domain.catalogue import decision_action_id
    from radar.projections.projector import Projector, connect_view

    customers = [f"C-{k:05d}" for k in range(2000)]
    decided = {
        "event_id": "decided-1",
        "type": "actions.decided",
        "occurred_at": "2026-03-01T10:00:00Z",
        "source": "radar.rules",
        "channel": "email",
        "data": {
            "rule_id": "winback",
            "rule_version": "v1",
            "rule_hash": "h",
            "ruleset_hash": "s",
            "view_position": 7,
            "reason": "consent",
            "decision": "suppressed",
            "run_id": "run-1",
            "condition_columns": ["clv"],
            "decisions": {
                "customer_id": customers,
                "condition_values": [[float(k)] for k in range(2000)],
            },
        },
    }
    assert ingest(ingestor, [purchase(1, "C-00001"), decided]).accepted == 2
    view = connect_view(None)
    Projector(store, view).catch_up()
    rows = view.execute(
        "SELECT event_id, customer_id, type, direction, rule_id, reason, "
        "CAST(condition_values AS VARCHAR) FROM events WHERE type LIKE 'action.%' "
        "ORDER BY customer_id"
    ).fetchall()
    assert rows == [
        (
            decision_action_id("s", "winback", c, 7),
            c,
            "action.suppressed",
            "outbound",
            "winback",
            "consent",
            json.dumps({"clv": float(k)}, separators=(",", ":")),
        )
        for k, c in enumerate(customers)
    ]
    purchases = view.execute("SELECT count(*) FROM customers WHERE purchases = 1").fetchone()
    assert purchases == (1,)
    view.close()
