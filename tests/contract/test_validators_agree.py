"""The set-based SQL validator and the pydantic models give the same verdict on every event.

Both are generated from the catalogue; this corpus of good and subtly bad events keeps them from
drifting apart. For valid events the SQL encoder and the Python encoder must also produce the same
stored content.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from factories import purchase

from radar.domain.envelope import parse_event
from radar.domain.errors import InvalidEvent
from radar.ingest.py_codec import encode_event
from radar.ingest.sql_codec import ENCODE_SQL, install_catalogue, validate_steps

T = "2026-02-03T04:05:06Z"
REG = {"type": "customer.registered", "customer_id": "C-9", "occurred_at": T, "source": "crm"}
CONTACT = {
    "type": "contact",
    "customer_id": "C-9",
    "occurred_at": T,
    "source": "cc",
    "channel": "phone",
    "direction": "inbound",
}

CORPUS: list[Any] = [
    purchase(1),
    {**purchase(2), "direction": None},
    {**purchase(3), "channel": None},
    {**purchase(4), "data": {"order_id": "4", "amount": 3, "product": "p", "quantity": 2}},
    {**purchase(5), "data": {"order_id": "5", "amount": 3, "product": "p", "quantity": 0}},
    {**purchase(6), "data": {"order_id": "6", "amount": 3, "product": "p", "quantity": 1.5}},
    {**purchase(7), "data": {"order_id": "7", "amount": "3", "product": "p"}},
    {**purchase(8), "data": {"order_id": "8", "amount": 3, "product": ""}},
    {**purchase(9), "data": {"order_id": "9", "amount": 3, "product": "p", "currency": "EURO"}},
    {**purchase(10), "data": {"order_id": "10", "amount": 3, "product": "p", "x": 1}},
    {**purchase(11), "data": {"amount": 3, "product": "p"}},
    {**purchase(12), "data": {"order_id": "12", "amount": None, "product": "p"}},
    {**purchase(13), "data": {"order_id": "13", "amount": 3, "product": "p", "action_id": None}},
    {**purchase(14), "data": []},
    {**purchase(15), "event_id": 15},
    {**purchase(16), "event_id": ""},
    {**purchase(17), "source": None},
    {**purchase(18), "customer_id": ""},
    {**purchase(19), "customer_id": "radar/x"},
    {**purchase(20), "occurred_at": "not a time"},
    {**purchase(21), "occurred_at": "2026-01-01T10:00:00+02:00"},
    {**purchase(22), "direction": "outbound"},
    {**purchase(23), "channel": "fax"},
    {**purchase(24), "type": "purchasee"},
    {**purchase(25), "unexpected": True},
    {
        **REG,
        "data": {
            "name": "Ann",
            "email": "a@b.nl",
            "birth_date": "1980-02-29",
            "country": "NL",
            "contractual": True,
        },
    },
    {**REG, "data": {"birth_date": "1981-02-29"}},
    {**REG, "data": {"country": "NLD"}},
    {**REG, "data": {"contractual": "yes"}},
    {**REG, "data": {"customer_type": "alien"}},
    {**REG, "direction": "outbound"},
    {**CONTACT, "data": {"reason": "complaint", "note": "rude", "duration_s": 30}},
    {**CONTACT, "data": {"reason": "complaint", "duration_s": -1}},
    {**CONTACT, "data": {"reason": "weather"}},
    {**CONTACT, "direction": None, "data": {"reason": "sales"}},
    {**CONTACT, "channel": None, "data": {"reason": "sales"}},
    {
        "type": "consent.changed",
        "customer_id": "C-9",
        "occurred_at": T,
        "source": "web",
        "data": {"channel": "email", "granted": False},
    },
    {
        "type": "consent.changed",
        "customer_id": "C-9",
        "occurred_at": T,
        "source": "web",
        "data": {"channel": "email"},
    },
    {
        "type": "satisfaction.rated",
        "customer_id": "C-9",
        "occurred_at": T,
        "source": "s",
        "data": {"score": 11, "scale": "nps"},
    },
    {
        "type": "satisfaction.rated",
        "customer_id": "C-9",
        "occurred_at": T,
        "source": "s",
        "data": {"score": 9, "scale": "nps", "comment": "great"},
    },
    {
        "type": "usage",
        "customer_id": "C-9",
        "occurred_at": T,
        "source": "s",
        "direction": "inbound",
        "data": {"product": "p", "metric": "m", "value": 1},
    },
    {
        "type": "analysis.completed",
        "occurred_at": T,
        "source": "radar",
        "data": {
            "analysis": "rfm",
            "version": "1",
            "run_id": "r1",
            "view_position": 10,
            "parameters": {"k": 3},
            "metrics": {},
        },
    },
    {
        "type": "analysis.completed",
        "occurred_at": T,
        "source": "radar",
        "data": {
            "analysis": "rfm",
            "version": "1",
            "run_id": "r1",
            "view_position": 10,
            "parameters": "k=3",
        },
    },
    {
        "type": "payment",
        "customer_id": "C-9",
        "occurred_at": T,
        "source": "billing",
        "data": {"invoice_id": "I", "amount": 5, "due_date": "2026-01-01", "days_late": 3},
    },
    {
        "type": "payment",
        "customer_id": "C-9",
        "occurred_at": T,
        "source": "billing",
        "data": {"invoice_id": "I", "amount": 5, "due_date": "2026-13-01"},
    },
    {
        "type": "payment",
        "customer_id": "C-9",
        "occurred_at": T,
        "source": "billing",
        "data": {"invoice_id": "I", "amount": 5, "days_late": -2},
    },
    [1, 2, 3],
    "just a string",
]


@pytest.fixture(scope="module")
def sql_verdicts() -> tuple[dict[int, str | None], dict[int, dict[str, Any]]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    install_catalogue(con)
    raw = pa.table({"line_no": list(range(len(CORPUS))), "raw": [json.dumps(e) for e in CORPUS]})
    con.register("raw_in", raw)
    for statement in validate_steps("raw_in"):
        con.execute(statement)
    errors = dict(con.execute("SELECT line_no, error FROM checked").fetchall())
    encoded = {r["line_no"]: r for r in con.sql(ENCODE_SQL).pl().to_dicts()}
    return errors, encoded


def _pydantic_error(i: int) -> str | None:
    try:
        parse_event(CORPUS[i])
    except InvalidEvent as e:
        return e.field or "event"
    return None


@pytest.mark.parametrize("i", range(len(CORPUS)))
def test_sql_and_pydantic_validators_agree(
    i: int, sql_verdicts: tuple[dict[int, str | None], dict[int, dict[str, Any]]]
) -> None:
    errors, _ = sql_verdicts
    sql_error = errors[i]
    py_error = _pydantic_error(i)
    assert (sql_error is None) == (py_error is None), (CORPUS[i], sql_error, py_error)


VALID = [i for i in range(len(CORPUS)) if _pydantic_error(i) is None]


def test_the_corpus_has_both_good_and_bad_events() -> None:
    assert 10 <= len(VALID) <= len(CORPUS) - 10


@pytest.mark.parametrize("i", VALID)
def test_sql_and_python_encoders_store_the_same_content(
    i: int, sql_verdicts: tuple[dict[int, str | None], dict[int, dict[str, Any]]]
) -> None:
    _, encoded = sql_verdicts
    sql_row = encoded[i]
    py_row = encode_event(parse_event(CORPUS[i]))
    for key in ("source", "stream", "topic", "customer_id", "type"):
        assert sql_row[key] == py_row[key]
    sql_state = json.loads("{" + sql_row["head"] + "}")
    py_state = json.loads("{" + py_row["head"] + "}")
    if "event_id" not in CORPUS[i] or CORPUS[i].get("event_id") is None:
        sql_state.pop("event_id")
        py_state.pop("event_id")
    assert sql_state == py_state
    assert (json.loads(sql_row["pii_plain"]) if sql_row["pii_plain"] else None) == (
        json.loads(py_row["pii_plain"]) if py_row["pii_plain"] else None
    )
