"""Upcasting old stored events on their way into the view, through the library's own mapper.

A type whose payload changes gets ``class_version = N`` and ``upcast_vK_vK+1`` static methods on
its class in :mod:`radar.domain.events` — the eventsourcing way. Stored events are never
rewritten: when the projector reads a batch, the (rare) rows of versioned types stored in an older
version are decoded by the library's ``Mapper`` (which applies the upcasters) and re-encoded in
the current version; every other row stays on the set-based path untouched.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)

from radar.domain.catalogue import CATALOGUE
from radar.domain.events import TOPICS, class_version


def _mapper() -> Mapper[Any]:
    transcoder = JSONTranscoder()
    for t in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(t)
    return Mapper(transcoder)


def versioned_topics() -> dict[str, int]:
    """Topics whose current class version is above 1, with that version."""
    return {TOPICS[n]: v for n in CATALOGUE if (v := class_version(n)) > 1}


def upcast_batch(batch: pa.Table) -> pa.Table:
    """``batch`` with every outdated state of a versioned type upcast to the current version."""
    versions = versioned_topics()
    if not versions:
        return batch
    topics = batch.column("topic")
    mask = pc.is_in(topics, value_set=pa.array(list(versions)))
    if not pc.any(mask).as_py():
        return batch
    mapper = _mapper()
    states = batch.column("state").to_pylist()
    streams = batch.column("stream").to_pylist()
    numbers = batch.column("stream_version").to_pylist()
    changed = False
    for i in pc.indices_nonzero(mask).to_pylist():
        topic = topics[i].as_py()
        if json.loads(states[i]).get("class_version", 1) >= versions[topic]:
            continue
        event = mapper.to_domain_event(StoredEvent(streams[i], numbers[i], topic, states[i]))
        states[i] = mapper.to_stored_event(event).state
        changed = True
    if not changed:
        return batch
    index = batch.schema.get_field_index("state")
    return batch.set_column(index, "state", pa.array(states, pa.binary()))
