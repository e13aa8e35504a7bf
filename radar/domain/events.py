"""The stored-event classes: one eventsourcing domain-event class per catalogue type.

radar writes each event in the library's format with the topic of its class here
(``radar.domain.events:Purchase``), so the library's ``Mapper`` turns every stored event back into
an instance of these classes. The classes are generated from the catalogue; a type's class is
permanent (its topic is in the log). Changing a type's payload later means raising its
``class_version`` and adding ``upcast_vN_vN+1`` static methods, which the library applies when it
reads old events; stored events are never rewritten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import DomainEvent

from radar.domain.catalogue import CATALOGUE

MODULE = __name__


class RecordedEvent(DomainEvent):
    """Base of radar's stored events: the envelope as fields of a frozen dataclass.

    ``originator_id`` is the stream (the customer id, or ``radar/…`` for radar's own streams),
    ``originator_version`` the position within it, ``timestamp`` the recorded (knowledge) time;
    ``occurred_at`` is business time. ``pii`` holds the encrypted personal fields, if any.
    """

    originator_id: str  # type: ignore[assignment]
    type: str
    event_id: str
    customer_id: str | None
    occurred_at: datetime
    source: str
    channel: str | None
    direction: str | None
    data: dict[str, Any]
    pii: str | None = None

    def __post_init__(self) -> None:  # text stream ids, not UUIDs
        return None


def _make(name: str) -> type[RecordedEvent]:
    cls_name = CATALOGUE[name].class_name
    cls = type(cls_name, (RecordedEvent,), {"__module__": MODULE, "__qualname__": cls_name})
    return cls


EVENT_CLASSES: dict[str, type[RecordedEvent]] = {name: _make(name) for name in CATALOGUE}
globals().update({cls.__qualname__: cls for cls in EVENT_CLASSES.values()})

#: Topic of each type, as written in the ``topic`` column.
TOPICS: dict[str, str] = {
    name: f"{MODULE}:{cls.__qualname__}" for name, cls in EVENT_CLASSES.items()
}
TYPE_OF_TOPIC: dict[str, str] = {topic: name for name, topic in TOPICS.items()}


def class_version(type_name: str) -> int:
    """The current version of a type's stored form (1 until the type is first upcast)."""
    return int(getattr(EVENT_CLASSES[type_name], "class_version", 1))
