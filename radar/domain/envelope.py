"""The event envelope (public contract) and per-type event models built from the catalogue.

An operational system sends ``{"event_id", "type", "customer_id", "occurred_at", "source",
"channel", "direction", "data"}``. :func:`parse_event` validates one such object against the
envelope and its type's payload and returns a frozen :class:`Event`, or raises
:class:`~radar.domain.errors.InvalidEvent` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from radar.domain.catalogue import CATALOGUE, EventType, Payload
from radar.domain.errors import InvalidEvent
from radar.domain.suggest import did_you_mean
from radar.domain.vocabulary import Channel, Direction

#: Largest accepted event, as JSON text; bigger ones are rejected as oversized.
MAX_EVENT_BYTES = 64 * 1024
#: Prefix reserved for radar's own streams (analysis runs, rule sets); no customer id may use it.
SYSTEM_STREAM_PREFIX = "radar/"

EventId = Annotated[str, Field(min_length=1, max_length=200)]
CustomerId = Annotated[str, Field(min_length=1, max_length=100)]
Source = Annotated[str, Field(min_length=1, max_length=100)]

ENVELOPE_FIELDS = (
    "event_id",
    "type",
    "customer_id",
    "occurred_at",
    "source",
    "channel",
    "direction",
    "data",
)


class EnvelopeBase(BaseModel):
    """Fields common to every event. Subclasses fix ``type`` and ``data`` per catalogue entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[EventType]

    event_id: EventId | None = Field(
        default=None, description="Idempotency key, unique per source; assigned when absent"
    )
    customer_id: CustomerId | None = None
    occurred_at: datetime = Field(description="Business time (ISO 8601; naive means UTC)")
    source: Source = Field(description="The operational system that sent the event")
    channel: Channel | None = None
    direction: Direction | None = None

    @model_validator(mode="after")
    def _fits_catalogue(self) -> EnvelopeBase:
        t = self.event_type
        if t.customer and self.customer_id is None:
            raise ValueError("customer_id: required for this event type")
        if self.customer_id is not None and self.customer_id.startswith(SYSTEM_STREAM_PREFIX):
            raise ValueError(f"customer_id: may not start with {SYSTEM_STREAM_PREFIX!r}")
        if t.channel_required and self.channel is None:
            raise ValueError(f"channel: required for {t.name}")
        fixed = t.direction in ("inbound", "outbound")
        if t.direction == "required" and self.direction is None:
            raise ValueError(f"direction: required for {t.name} (inbound or outbound)")
        if t.direction == "none" and self.direction is not None:
            raise ValueError(f"direction: {t.name} has no direction")
        if fixed and self.direction is not None and self.direction.value != t.direction:
            raise ValueError(f"direction: {t.name} is always {t.direction}")
        return self


def _model_for(t: EventType) -> type[EnvelopeBase]:
    # a Literal made at run time, one per catalogue entry (typed Any: no static type exists)
    type_literal: Any = Literal.__getitem__(t.name)
    model = create_model(
        t.class_name + "Event",
        __base__=EnvelopeBase,
        __doc__=t.summary,
        type=(type_literal, Field(description="The event type")),
        data=(t.payload, Field(default_factory=t.payload)),
    )
    model.event_type = t
    return model


EVENT_MODELS: dict[str, type[EnvelopeBase]] = {name: _model_for(t) for name, t in CATALOGUE.items()}


class Event(NamedTuple):
    """A validated event: the envelope with a typed payload; ``direction`` filled by default,
    ``occurred_at`` in UTC. Made only by :func:`parse_event` (validated there), so a plain
    immutable record: a second pydantic model per event cost a third of the validation, and a
    frozen dataclass still twice what a named tuple costs."""

    event_id: str | None
    type: str
    customer_id: str | None
    occurred_at: datetime
    source: str
    channel: str | None
    direction: str | None
    data: Payload

    @property
    def catalogue_entry(self) -> EventType:
        return CATALOGUE[self.type]

    def facts(self) -> dict[str, Any]:
        """The non-personal payload fields that were given (JSON-ready)."""
        personal = set(self.catalogue_entry.personal_fields)
        dumped = self.data.model_dump(mode="json", exclude_none=True)
        return {k: v for k, v in dumped.items() if k not in personal}

    def personal_data(self) -> dict[str, Any]:
        """The personal payload fields that were given (JSON-ready); stored encrypted."""
        personal = set(self.catalogue_entry.personal_fields)
        dumped = self.data.model_dump(mode="json", exclude_none=True)
        return {k: v for k, v in dumped.items() if k in personal}


def _field_path(loc: tuple[int | str, ...], obj: Any) -> tuple[int | str, ...]:
    """The part of a pydantic error location that names input fields (drops union tags)."""
    out: list[int | str] = []
    node = obj
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            out.append(part)
            node = node[part]
        elif (isinstance(part, str) and not out) or isinstance(node, Mapping):
            out.append(part)
            node = None
        else:
            break
    return tuple(out)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def parse_event(obj: Mapping[str, Any], *, where: str = "") -> Event:
    """Validate one envelope; raise :class:`InvalidEvent` naming the first offending field."""
    if type(obj) is not dict and not isinstance(obj, Mapping):  # a dict: no ABC check
        raise InvalidEvent("an event must be a JSON object", where=where)
    name = obj.get("type")
    if not isinstance(name, str):
        raise InvalidEvent("missing or non-string event type", where=where, field="type")
    model = EVENT_MODELS.get(name)
    if model is None:
        raise InvalidEvent(
            f"unknown event type {name!r}{did_you_mean(name, CATALOGUE)}", where=where, field="type"
        )
    try:
        # the validator itself: model_validate adds a layer of Python per call
        env: EnvelopeBase = model.__pydantic_validator__.validate_python(
            obj if type(obj) is dict else dict(obj)
        )
    except ValidationError as e:
        err = e.errors()[0]
        field = _location(_field_path(err["loc"], obj))
        msg = err["msg"]
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
            if not field and ": " in msg:
                field, msg = msg.split(": ", 1)
        if err["type"] == "extra_forbidden":
            allowed = list(model.model_fields) if "." not in field else []
            if field.startswith("data."):
                allowed = list(model.event_type.payload.model_fields)
            msg = "unknown field" + did_you_mean(field.rsplit(".", 1)[-1], allowed)
        raise InvalidEvent(msg, where=where, field=field) from None
    t = model.event_type
    occurred = env.occurred_at if env.occurred_at.tzinfo else env.occurred_at.replace(tzinfo=UTC)
    direction = env.direction.value if env.direction else None
    if direction is None and t.direction in ("inbound", "outbound"):
        direction = t.direction
    return Event(  # by position, in field order: cheaper than by keyword
        env.event_id,
        name,
        env.customer_id,
        occurred.astimezone(UTC),
        env.source,
        env.channel.value if env.channel else None,
        direction,
        env.data,  # type: ignore[attr-defined]  # per-type models add it
    )


@dataclass(frozen=True)
class Refused:
    """An event of a list that did not validate: its index, the field and the reason."""

    index: int
    field: str
    reason: str
    event_id: str | None


def parse_events(events: Iterable[Any]) -> tuple[list[tuple[int, Event]], list[Refused]]:
    """Validate a list of envelopes: the valid ones with their indexes, and the refused ones."""
    valid: list[tuple[int, Event]] = []
    refused: list[Refused] = []
    for i, raw in enumerate(events):
        try:
            valid.append((i, parse_event(raw)))  # a refusal names its field; the index is i
        except InvalidEvent as e:
            refused.append(Refused(i, e.field, e.reason, given_event_id(raw)))
    return valid, refused


def given_event_id(raw: object) -> str | None:
    """The ``event_id`` an envelope carries, if it is a string (for reporting a refusal)."""
    if isinstance(raw, Mapping):
        value = raw.get("event_id")
        return value if isinstance(value, str) else None
    return None


def json_schemas() -> dict[str, Any]:
    """The JSON Schema of every event type, keyed by type name."""
    return {name: model.model_json_schema() for name, model in EVENT_MODELS.items()}
