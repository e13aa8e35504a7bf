"""``read_history``: the customer's timeline straight from the event log, personal data included
while the key exists, radar's own events (the rules' decisions among them) included; bad input is
a clear error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from audit_factories import (
    EMAIL,
    NAME,
    RULES,
    action,
    at,
    buy,
    consent,
    registered,
    segment,
    shoppers,
)

from radar.audit.history import DECISIONS_STREAM, FORGOTTEN, read_history
from radar.domain.errors import ConfigurationError, NotFound, RadarError
from radar.engine import Engine, build_engine
from radar.rules.apply import ApplyResult, apply_rules
from radar.rules.loader import load_rule_text


def _story(engine: Engine) -> None:
    results = engine.append(
        [
            registered("C-1"),
            consent("C-1", "email", True, 1),
            buy("C-1", 1, 2),
            buy("C-2", 1, 2),
            segment("C-1", "run-1", 3),
            buy("C-1", 2, 4, 35.0),
            action("C-1", "A-1", 5, view_position=5),
        ]
    )
    assert {r.status for r in results} == {"accepted"}


def test_history_reads_every_event_of_the_customer_from_the_log_not_the_view(
    engine: Engine,
) -> None:
    _story(engine)
    h = read_history(engine, "C-1")  # the view was never projected
    assert engine.projector.position() == 0
    assert [e.type for e in h.events] == [
        "customer.registered",
        "consent.changed",
        "purchase",
        "segment.entered",
        "purchase",
        "action.planned",
    ]
    assert h.total == 6 and not h.forgotten
    assert [e.version for e in h.events] == [1, 2, 3, 4, 5, 6]
    assert {e.written_by for e in h.events} == {"operational", "radar"}
    assert h.events[4].data["amount"] == 35.0
    assert h.events[5].data["action_id"] == "A-1"


def test_history_decrypts_personal_fields_while_the_key_exists(engine: Engine) -> None:
    _story(engine)
    first = read_history(engine, "C-1").events[0]
    assert first.personal == {"name": NAME, "email": EMAIL}
    assert "name" not in first.data and first.data["city"] == "Gent"
    assert read_history(engine, "C-1").events[2].personal is None


def test_history_shows_forgotten_personal_data_as_forgotten(engine: Engine) -> None:
    _story(engine)
    engine.keys.forget("C-1")
    h = read_history(engine, "C-1")
    assert h.forgotten
    assert h.events[0].personal == FORGOTTEN


def test_history_filters_by_type_and_business_time(engine: Engine) -> None:
    _story(engine)
    only = read_history(engine, "C-1", types=["purchase", "action.planned"])
    assert [e.type for e in only.events] == ["purchase", "purchase", "action.planned"]
    assert only.total == 6
    window = read_history(
        engine,
        "C-1",
        since=datetime.fromisoformat(at(2)),
        until=datetime.fromisoformat(at(4)),
    )
    assert [e.occurred_at.isoformat() for e in window.events] == [
        datetime.fromisoformat(at(d)).isoformat() for d in (2, 3, 4)
    ]


def test_an_unknown_customer_or_event_type_is_a_clear_error(engine: Engine) -> None:
    _story(engine)
    with pytest.raises(NotFound, match="unknown customer 'C-404'"):
        read_history(engine, "C-404")
    with pytest.raises(RadarError, match="did you mean 'purchase'"):
        read_history(engine, "C-1", types=["purchse"])
    with pytest.raises(RadarError, match="after"):
        read_history(
            engine, "C-1", since=datetime(2026, 5, 1, tzinfo=UTC), until=datetime(2026, 4, 1)
        )


def test_a_data_folder_without_a_log_is_not_found_and_stays_empty(tmp_path: Path) -> None:
    with (
        build_engine(data_dir=tmp_path / "nothing", event_store=None) as e,
        pytest.raises(NotFound, match="no event store"),
    ):
        read_history(e, "C-1")
    assert not (tmp_path / "nothing" / "events.sqlite").exists()


def test_a_missing_key_store_is_an_error_not_a_forgotten_customer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with build_engine(data_dir=data, event_store=None) as e:
        _story(e)
    (data / "keys.sqlite").unlink()
    with build_engine(data_dir=data, event_store=None) as e:
        with pytest.raises(ConfigurationError, match="missing"):
            read_history(e, "C-1")
        # a customer without personal data needs no key
        assert [x.type for x in read_history(e, "C-2").events] == ["purchase"]


def test_a_replaced_or_damaged_key_store_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with build_engine(data_dir=data, event_store=None) as e:
        _story(e)
    (data / "keys.sqlite").unlink()
    with build_engine(data_dir=data, event_store=None) as e:
        e.keys.keys_for(["C-9"])  # a fresh key store, not the one the log was written with
        with pytest.raises(ConfigurationError, match="never forgotten"):
            read_history(e, "C-1")
    (data / "keys.sqlite").write_bytes(b"this is not a database" * 100)
    with (
        build_engine(data_dir=data, event_store=None) as e,
        pytest.raises(ConfigurationError, match="damaged"),
    ):
        read_history(e, "C-1")


# -- the rules' decisions, recorded many customers at a time ---------------------------------

PROVENANCE = (
    "action_id",
    "rule_id",
    "rule_version",
    "rule_hash",
    "ruleset_hash",
    "view_position",
    "campaign_id",
    "offer",
    "priority",
    "reason",
    "run_id",
)


def _decided(engine: Engine) -> ApplyResult:
    """:func:`shoppers` appended and :data:`RULES` applied (which catches the view up before it
    appends its decisions, so the view ends behind them)."""
    assert {r.status for r in engine.append(shoppers())} == {"accepted"}
    return apply_rules(engine, load_rule_text(RULES))


def _view_decisions(engine: Engine, customer: str) -> list[dict[str, Any]]:
    """The customer's decision rows of the (caught up) view, in position order."""
    engine.project()
    cur = engine.view.execute(
        "SELECT position, type, event_id, occurred_at, source, channel, "
        f"{', '.join(PROVENANCE)}, CAST(condition_values AS VARCHAR) AS condition_values "
        "FROM events WHERE customer_id = $c AND type LIKE 'action.%' ORDER BY position",
        {"c": customer},
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_a_customers_history_shows_the_decisions_about_them(engine: Engine) -> None:
    result = _decided(engine)
    h = read_history(engine, "C-2")  # two purchases and e-mail consent: both rules decide
    decisions = [e for e in h.events if e.type.startswith("action.")]
    view = _view_decisions(engine, "C-2")
    assert len(decisions) == 2
    assert [(e.position, e.type, e.event_id) for e in decisions] == [
        (v["position"], v["type"], v["event_id"]) for v in view
    ]
    for e, v in zip(decisions, view, strict=True):
        assert e.event_id == e.data["action_id"] and e.stream == DECISIONS_STREAM
        assert (e.source, e.channel, e.direction) == ("radar.rules", "email", "outbound")
        assert (e.written_by, e.personal, e.occurred_at) == ("radar", None, v["occurred_at"])
        assert {k: e.data.get(k) for k in PROVENANCE} == {k: v[k] for k in PROVENANCE}
        assert e.data["condition_values"] == json.loads(v["condition_values"])
        assert e.data["run_id"] == result.run_id
    assert "reason" not in decisions[-1].data  # planned: no reason, as its own event had none
    assert [e.type for e in h.events[:4]] == ["customer.registered", "consent.changed"] + [
        "purchase"
    ] * 2
    assert [e.position for e in h.events] == sorted(e.position for e in h.events)
    assert h.total == 6


def test_decisions_after_the_views_position_are_read_from_the_log(engine: Engine) -> None:
    _decided(engine)
    behind = engine.projector.position()
    assert behind < engine.store.max_position()
    scanned = read_history(engine, "C-1").to_dict()
    assert engine.projector.position() == behind  # reading a history moves no view
    assert [e["type"] for e in scanned["events"][-2:]] == ["action.suppressed"] * 2
    engine.project()
    assert read_history(engine, "C-1").to_dict() == scanned


def test_the_decisions_are_shown_without_a_view_and_none_is_created(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with build_engine(data_dir=data, event_store=None) as e:
        _decided(e)
        e.project()
        indexed = read_history(e, "C-4").to_dict()
    for view in data.glob("view.duckdb*"):
        view.unlink()
    with build_engine(data_dir=data, event_store=None) as e:
        assert read_history(e, "C-4").to_dict() == indexed
    assert not (data / "view.duckdb").exists()
    assert [x["type"] for x in indexed["events"]].count("action.planned") >= 1


def test_type_and_time_filters_apply_to_decisions(engine: Engine) -> None:
    _decided(engine)  # the decisions occurred at the latest purchase (day 3)
    suppressed = read_history(engine, "C-1", types=["action.suppressed"])
    assert [e.data["reason"] for e in suppressed.events] == ["consent"] * 2
    assert suppressed.total == 4  # registered, one purchase, two decisions
    assert read_history(engine, "C-1", types=["action.planned"]).events == []
    before = read_history(engine, "C-1", until=datetime.fromisoformat(at(2.5)))
    assert [e.type for e in before.events] == ["customer.registered", "purchase"]
    after = read_history(engine, "C-1", since=datetime.fromisoformat(at(3)))
    assert [e.type for e in after.events] == ["action.suppressed"] * 2
