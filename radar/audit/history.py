"""A customer's full timeline, read from the event store itself (not from the DuckDB view).

``read_history(engine, customer_id, types=…, since=…, until=…)`` reads the customer's stream in
version order (``EventStore.read_stream``), decodes each stored state (the library's JSON) and
decrypts the personal fields with the customer's key while the key exists. radar's own events on
the customer (segments, scores, ``customer.forgotten``, and the per-decision ``action.*`` events
of older logs) are part of the stream, so they are part of the timeline.

The rules' decisions are recorded many customers at a time, in ``actions.decided`` events of the
system stream :data:`DECISIONS_STREAM` (see :class:`radar.domain.catalogue.ActionsDecided`). Each
decision on the customer is a timeline entry as its own ``action.planned`` /
``action.suppressed`` / ``action.held_out`` event would have been: event id and ``action_id`` the
derived action id, the provenance as ``data``, at the position (and with the times, source and
channel) of the ``actions.decided`` event that holds it; ``stream`` and ``version`` are that
event's. The events are read from the log; the view serves only as an index of *which* ones hold
the customer's decisions (:func:`decision_events`).

Personal data of an event is shown as

* a dict of the decrypted fields, while the customer's key exists;
* ``"[forgotten]"`` once the customer was forgotten (the key is destroyed, the log is unchanged);
* ``None`` when the event carried none.

A key that is missing although the customer was never forgotten (a lost or replaced key store)
is an error (:class:`ConfigurationError`), never shown as forgotten. An unknown customer raises
:class:`NotFound`.

Also here, because every audit reads the store: :func:`require_store` (an audit of a data folder
with no event store fails instead of creating an empty one) and :func:`customer_key`.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag

from radar.domain.catalogue import CATALOGUE, ActionDecision, decision_action_id
from radar.domain.envelope import SYSTEM_STREAM_PREFIX
from radar.domain.errors import ConfigurationError, NotFound, RadarError
from radar.domain.events import TOPICS
from radar.domain.suggest import did_you_mean
from radar.engine import Engine
from radar.privacy.cipher import decrypt
from radar.projections.decode import DECIDED, DECISION_ROWS
from radar.store.base import READ_SCHEMA, EventStore

FORGOTTEN = "[forgotten]"
#: The system stream of the ``actions.decided`` events (their customers are in the payload).
DECISIONS_STREAM = SYSTEM_STREAM_PREFIX + DECIDED
#: How many positions of the log are read at a time when it is scanned for decisions.
SCAN_POSITIONS = 50_000


# -- shared by the audits -------------------------------------------------------------------


def require_store(engine: Engine) -> None:
    """Fail (NotFound) when the engine's SQLite event store does not exist yet.

    Opening a store creates it; an audit must instead say that nothing was recorded there.
    """
    url = engine.settings.store_url
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            raise NotFound(f"no event store at {path}: nothing was recorded in this data folder")


def require_customer(engine: Engine, customer_id: str) -> None:
    """Fail (NotFound) when the log holds no event of ``customer_id``."""
    require_store(engine)
    if engine.store.read_stream(customer_id).num_rows == 0:
        raise NotFound(f"unknown customer {customer_id!r}: the event log holds no event of theirs")


def customer_key(engine: Engine, customer_id: str) -> bytes | None:
    """The customer's data key, or None when the customer was forgotten.

    Raises ConfigurationError when the key store is missing, damaged, or has no key for a
    customer that was never forgotten (personal data could then not be shown, nor honestly be
    called forgotten).
    """
    path = engine.settings.keys_path
    if not path.exists():
        raise ConfigurationError(
            f"the key store {path} is missing: personal data cannot be decrypted "
            "(restore it from a backup)"
        )
    keys = engine.keys
    try:
        found = keys.keys_for([customer_id], create=False)
        forgotten = keys.is_forgotten(customer_id)
    except ConfigurationError:
        raise
    except Exception as e:  # sqlite3.DatabaseError on a damaged file
        raise ConfigurationError(f"the key store {path} is damaged or unreadable: {e}") from e
    if customer_id in found:
        return found[customer_id]
    if forgotten:
        return None
    raise ConfigurationError(
        f"the key store {path} has no key for customer {customer_id!r}, who was never "
        "forgotten: it is not the key store this event log was written with"
    )


def unwrap(value: Any) -> Any:
    """The library's JSON without its type wrappers (``{"_type_", "_data_"}`` → the data)."""
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            return unwrap(value["_data_"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC datetime (naive means UTC), None stays None."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_utc(text: str) -> datetime:
    """An ISO 8601 timestamp as written by the library (always with an offset)."""
    return datetime.fromisoformat(text)


# -- the timeline ---------------------------------------------------------------------------


@dataclass(slots=True)
class HistoryEvent:
    """One event of the customer's timeline, decoded (a decision of an ``actions.decided``
    event is one entry, as its own ``action.*`` event would have been)."""

    position: int
    stream: str
    version: int
    type: str
    event_id: str
    occurred_at: datetime
    recorded_at: datetime
    source: str
    channel: str | None
    direction: str | None
    data: dict[str, Any]
    personal: dict[str, Any] | str | None
    written_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "stream": self.stream,
            "version": self.version,
            "type": self.type,
            "event_id": self.event_id,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "source": self.source,
            "channel": self.channel,
            "direction": self.direction,
            "written_by": self.written_by,
            "data": self.data,
            "personal": self.personal,
        }


@dataclass(frozen=True)
class History:
    """The customer's timeline: ``total`` events in the log, ``events`` those that matched."""

    customer_id: str
    forgotten: bool
    total: int
    events: list[HistoryEvent] = field(default_factory=list)
    filters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "forgotten": self.forgotten,
            "total": self.total,
            "matched": len(self.events),
            "filters": self.filters,
            "events": [e.to_dict() for e in self.events],
        }


@dataclass(frozen=True)
class _Filter:
    """Which entries a timeline keeps: these types (all when empty), occurred in the window."""

    types: set[str]
    since: datetime | None
    until: datetime | None

    def wants(self, type_: str) -> bool:
        """Whether entries of ``type_`` are kept (when they occurred in the window)."""
        return not self.types or type_ in self.types

    def within(self, occurred: datetime) -> bool:
        """Whether ``occurred`` is in the window (inclusive)."""
        return not (
            (self.since is not None and occurred < self.since)
            or (self.until is not None and occurred > self.until)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "types": sorted(self.types),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def check_types(types: Iterable[str]) -> tuple[str, ...]:
    """The given event type names, each checked against the catalogue (RadarError if unknown)."""
    out = tuple(types)
    for t in out:
        if t not in CATALOGUE:
            raise RadarError(f"unknown event type {t!r}{did_you_mean(t, CATALOGUE)}")
    return out


def read_history(
    engine: Engine,
    customer_id: str,
    *,
    types: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> History:
    """The customer's events and decisions in log order, filtered by type and business time
    (inclusive); ``total`` counts them all, unfiltered."""
    wanted = set(check_types(types))
    since, until = as_utc(since), as_utc(until)
    if since is not None and until is not None and since > until:
        raise RadarError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    require_store(engine)
    stream = engine.store.read_stream(customer_id)
    if stream.num_rows == 0:
        raise NotFound(f"unknown customer {customer_id!r}: the event log holds no event of theirs")
    decided = decision_events(engine, customer_id)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # tens of thousands of small dicts: the cyclic GC would rescan them repeatedly
    try:
        return _history(engine, customer_id, stream, decided, _Filter(wanted, since, until))
    finally:
        if gc_was_enabled:
            gc.enable()


def _history(
    engine: Engine,
    customer_id: str,
    stream: pa.Table,
    decided: pa.Table,
    keep: _Filter,
) -> History:
    """The timeline of the customer's ``stream`` and their decisions in ``decided``."""
    positions = stream.column("position").to_pylist()
    versions = stream.column("stream_version").to_pylist()
    raw = stream.column("state").to_pylist()
    # States hold two type wrappers (timestamp, occurred_at); more means a wrapped payload value.
    wrapped = [_wrapped(r) for r in raw]
    # One parse of all states as a JSON array: far cheaper than a json.loads per event.
    states: list[dict[str, Any]] = json.loads(b"[" + b",".join(raw) + b"]")
    forgotten = any(s["type"] == "customer.forgotten" for s in states)
    selected: list[tuple[int, int, datetime, bool, dict[str, Any]]] = []
    for pos, ver, wrap, state in zip(positions, versions, wrapped, states, strict=True):
        if not keep.wants(state["type"]):
            continue
        occurred = parse_utc(state["occurred_at"]["_data_"])
        if keep.within(occurred):
            selected.append((pos, ver, occurred, wrap, state))
    key: bytes | None = None
    if any(s.get("pii") for *_, s in selected):
        key = customer_key(engine, customer_id)
        forgotten = forgotten or key is None
    recorded: dict[str, datetime] = {}  # a batch shares one recorded time: parse it once
    events = [_event(*row, customer_id, key, recorded) for row in selected]
    decisions = list(customer_decisions(decided, customer_id))
    kept = [d for d in decisions if keep.wants(d.type) and keep.within(d.occurred_at)]
    if kept:  # both are in position order; a sort of the two runs merges them
        events = sorted(events + kept, key=lambda e: e.position)
    total = stream.num_rows + len(decisions)
    return History(customer_id, forgotten, total, events, keep.to_dict())


_WRITTEN_BY = {name: t.written_by for name, t in CATALOGUE.items()}


def _wrapped(raw: bytes) -> bool:
    """Whether a stored state holds a type-wrapped payload value (more than the two wrappers
    of ``timestamp`` and ``occurred_at``)."""
    return raw.count(b'"_type_"') > 2


def _event(
    position: int,
    version: int,
    occurred: datetime,
    wrapped: bool,
    state: dict[str, Any],
    customer_id: str,
    key: bytes | None,
    recorded: dict[str, datetime],
) -> HistoryEvent:
    token = state.get("pii")
    personal: dict[str, Any] | str | None = None
    if token:
        personal = FORGOTTEN if key is None else decrypt_personal(key, customer_id, token)
    type_ = state["type"]
    data = state.get("data") or {}
    stamp = state["timestamp"]["_data_"]
    recorded_at = recorded.get(stamp)
    if recorded_at is None:
        recorded_at = recorded[stamp] = datetime.fromisoformat(stamp)
    return HistoryEvent(
        position,
        customer_id,
        version,
        type_,
        state["event_id"],
        occurred,
        recorded_at,
        state["source"],
        state.get("channel"),
        state.get("direction"),
        unwrap(data) if wrapped else data,
        personal,
        _WRITTEN_BY.get(type_, "unknown"),
    )


# -- decisions recorded many customers at a time --------------------------------------------


def decision_events(engine: Engine, customer_id: str) -> pa.Table:
    """The stored ``actions.decided`` events that may hold decisions on ``customer_id``, as rows
    of :data:`~radar.store.base.READ_SCHEMA` in position order.

    The view is an index up to its own position: its rows of the customer's decisions in
    :data:`DECISIONS_STREAM` name the positions of the events that hold them (a few per rule
    set applied), and those are read from the log by position. The log after the view's
    position is scanned for ``actions.decided`` events (:func:`read_after`): the view is not
    caught up here, since catching up is its owner's work (in the service, the live loop's).
    Without a view file, or with one another process holds, the whole log is scanned.
    """
    indexed, upto = _indexed_positions(engine, customer_id)
    tables = chain(read_positions(engine.store, indexed), read_after(engine.store, upto))
    topic = TOPICS[DECIDED]
    decided = [t.filter(pc.equal(t.column("topic"), topic)) for t in tables]
    return pa.concat_tables(decided) if decided else READ_SCHEMA.empty_table()


def _indexed_positions(engine: Engine, customer_id: str) -> tuple[list[int], int]:
    """The positions the view lists for the customer's decisions in :data:`DECISIONS_STREAM`,
    ascending, and the view's position; ``([], 0)`` when there is no view to ask."""
    if not engine.settings.view_path.exists():
        return [], 0  # an audit does not create a view
    try:
        con = engine.view
        upto = engine.projector.position()
    except RadarError:  # the view is held by another process
        return [], 0
    rows = con.execute(
        f"SELECT DISTINCT position FROM events WHERE customer_id = $cid AND {DECISION_ROWS} "
        "AND position <= $upto ORDER BY position",
        {"cid": customer_id, "upto": upto},
    ).fetchall()
    return [int(p) for (p,) in rows], upto


def read_positions(store: EventStore, positions: list[int]) -> Iterator[pa.Table]:
    """The stored events at ``positions`` (ascending), one read per run of consecutive ones."""
    start = 0
    for i in range(1, len(positions) + 1):
        if i == len(positions) or positions[i] != positions[i - 1] + 1:
            yield store.read_range(positions[start] - 1, positions[i - 1])
            start = i


def read_after(store: EventStore, after: int) -> Iterator[pa.Table]:
    """The stored events after position ``after``, :data:`SCAN_POSITIONS` positions at a time
    (the caller keeps what it looks for of each, so the whole tail is never held at once)."""
    head = store.max_position()
    while after < head:
        upto = min(head, after + SCAN_POSITIONS)
        yield store.read_range(after, upto)
        after = upto


def customer_decisions(decided: pa.Table, customer_id: str) -> Iterator[HistoryEvent]:
    """Every decision on ``customer_id`` in the stored ``actions.decided`` events ``decided``,
    in their order, as the timeline entry its own ``action.*`` event would have given."""
    needle = _json_needle(customer_id)
    columns = [decided.column(c).to_pylist() for c in ("position", "stream_version", "state")]
    for position, version, raw in zip(*columns, strict=True):
        if needle is not None and needle not in raw:
            continue  # the customer is not among this event's decisions
        state = json.loads(raw)
        data = unwrap(state["data"]) if _wrapped(raw) else state["data"]
        lists = data["decisions"]
        names = data.get("condition_columns") or []
        for cid, values in zip(lists["customer_id"], lists["condition_values"], strict=True):
            if cid == customer_id:
                named = dict(zip(names, values, strict=True))
                yield _decision(position, version, state, data, customer_id, named)


def _json_needle(customer_id: str) -> bytes | None:
    """The customer id as a JSON string literal, when every JSON writer writes it so (nothing
    in it to escape); None when it may be written otherwise (no quick test then)."""
    text = json.dumps(customer_id)
    return text.encode() if text[1:-1] == customer_id else None


#: The payload fields of a decision's own ``action.*`` event, in payload order.
_DECISION_FIELDS = tuple(ActionDecision.model_fields)


def _decision(
    position: int,
    version: int,
    state: dict[str, Any],
    data: dict[str, Any],
    customer_id: str,
    condition_values: dict[str, Any],
) -> HistoryEvent:
    """One decision on ``customer_id`` of the ``actions.decided`` event ``state`` (its decoded
    payload ``data``) as the entry of its own ``action.*`` event: the derived action id as
    event id and ``action_id``, the provenance fields that are set, the condition values by
    column, the action type's direction, no personal data."""
    type_ = "action." + data["decision"]
    action_id = decision_action_id(
        data["ruleset_hash"], data["rule_id"], customer_id, int(data["view_position"])
    )
    given = {**data, "action_id": action_id, "condition_values": condition_values}
    return HistoryEvent(
        position,
        DECISIONS_STREAM,
        version,
        type_,
        action_id,
        parse_utc(state["occurred_at"]["_data_"]),
        datetime.fromisoformat(state["timestamp"]["_data_"]),
        state["source"],
        state.get("channel"),
        CATALOGUE[type_].direction,
        {k: given[k] for k in _DECISION_FIELDS if given.get(k) is not None},
        None,
        _WRITTEN_BY.get(type_, "unknown"),
    )


def decrypt_personal(key: bytes, customer_id: str, token: str) -> dict[str, Any]:
    """The personal fields of one event; ConfigurationError when the key does not open them."""
    try:
        plain = decrypt(key, customer_id, token)
    except (InvalidTag, ValueError) as e:
        raise ConfigurationError(
            f"the personal data of customer {customer_id!r} cannot be decrypted with the key in "
            f"the key store (wrong or damaged key, or altered ciphertext): {type(e).__name__}"
        ) from e
    value = json.loads(plain)
    return value if isinstance(value, dict) else {"value": value}
