"""Bulk decoding of stored events (library JSON) into the typed columns of the events table.

The state of every stored event is the library's JSON, so DuckDB can decode whole Arrow batches
with one ``json_transform`` — no Python object per event. Datetimes are the library's
``{"_type_": "datetime_iso", "_data_": …}`` objects.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import SYSTEM_STREAM_PREFIX
from radar.domain.events import TOPICS
from radar.domain.fieldspec import fact_columns, payload_fields
from radar.projections.schema import ENVELOPE_COLUMNS, event_columns

_JSON_TYPES = {"TIMESTAMPTZ": "VARCHAR", "DATE": "VARCHAR"}


def _structure() -> str:
    data = {
        (name[len("data_") :] if name.startswith("data_") else name): _JSON_TYPES.get(t, t)
        for name, t in fact_columns().items()
    }
    spec = {
        "timestamp": {"_data_": "VARCHAR"},
        "type": "VARCHAR",
        "event_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "occurred_at": {"_data_": "VARCHAR"},
        "source": "VARCHAR",
        "channel": "VARCHAR",
        "direction": "VARCHAR",
        "data": data,
        "pii": "VARCHAR",
    }
    return json.dumps(spec).replace("'", "''")


def decode_sql(batch: str = "batch") -> str:
    """SELECT the events-table columns (in table order) from a batch of stored rows.

    The payload fields are read from the payload struct ``d`` (``d."amount"``), not through the
    whole state (``s.data."amount"``): names of three parts made the statement a third dearer
    for DuckDB to plan, which it does at every catch-up.
    """
    facts = []
    for name, t in fact_columns().items():
        key = name[len("data_") :] if name.startswith("data_") else name
        src = f'd."{key}"'
        if t in ("TIMESTAMPTZ", "DATE"):
            src = f"CAST({src} AS {t})"
        facts.append(f'{src} AS "{name}"')
    cols = [
        "position",
        "stream",
        "stream_version",
        "s.type AS type",
        "s.event_id AS event_id",
        "s.customer_id AS customer_id",
        "CAST(s.occurred_at._data_ AS TIMESTAMPTZ) AS occurred_at",
        "CAST(s.timestamp._data_ AS TIMESTAMPTZ) AS recorded_at",
        "s.source AS source",
        "s.channel AS channel",
        "s.direction AS direction",
        "s.pii IS NOT NULL AS has_pii",
        *facts,
    ]
    assert len(cols) == len(event_columns())
    return f"""
    SELECT {", ".join(cols)}
    FROM (
        SELECT position, stream, stream_version, s, s.data AS d
        FROM (
            SELECT position, stream, stream_version,
                   json_transform(decode(state), '{_structure()}') AS s
            FROM {batch}
        )
    )
    """


#: The event type that carries many decisions (see :class:`radar.domain.catalogue.ActionsDecided`).
DECIDED = "actions.decided"
#: The rows of ``events`` that are decisions of an ``actions.decided`` event (not stored events).
DECISION_ROWS = f"(stream = '{SYSTEM_STREAM_PREFIX}{DECIDED}' AND type <> '{DECIDED}')"
_DECISION_LISTS = '{"customer_id":["VARCHAR"],"condition_values":["JSON"]}'
#: A decision's condition values as the JSON object of the old per-decision events: the event's
#: ``condition_columns`` paired with the decision's values (``__cv``, a JSON array).
_CONDITION_OBJECT = (
    "to_json(map(CAST(e.condition_columns AS VARCHAR[]), json_transform(__cv, '[\"JSON\"]')))"
)
#: The temporary table of the unnested decisions (see :func:`expand_decisions_sql`).
_UNNESTED = "__radar_decisions"
#: :func:`radar.domain.catalogue.decision_action_id` of a decision row.
_ACTION_ID = "md5(e.ruleset_hash || '|' || e.rule_id || '|' || __cid || '|' || e.view_position)"


def holds_decisions(batch: pa.Table) -> bool:
    """Whether ``batch`` (stored rows) holds an ``actions.decided`` event, whose decisions
    :func:`expand_decisions_sql` then gives rows of their own."""
    return bool(pc.any(pc.equal(batch.column("topic"), TOPICS[DECIDED])).as_py())


def _decision_columns() -> tuple[list[str], list[str]]:
    """The events-table columns of one decision of an ``actions.decided`` row ``e`` whose
    decision lists are unnested as ``__cid`` and ``__cv`` (the row an ``action.<decision>``
    event of that decision would have given), and the columns of ``e`` they read."""
    batch = {f.name for f in payload_fields(DECIDED)} - {"decision", "decisions"}
    single = {f.name for f in payload_fields("action.planned")}
    own = {
        "type": "'action.' || e.decision",
        "event_id": _ACTION_ID,
        "customer_id": "__cid",
        "direction": f"'{CATALOGUE['action.planned'].direction}'",
        "has_pii": "FALSE",
        "action_id": _ACTION_ID,
        "condition_values": _CONDITION_OBJECT,
    }
    cols, read = [], ["decision", "condition_columns"]
    for name in event_columns():
        if name in own:
            cols.append(f"{own[name]} AS {name}")
        elif name in ENVELOPE_COLUMNS or (name in batch and name in single):
            cols.append(f'e."{name}" AS "{name}"')
            read.append(name)
        else:
            cols.append(f'NULL AS "{name}"')
    return cols, read


def expand_decisions_sql(where: str = "TRUE", events: str = "events") -> list[str]:
    """The statements that give every decision of the ``actions.decided`` rows of ``events``
    matching ``where`` its own row (same position) and then empty those rows' ``decisions``
    (the lists are in the log; the view keeps each decision once, as its own row).

    The decisions are first unnested into a narrow temporary table and then written from it:
    DuckDB writes a table's rows on all its threads, while the unnesting of a few rows runs on
    one (together a third faster than one statement)."""
    decided = f"e.type = '{DECIDED}' AND e.decisions IS NOT NULL AND ({where})"
    cols, read = _decision_columns()
    kept = ", ".join(f'e."{name}"' for name in read)
    return [
        f"""
    CREATE OR REPLACE TEMP TABLE {_UNNESTED} AS
    SELECT {kept}, unnest(l.customer_id) AS __cid, unnest(l.condition_values) AS __cv
    FROM (
        SELECT {kept}, json_transform(e.decisions, '{_DECISION_LISTS}') AS l
        FROM {events} AS e WHERE {decided}
    ) AS e
    """,
        f"INSERT INTO {events} SELECT {', '.join(cols)} FROM {_UNNESTED} AS e",
        f"UPDATE {events} AS e SET decisions = NULL WHERE {decided}",
        f"DROP TABLE {_UNNESTED}",
    ]
