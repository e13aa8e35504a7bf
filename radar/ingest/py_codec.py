"""Encoding of one validated :class:`~radar.domain.envelope.Event` in Python (the API path).

Produces exactly what :func:`radar.ingest.sql_codec.encode_sql` produces for the same event (the
contract test compares them), for appends too small to be worth a DuckDB query.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from radar.domain.envelope import SYSTEM_STREAM_PREFIX, Event
from radar.domain.events import TOPICS, class_version


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def content_event_id(event: Event) -> str:
    """The id of an event sent without one: ``radar-`` + the MD5 of its canonical JSON.

    Sending the same content again is then recognised as a duplicate (idempotent retries).
    """
    canonical = _dumps(
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
    occurred = {"_type_": "datetime_iso", "_data_": event.occurred_at.isoformat()}
    head = (
        '"type":'
        + _dumps(event.type)
        + ',"event_id":'
        + _dumps(event_id)
        + ',"customer_id":'
        + _dumps(event.customer_id)
        + ',"occurred_at":'
        + _dumps(occurred)
        + ',"source":'
        + _dumps(event.source)
        + ',"channel":'
        + _dumps(event.channel)
        + ',"direction":'
        + _dumps(event.direction)
        + ',"data":'
        + _dumps(event.facts())
    )
    version = class_version(event.type)
    if version > 1:
        head += ',"class_version":' + str(version)
    personal = event.personal_data()
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
