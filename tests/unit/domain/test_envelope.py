"""The envelope and catalogue: good events pass, bad ones are rejected naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from factories import purchase

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import json_schemas, parse_event
from radar.domain.errors import InvalidEvent
from radar.domain.fieldspec import column_for, fact_columns, payload_fields


def test_a_valid_purchase_is_parsed_with_typed_payload_and_utc_time() -> None:
    event = parse_event(purchase(1))
    assert event.type == "purchase"
    assert event.occurred_at.utcoffset() is not None
    assert event.facts()["amount"] == 10.0
    assert event.facts()["currency"] == "EUR"  # default filled


def test_a_fixed_direction_is_filled_when_absent() -> None:
    raw = purchase(1)
    del raw["direction"]
    assert parse_event(raw).direction == "inbound"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "purchse"}, "type"),
        ({"customer_id": None}, "customer_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"channel": "pigeon"}, "channel"),
        ({"direction": "outbound"}, ""),
        ({"data": {"order_id": "1", "amount": "12", "product": "p"}}, "data.amount"),
        ({"data": {"order_id": "1", "amount": 12, "product": "p", "colour": "red"}}, "data.colour"),
        ({"data": {"amount": 12, "product": "p"}}, "data.order_id"),
        ({"source": ""}, "source"),
        ({"customer_id": "radar/x"}, ""),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_envelope_is_rejected_naming_the_field(change: dict[str, Any], field: str) -> None:
    raw = {**purchase(1), **change}
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw, where="file.jsonl:3")
    assert str(info.value).startswith("file.jsonl:3: ")
    assert info.value.field.startswith(field)


def test_an_unknown_type_suggests_the_closest_one() -> None:
    with pytest.raises(InvalidEvent, match="did you mean 'purchase'"):
        parse_event({**purchase(1), "type": "purchse"})


def test_a_contact_needs_a_direction_and_a_channel() -> None:
    base = {
        "type": "contact",
        "customer_id": "C",
        "occurred_at": "2026-01-01T00:00:00Z",
        "source": "cc",
        "data": {"reason": "complaint"},
    }
    with pytest.raises(InvalidEvent):
        parse_event({**base, "channel": "phone"})
    with pytest.raises(InvalidEvent):
        parse_event({**base, "direction": "inbound"})
    assert parse_event({**base, "channel": "phone", "direction": "inbound"}).channel == "phone"


def test_personal_fields_are_kept_apart_from_facts() -> None:
    event = parse_event(
        {
            "type": "customer.registered",
            "customer_id": "C",
            "occurred_at": "2026-01-01T00:00:00Z",
            "source": "crm",
            "data": {"name": "Ann", "email": "a@x.nl", "city": "Utrecht"},
        }
    )
    assert event.facts() == {"city": "Utrecht"}
    assert event.personal_data() == {"name": "Ann", "email": "a@x.nl"}


def test_every_type_has_a_json_schema_with_its_payload() -> None:
    schemas = json_schemas()
    assert set(schemas) == set(CATALOGUE)
    for name, schema in schemas.items():
        assert schema["properties"]["type"]["const"] == name
        assert "data" in schema["properties"]


def test_a_payload_field_name_has_one_type_across_the_catalogue() -> None:
    columns = fact_columns()
    for name in CATALOGUE:
        for f in payload_fields(name):
            if not f.personal:
                assert columns[column_for(f.name)] == f.sql_type, (name, f.name)


def test_personal_fields_are_marked_in_the_catalogue() -> None:
    personal = {f.name for n in CATALOGUE for f in payload_fields(n) if f.personal}
    assert {"name", "email", "phone", "address", "note", "comment"} <= personal
