"""Encoding of one validated :class:`~radar.domain.envelope.Event` in Python (the API path).

Produces exactly what :func:`radar.ingest.sql_codec.encode_sql` produces for the same event (the
contract test compares them), for appends too small to be worth a DuckDB query.

It runs once per appended event, so it does the least Python it can: JSON by orjson (compact,
UTF-8 as it is: the same document as ``json.dumps(obj, separators=(",", ":"),
ensure_ascii=False)``, numbers in their shortest round-trip form), the envelope encoded as one
object whose braces are dropped, one dump of the payload split into facts and personal data, and
the personal fields of each type listed once, at import time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import orjson

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import SYSTEM_STREAM_PREFIX, Event
from radar.domain.events import TOPICS, class_version


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


#: Compact JSON without ASCII escapes, for what orjson refuses (integers beyond 64 bits);
#: datetimes as ``isoformat()``, as orjson writes them.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_iso)
#: The personal payload fields of each type (stored encrypted, not in the head).
_PERSONAL = {name: frozenset(t.personal_fields) for name, t in CATALOGUE.items()}


def _dumps(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return _ENCODER.encode(obj)


def _payload(event: Event) -> tuple[dict[str, Any], dict[str, Any]]:
    """The given payload fields (JSON-ready) split into (facts, personal data); the same as
    :meth:`Event.facts` and :meth:`Event.personal_data` with one dump."""
    dumped = event.data.model_dump(mode="json", exclude_none=True)
    personal = _PERSONAL[event.type]
    if not personal:
        return dumped, {}
    facts = {k: v for k, v in dumped.items() if k not in personal}
    return facts, {k: v for k, v in dumped.items() if k in personal}


def content_event_id(event: Event) -> str:
    """The id of an event sent without one: ``radar-`` + the MD5 of its canonical JSON.

    Sending the same content again is then recognised as a duplicate (idempotent retries). The
    canonical text is the stdlib encoder's, as it has always been, so ids never change.
    """
    canonical = _ENCODER.encode(
        {
            "type": event.type,
            "customer_id": event.customer_id,
            "occurred_at": event.occurred_at.isoformat(),
            "source": event.source,
            "channel": event.channel,
            "direction": event.direction,
            "data": event.data.model_dump(mode="json", exclude_none=True),
        }
    )
    return "radar-" + hashlib.md5(canonical.encode("utf-8"), usedforsecurity=False).hexdigest()


def encode_event(event: Event) -> dict[str, Any]:
    """The staged-row fields of one event (without line_no): see ``encode_sql``."""
    event_id = event.event_id or content_event_id(event)
    facts, personal = _payload(event)
    envelope = {
        "type": event.type,
        "event_id": event_id,
        "customer_id": event.customer_id,
        # orjson writes a UTC datetime as isoformat() does (the library's encoding)
        "occurred_at": {"_type_": "datetime_iso", "_data_": event.occurred_at},
        "source": event.source,
        "channel": event.channel,
        "direction": event.direction,
        "data": facts,
    }
    head = _dumps(envelope)[1:-1]  # the members of the envelope object, without its braces
    version = class_version(event.type)  # looked up each time: a type may be upcast at run time
    if version > 1:
        head += f',"class_version":{version}'
    return {
        "source": event.source,
        "event_id": event_id,
        "stream": event.customer_id or f"{SYSTEM_STREAM_PREFIX}{event.type}",
        "topic": TOPICS[event.type],
        "customer_id": event.customer_id,
        "occurred_at": event.occurred_at,
        "type": event.type,
        "head": head,
        "pii_plain": _dumps(personal) if personal else None,
    }
