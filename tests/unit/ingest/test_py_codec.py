"""The Python encoder writes exactly these bytes (the stored form is a contract: content ids and
the library's JSON must not drift; ``tests/contract`` checks it agrees with the SQL encoder)."""

from __future__ import annotations

from radar.domain.envelope import parse_event
from radar.ingest.py_codec import encode_event


def test_personal_fields_go_to_pii_and_the_id_is_the_content_hash() -> None:
    row = encode_event(
        parse_event(
            {
                "type": "customer.registered",
                "customer_id": "C-ü",
                "occurred_at": "2026-02-03T04:05:06+01:00",
                "source": "crm",
                "data": {"name": 'Zoë "Z"', "email": "z@ex.nl", "country": "NL"},
            }
        )
    )
    event_id = "radar-eebe8ed256415fe85407eff55a0b37ca"
    assert row["event_id"] == event_id
    assert row["head"] == (
        f'"type":"customer.registered","event_id":"{event_id}","customer_id":"C-ü",'
        '"occurred_at":{"_type_":"datetime_iso","_data_":"2026-02-03T03:05:06+00:00"},'
        '"source":"crm","channel":null,"direction":"inbound","data":{"country":"NL"}'
    )
    assert row["pii_plain"] == '{"name":"Zoë \\"Z\\"","email":"z@ex.nl"}'
    assert (row["stream"], row["topic"]) == ("C-ü", "radar.domain.events:CustomerRegistered")


def test_text_is_escaped_like_json_dumps_and_floats_keep_their_repr() -> None:
    row = encode_event(
        parse_event(
            {
                "event_id": "e-1",
                "type": "purchase",
                "customer_id": "C-1",
                "occurred_at": "2026-02-03T04:05:06.123456Z",
                "source": "shop",
                "channel": "web",
                "data": {"order_id": "1", "amount": 1e16, "product": "p\n\x01"},
            }
        )
    )
    assert row["head"] == (
        '"type":"purchase","event_id":"e-1","customer_id":"C-1","occurred_at":{"_type_":'
        '"datetime_iso","_data_":"2026-02-03T04:05:06.123456+00:00"},"source":"shop",'
        '"channel":"web","direction":"inbound","data":{"order_id":"1","amount":1e+16,'
        '"currency":"EUR","product":"p\\n\\u0001","quantity":1}'
    )
    assert row["pii_plain"] is None


def test_an_integer_beyond_64_bits_is_written_whole_with_the_same_envelope() -> None:
    raw = {
        "event_id": "e-2",
        "type": "purchase",
        "customer_id": "C-1",
        "occurred_at": "2026-02-03T04:05:06.5Z",
        "source": "shop",
        "channel": "web",
        "data": {"order_id": "1", "amount": 3, "product": "p", "quantity": 2**70},
    }
    small = encode_event(parse_event({**raw, "data": {**raw["data"], "quantity": 7}}))
    row = encode_event(parse_event(raw))
    assert row["head"] == small["head"].replace('"quantity":7', f'"quantity":{2**70}')
    assert '"_data_":"2026-02-03T04:05:06.500000+00:00"' in row["head"]
