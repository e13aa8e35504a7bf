"""``verify_radar``: replay vs. live view, tamper evidence on the SQLite file, consent audit."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from audit_factories import RULES, action, buy, consent, registered, shoppers

from radar.audit.consent import consent_violations
from radar.audit.replay import replay_check, verify_radar
from radar.engine import Engine
from radar.rules.apply import apply_rules
from radar.rules.loader import load_rule_text


def _append(engine: Engine, events: list[dict[str, Any]]) -> None:
    assert {r.status for r in engine.append(events)} == {"accepted"}


def _store(engine: Engine) -> Path:
    return engine.settings.data_dir / "events.sqlite"


def _filled(engine: Engine) -> Engine:
    _append(engine, [registered("C-1"), consent("C-1", "email", True, 1)])
    _append(engine, [buy(f"C-{i % 4}", i, i / 3, 20.0) for i in range(40)])
    engine.project()
    return engine


def _position_of(engine: Engine, order_id: str) -> int:
    rows = engine.view.execute(
        "SELECT position FROM events WHERE order_id = $o", {"o": order_id}
    ).fetchall()
    return int(rows[0][0])


def _position_of_in_log(engine: Engine, order_id: str) -> int:
    stream = engine.store.read_stream("C-0")
    for position, state in zip(
        stream.column("position").to_pylist(), stream.column("state").to_pylist(), strict=True
    ):
        if f'"order_id":"{order_id}"'.encode() in state:
            return int(position)
    raise AssertionError(order_id)


def test_an_untouched_store_verifies_clean_and_is_sealed_to_its_end(engine: Engine) -> None:
    _filled(engine)
    first = verify_radar(engine)
    assert first.ok, first.to_dict()
    assert first.sealed is not None and first.sealed.position == engine.store.max_position()
    assert [t.table for t in first.replay.tables] == ["events", "customers", "radar_position"]
    assert first.replay.tables[0].live_rows == 42 == first.replay.tables[0].replay_rows
    _append(engine, [buy("C-9", 99, 50)])
    second = verify_radar(engine)
    assert second.ok
    assert (second.chain.checked, second.chain.unsealed) == (42, 1)
    assert second.sealed is not None and second.sealed.sealed == 1


def test_editing_a_sealed_event_in_the_sqlite_file_is_detected(engine: Engine) -> None:
    _filled(engine)
    assert verify_radar(engine).ok
    target = _position_of(engine, "C-2-6")
    with sqlite3.connect(_store(engine)) as conn:
        conn.execute(
            "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), "
            "'\"amount\":20.0', '\"amount\":2000.0') AS BLOB) WHERE rowid = ?",
            (target,),
        )
    conn.close()
    report = verify_radar(engine)
    assert not report.ok
    assert [(f.kind, f.position) for f in report.chain.findings] == [("modified", target)]
    assert report.sealed is None  # a damaged chain is not extended
    events, customers, _ = report.replay.tables
    assert (events.changed, [k["key"] for k in events.keys]) == (1, [target])
    assert [(k["key"], k["columns"]) for k in customers.keys] == [
        ("C-2", ["revenue", "avg_order_value"])
    ]


def test_deleting_a_sealed_event_from_the_sqlite_file_is_detected(engine: Engine) -> None:
    _filled(engine)
    assert verify_radar(engine).ok
    target = _position_of(engine, "C-3-7")
    with sqlite3.connect(_store(engine)) as conn:
        conn.execute("DELETE FROM stored_events WHERE rowid = ?", (target,))
    conn.close()
    report = verify_radar(engine)
    assert [(f.kind, f.position) for f in report.chain.findings] == [("deleted", target)]
    assert report.replay.tables[0].extra == 1


def test_altering_the_view_is_found_by_the_replay(engine: Engine) -> None:
    _filled(engine)
    engine.view.execute("UPDATE customers SET purchases = 99 WHERE customer_id = 'C-1'")
    engine.view.execute("DELETE FROM events WHERE order_id = 'C-0-8'")
    report = replay_check(engine)
    assert not report.ok
    events, customers, position = report.tables
    assert (events.missing, events.extra, events.changed) == (1, 0, 0)
    assert [k["key"] for k in events.keys] == [_position_of_in_log(engine, "C-0-8")]
    # the customers table still agrees with the log for C-0; C-1's row was altered
    assert {k["key"]: k["columns"] for k in customers.keys} == {"C-1": ["purchases"]}
    assert position.ok


def test_the_consent_audit_lists_actions_planned_without_consent(engine: Engine) -> None:
    _append(
        engine,
        [
            consent("C-1", "email", True, 1),
            consent("C-2", "email", True, 1),
            consent("C-2", "email", False, 5),  # withdrawn before the action
            consent("C-3", "sms", True, 1),  # consent on another channel only
        ],
    )
    _append(
        engine,
        [
            action("C-1", "A-1", 6, 1),
            action("C-2", "A-2", 6, 1),
            action("C-3", "A-3", 6, 1),
            action("C-4", "A-4", 6, 1, channel="web"),  # web needs no consent
        ],
    )
    _append(engine, [consent("C-1", "email", False, 3, n=1)])  # a late withdrawal
    report = consent_violations(engine)
    assert report.checked == 3
    assert [(v.action_id, v.consent, v.known_when_planned) for v in report.violations] == [
        ("A-1", False, False),
        ("A-2", False, True),
        ("A-3", None, True),
    ]
    assert not verify_radar(engine).ok


def test_no_violation_when_consent_was_granted_at_the_moment_of_the_action(
    engine: Engine,
) -> None:
    _append(engine, [consent("C-1", "email", False, 1), consent("C-1", "email", True, 2)])
    _append(engine, [action("C-1", "A-1", 3, 2), consent("C-1", "email", False, 4, n=1)])
    report = consent_violations(engine)
    assert (report.checked, report.count) == (1, 0)


def test_a_clumsy_edit_that_changes_the_storage_class_is_reported_not_a_crash(
    engine: Engine,
) -> None:
    _filled(engine)
    assert verify_radar(engine).ok
    target = _position_of(engine, "C-1-5")
    with sqlite3.connect(_store(engine)) as conn:
        conn.execute(
            "UPDATE stored_events SET state = replace(state, '20.0', '21.0') WHERE rowid = ?",
            (target,),
        )
    conn.close()
    report = verify_radar(engine)
    assert not report.ok
    assert (report.chain.findings[0].kind, report.chain.findings[0].position) == (
        "modified",
        target,
    )
    assert not report.replay.ok


def test_removing_the_last_events_of_the_log_is_found_by_the_replay(engine: Engine) -> None:
    _filled(engine)
    head = engine.store.max_position()
    with sqlite3.connect(_store(engine)) as conn:
        conn.execute("DELETE FROM stored_events WHERE rowid > ?", (head - 2,))
    conn.close()
    report = replay_check(engine)
    events = report.tables[0]
    assert (events.extra, [k["key"] for k in events.keys]) == (2, [head - 1, head])
    assert not report.ok


def test_an_anchor_recorded_outside_radar_is_checked(engine: Engine) -> None:
    _filled(engine)
    head = verify_radar(engine).chain_head()
    assert verify_radar(engine, anchor=head).ok
    wrong = verify_radar(engine, anchor="00" * 32)
    assert [f.kind for f in wrong.chain.findings] == ["anchor_mismatch"]


def _decided(engine: Engine) -> Engine:
    """:func:`shoppers` appended, :data:`RULES` applied and the view caught up."""
    _append(engine, shoppers())
    apply_rules(engine, load_rule_text(RULES))
    engine.project()
    return engine


def test_a_view_with_the_rules_decisions_replays_clean(engine: Engine) -> None:
    _decided(engine)
    report = verify_radar(engine)
    assert report.ok, report.to_dict()
    events = report.replay.tables[0]
    decisions = engine.view.execute(
        "SELECT count(*) FROM events WHERE type LIKE 'action.%'"
    ).fetchall()[0][0]
    assert decisions > 0
    assert events.live_rows == events.replay_rows == engine.store.count() + decisions
    assert report.consent.checked > 0


def _first_planned(engine: Engine) -> tuple[int, str, str]:
    """Position, action id and customer of the view's first planned decision (by id)."""
    position, action_id, customer = engine.view.execute(
        "SELECT position, event_id, customer_id FROM events WHERE type = 'action.planned' "
        "ORDER BY event_id LIMIT 1"
    ).fetchall()[0]
    return int(position), str(action_id), str(customer)


TAMPERINGS = {
    "changed": "UPDATE events SET condition_values = '{\"purchases\": 99}' WHERE event_id = $id",
    "deleted": "DELETE FROM events WHERE event_id = $id",
    "stored twice": "INSERT INTO events SELECT * FROM events WHERE event_id = $id",
    "given another id": "UPDATE events SET event_id = 'forged', action_id = 'forged' "
    "WHERE event_id = $id",
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_a_tampered_decision_row_of_the_view_is_found_by_the_replay(
    engine: Engine, tampering: str
) -> None:
    position, action_id, _ = _first_planned(_decided(engine))
    engine.view.execute(TAMPERINGS[tampering], {"id": action_id})
    report = replay_check(engine)
    assert not report.ok
    events, customers, position_table = report.tables
    assert (events.missing, events.extra, events.changed) == (0, 0, 1)
    assert [k["key"] for k in events.keys] == [position]
    assert customers.ok and position_table.ok  # the live customers still match the log


def test_the_customers_are_recomputed_from_the_logs_decisions_not_the_altered_ones(
    engine: Engine,
) -> None:
    _, action_id, customer = _first_planned(_decided(engine))
    # a view altered consistently: the decision gone, and the customer's count with it
    engine.view.execute("DELETE FROM events WHERE event_id = $id", {"id": action_id})
    engine.view.execute(
        "UPDATE customers SET actions_planned = actions_planned - 1 WHERE customer_id = $c",
        {"c": customer},
    )
    events, customers, _ = replay_check(engine).tables
    assert (events.changed, events.live_rows + 1) == (1, events.replay_rows)
    assert [(k["key"], k["columns"]) for k in customers.keys] == [(customer, ["actions_planned"])]
