"""The projector applies every event exactly once: crashes, restarts and rebuilds agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import purchase, write_jsonl

from radar.engine import Engine, build_engine
from radar.projections import projector


class Crash(Exception):
    pass


def _history(n: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for i in range(n):
        c = f"C-{i % 37}"
        if i % 5 == 0:
            events.append(
                {
                    "event_id": f"k{i}",
                    "type": "contact",
                    "customer_id": c,
                    "occurred_at": f"2026-01-{1 + i % 28:02d}T10:00:00Z",
                    "source": "cc",
                    "channel": ["phone", "email", "chat"][i % 3],
                    "direction": ["inbound", "outbound"][i % 2],
                    "data": {"reason": "complaint" if i % 3 else "sales"},
                }
            )
        elif i % 7 == 0:
            events.append(
                {
                    "event_id": f"g{i}",
                    "type": "consent.changed",
                    "customer_id": c,
                    "occurred_at": f"2026-02-{1 + i % 28:02d}T10:00:00Z",
                    "source": "web",
                    "data": {"channel": "email", "granted": bool(i % 2)},
                }
            )
        elif i % 97 == 0:
            events.append(_decided(i))
        else:
            events.append(purchase(i, c, amount=float(i % 50 + 1)))
    return events


def _decided(i: int, width: int = 3) -> dict[str, object]:
    """An ``actions.decided`` event of ``width`` decisions (customers of the history)."""
    decision, reason = [("planned", None), ("suppressed", "consent"), ("held_out", "holdout")][
        i % 3
    ]
    data = {
        "decision": decision,
        "rule_id": f"rule-{i % 2}",
        "rule_version": "v1",
        "rule_hash": "h1",
        "ruleset_hash": "s1",
        "view_position": i,
        "priority": 1,
        **({"reason": reason} if reason else {}),
        "run_id": f"run-{i}",
        "condition_columns": ["clv", "segment"],
        "decisions": {
            "customer_id": [f"C-{(i + k) % 37}-{k}" for k in range(width)],
            "condition_values": [[float(k), None if k else "seg-1"] for k in range(width)],
        },
    }
    return {
        "event_id": f"d{i}",
        "type": "actions.decided",
        "occurred_at": f"2026-03-{1 + i % 28:02d}T10:00:00Z",
        "source": "radar.rules",
        "channel": "email",
        "data": data,
    }


def _snapshot(e: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    events = e.view.execute(
        "SELECT * EXCLUDE (recorded_at) FROM events ORDER BY position, event_id"
    )
    customers = e.view.execute("SELECT * FROM customers ORDER BY customer_id")
    return events.fetchall(), customers.fetchall()


def _rebuilt(
    tmp_path: Path, e: Engine
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    other = build_engine(data_dir=e.settings.data_dir, event_store=None)
    other.settings = other.settings.model_copy(update={"data_dir": tmp_path / "rebuilt"})
    other._store = e.store  # the same log, another view file
    other.rebuild()
    snap = _snapshot(other)
    other._store = None
    other.close()
    return snap


@pytest.mark.parametrize("where", ["inside_batch", "between_batches", "inside_recompute"])
@pytest.mark.parametrize("incremental", [True, False])
def test_a_crash_then_restart_gives_the_view_a_rebuild_gives(
    engine: Engine, tmp_path: Path, where: str, incremental: bool
) -> None:
    engine.ingest_file(write_jsonl(tmp_path / "a.jsonl", _history(3000)))
    projector = engine.projector
    projector.batch_size = 400
    projector.incremental_limit = 10_000 if incremental else 100
    calls = {"n": 0}

    def fault(point: str) -> None:
        if point == where:
            calls["n"] += 1
            if calls["n"] == 3 or point == "inside_recompute":
                raise Crash(point)

    if where != "inside_recompute" or not incremental:
        with pytest.raises(Crash):
            projector.catch_up(fault=fault)
    result = projector.catch_up()
    assert result.position == engine.store.max_position()
    assert _snapshot(engine) == _rebuilt(tmp_path, engine)


def test_incremental_catch_up_in_many_small_batches_equals_a_rebuild(
    engine: Engine, tmp_path: Path
) -> None:
    history = _history(2000)
    for k in range(0, 2000, 250):
        engine.ingest_file(write_jsonl(tmp_path / f"p{k}.jsonl", history[k : k + 250]))
        engine.project()
    counts = "SELECT count(DISTINCT position), count(*) FILTER (WHERE type LIKE 'action.%') "
    assert engine.view.execute(counts + "FROM events").fetchall()[0] == (2000, 3 * 14)
    assert _snapshot(engine) == _rebuilt(tmp_path, engine)


@pytest.mark.parametrize("where", ["inside_batch", "inside_recompute"])
def test_a_crashed_rebuild_leaves_the_old_view_and_a_catch_up_completes_it(
    engine: Engine, tmp_path: Path, where: str
) -> None:
    history = _history(1500)
    engine.ingest_file(write_jsonl(tmp_path / "a.jsonl", history[:1000]))
    engine.project()
    before = _snapshot(engine)
    engine.ingest_file(write_jsonl(tmp_path / "b.jsonl", history[1000:]))

    def fault(point: str) -> None:
        if point == where:
            raise Crash(point)

    engine.projector.batch_size = 300
    with pytest.raises(Crash):
        engine.projector.rebuild(fault=fault)
    assert _snapshot(engine) == before
    assert engine.projector.catch_up().events == 500
    assert _snapshot(engine) == _rebuilt(tmp_path, engine)


def test_a_store_error_during_a_rebuild_surfaces_as_itself(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.ingest_file(write_jsonl(tmp_path / "a.jsonl", _history(1000)))
    engine.project()
    before = _snapshot(engine)
    read_after = engine.store.read_after

    def failing(position: int, limit: int) -> object:
        if position > 0:
            raise OSError("the disk went away")
        return read_after(position, limit)

    monkeypatch.setattr(engine.store, "read_after", failing)
    engine.projector.batch_size = 300
    with pytest.raises(OSError, match="the disk went away"):
        engine.projector.rebuild()
    assert _snapshot(engine) == before


@pytest.mark.parametrize(
    ("customers_per_partition", "row_group_rows"), [(100_000, 122_880), (10, 122_880), (10, 300)]
)
def test_a_rebuild_in_one_transaction_equals_a_catch_up_in_many(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    customers_per_partition: int,
    row_group_rows: int,
) -> None:
    """Also with the log cut into several full row groups and a rest (``row_group_rows``)."""
    monkeypatch.setattr(projector, "CUSTOMERS_PER_PARTITION", customers_per_partition)
    monkeypatch.setattr(projector, "ROW_GROUP_ROWS", row_group_rows)
    engine.ingest_file(write_jsonl(tmp_path / "a.jsonl", _history(2500)))
    engine.projector.batch_size = 128
    first = engine.projector.catch_up()
    assert first.batches > 10
    caught_up = _snapshot(engine)
    result = engine.projector.rebuild()
    assert (result.events, result.position) == (2500, engine.store.max_position())
    assert result.batches == first.batches
    assert _snapshot(engine) == caught_up
    assert engine.view.execute("SELECT current_setting('threads')").fetchall()[0][0] == 2


def test_the_customer_view_counts_what_happened(engine: Engine, tmp_path: Path) -> None:
    engine.append([purchase(1, "C-1", 10.0), purchase(2, "C-1", 30.0)])
    engine.append(
        [
            {
                "type": "contact",
                "customer_id": "C-1",
                "occurred_at": "2026-01-02T00:00:00Z",
                "source": "cc",
                "channel": "phone",
                "direction": "inbound",
                "data": {"reason": "complaint"},
            },
            {
                "type": "consent.changed",
                "customer_id": "C-1",
                "source": "web",
                "occurred_at": "2026-01-03T00:00:00Z",
                "data": {"channel": "email", "granted": True},
            },
            {
                "type": "consent.changed",
                "customer_id": "C-1",
                "source": "web",
                "occurred_at": "2026-01-04T00:00:00Z",
                "data": {"channel": "email", "granted": False},
            },
        ]
    )
    engine.project()
    row = engine.view.execute(
        "SELECT purchases, revenue, avg_order_value, complaints, inbound_phone, consent_email "
        "FROM customers WHERE customer_id = 'C-1'"
    ).fetchall()[0]
    assert row == (2, 40.0, 20.0, 1, 1, False)


@pytest.mark.parametrize("per_statement", [100_000, 4])
def test_a_batch_with_more_decisions_than_the_incremental_limit_is_applied_as_a_backlog(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_statement: int
) -> None:
    """Also with the decisions given their rows a few at a time (``per_statement``), and the
    customers they touch recomputed a few at a time (one hash partition after another)."""
    monkeypatch.setattr(projector, "DECISIONS_PER_STATEMENT", per_statement)
    monkeypatch.setattr(projector, "CUSTOMERS_PER_PARTITION", 10 if per_statement < 10 else 10**5)
    engine.ingest_file(write_jsonl(tmp_path / "a.jsonl", _history(600)))
    engine.project()
    decided = [_decided(i, width=50) for i in (1, 2, 3)]  # 3 events, 150 decisions
    engine.ingest_file(write_jsonl(tmp_path / "b.jsonl", decided))
    engine.projector.incremental_limit = 100
    result = engine.projector.catch_up()
    assert (result.events, result.recomputed_all) == (3, True)
    assert _snapshot(engine) == _rebuilt(tmp_path, engine)
    rows = "SELECT count(*) FROM events WHERE type LIKE 'action.%' AND position > 600"
    assert engine.view.execute(rows).fetchall()[0][0] == 150
    emptied = "SELECT count(*) FROM events WHERE type = 'actions.decided' AND decisions IS NULL"
    assert engine.view.execute(emptied).fetchall()[0][0] == 5 + 3  # lists emptied once expanded
