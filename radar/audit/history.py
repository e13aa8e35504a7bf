"""A customer's full timeline, read from the event store itself (not from the DuckDB view).

``read_history(engine, customer_id, types=…, since=…, until=…)`` reads the customer's stream in
version order (``EventStore.read_stream``), decodes each stored state (the library's JSON) and
decrypts the personal fields with the customer's key while the key exists. radar's own events on
the customer (segments, scores, actions, ``customer.forgotten``) are part of the stream, so they
are part of the timeline.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from cryptography.exceptions import InvalidTag

from radar.domain.catalogue import CATALOGUE
from radar.domain.errors import ConfigurationError, NotFound, RadarError
from radar.domain.suggest import did_you_mean
from radar.engine import Engine
from radar.privacy.cipher import decrypt

FORGOTTEN = "[forgotten]"


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
    """One stored event of the customer, decoded."""

    position: int
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
    """The customer's events in stream order, filtered by type and business time (inclusive)."""
    wanted = set(check_types(types))
    since, until = as_utc(since), as_utc(until)
    if since is not None and until is not None and since > until:
        raise RadarError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    require_store(engine)
    stream = engine.store.read_stream(customer_id)
    if stream.num_rows == 0:
        raise NotFound(f"unknown customer {customer_id!r}: the event log holds no event of theirs")
    gc_was_enabled = gc.isenabled()
    gc.disable()  # tens of thousands of small dicts: the cyclic GC would rescan them repeatedly
    try:
        return _history(engine, customer_id, stream, wanted, since, until)
    finally:
        if gc_was_enabled:
            gc.enable()


def _history(
    engine: Engine,
    customer_id: str,
    stream: pa.Table,
    wanted: set[str],
    since: datetime | None,
    until: datetime | None,
) -> History:
    positions = stream.column("position").to_pylist()
    versions = stream.column("stream_version").to_pylist()
    raw = stream.column("state").to_pylist()
    # States hold two type wrappers (timestamp, occurred_at); more means a wrapped payload value.
    wrapped = [r.count(b'"_type_"') > 2 for r in raw]
    # One parse of all states as a JSON array: far cheaper than a json.loads per event.
    states: list[dict[str, Any]] = json.loads(b"[" + b",".join(raw) + b"]")
    forgotten = any(s["type"] == "customer.forgotten" for s in states)
    selected: list[tuple[int, int, datetime, bool, dict[str, Any]]] = []
    for pos, ver, wrap, state in zip(positions, versions, wrapped, states, strict=True):
        if wanted and state["type"] not in wanted:
            continue
        occurred = parse_utc(state["occurred_at"]["_data_"])
        if (since is not None and occurred < since) or (until is not None and occurred > until):
            continue
        selected.append((pos, ver, occurred, wrap, state))
    key: bytes | None = None
    if any(s.get("pii") for *_, s in selected):
        key = customer_key(engine, customer_id)
        forgotten = forgotten or key is None
    recorded: dict[str, datetime] = {}  # a batch shares one recorded time: parse it once
    events = [_event(*row, customer_id, key, recorded) for row in selected]
    filters = {
        "types": sorted(wanted),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }
    return History(customer_id, forgotten, stream.num_rows, events, filters)


_WRITTEN_BY = {name: t.written_by for name, t in CATALOGUE.items()}


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
