"""Forgetting a customer crypto-shreds their personal data: afterwards no file radar wrote holds
it, while the log is unchanged, the facts still count and ``verify`` still passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_factories import EMAIL, NAME, buy, consent, registered

from radar.audit.asof import live_row
from radar.audit.export import write_export
from radar.audit.forget import forget_customer
from radar.audit.history import FORGOTTEN, read_history
from radar.audit.replay import verify_radar
from radar.domain.errors import ConfigurationError, NotFound
from radar.engine import Engine, build_engine

SECRETS = (NAME.encode(), EMAIL.encode())


def _files_holding(folder: Path, needles: tuple[bytes, ...]) -> list[str]:
    return sorted(
        str(p)
        for p in folder.rglob("*")
        if p.is_file() and any(n in p.read_bytes() for n in needles)
    )


def _customer(engine: Engine) -> None:
    results = engine.append(
        [
            registered("C-1"),
            consent("C-1", "email", True, 1),
            buy("C-1", 1, 2, 30.0),
            buy("C-1", 2, 3, 12.5),
            registered("C-2", name="Other Person", email="other@example.org"),
        ]
    )
    assert {r.status for r in results} == {"accepted"}
    engine.project()


def test_after_forgetting_no_file_radar_wrote_holds_the_personal_data(
    engine: Engine, tmp_path: Path
) -> None:
    _customer(engine)
    export = tmp_path / "exports" / "c1.json"
    write_export(engine, "C-1", export)
    key = engine.keys.keys_for(["C-1"], create=False)["C-1"]
    before = live_row(engine, "C-1")
    assert read_history(engine, "C-1").events[0].personal == {"name": NAME, "email": EMAIL}
    assert _files_holding(tmp_path, SECRETS) == [str(export)]  # the search can find it
    assert _files_holding(engine.settings.data_dir, (key,)) != []

    result = forget_customer(engine, "C-1", reason="customer request")
    engine.view.execute("CHECKPOINT")

    assert result.key_destroyed and result.recorded and result.personal_events == 1
    assert result.shredded_exports == [str(export.resolve())]
    assert _files_holding(tmp_path, SECRETS) == []
    assert _files_holding(engine.settings.data_dir, (key,)) == []
    h = read_history(engine, "C-1")
    assert h.forgotten and h.events[0].personal == FORGOTTEN
    assert h.events[-1].type == "customer.forgotten"
    assert h.events[-1].data == {"reason": "customer request"}
    after = live_row(engine, "C-1")
    assert after is not None and before is not None
    assert (after["purchases"], after["revenue"], after["forgotten"]) == (2, 42.5, True)
    assert before["forgotten"] is False
    # someone else's personal data is untouched
    assert read_history(engine, "C-2").events[0].personal == {
        "name": "Other Person",
        "email": "other@example.org",
    }
    assert verify_radar(engine).ok


def test_the_view_holds_no_personal_fields() -> None:
    from radar.domain.catalogue import CATALOGUE
    from radar.projections.schema import event_columns

    personal = {f for t in CATALOGUE.values() for f in t.personal_fields}
    assert personal and not personal & set(event_columns())


def test_forgetting_twice_records_it_once_and_later_personal_data_is_dropped(
    engine: Engine, tmp_path: Path
) -> None:
    _customer(engine)
    first = forget_customer(engine, "C-1")
    again = forget_customer(engine, "C-1")
    assert (again.key_destroyed, again.recorded, again.position) == (False, False, first.position)
    results = engine.append([{**registered("C-1"), "event_id": "reg-again"}])
    assert results[0].status == "accepted"
    h = read_history(engine, "C-1")
    assert [e.type for e in h.events].count("customer.forgotten") == 1
    assert h.events[-1].personal is None  # the personal fields were not stored
    assert _files_holding(engine.settings.data_dir, SECRETS) == []


def test_forgetting_an_unknown_customer_or_without_the_key_store_is_refused(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with build_engine(data_dir=data, event_store=None) as e:
        _customer(e)
        with pytest.raises(NotFound, match="unknown customer 'C-404'"):
            forget_customer(e, "C-404")
    (data / "keys.sqlite").unlink()
    with build_engine(data_dir=data, event_store=None) as e:
        with pytest.raises(ConfigurationError, match="missing"):
            forget_customer(e, "C-1")
        assert not (data / "keys.sqlite").exists()
