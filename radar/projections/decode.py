"""Bulk decoding of stored events (library JSON) into the typed columns of the events table.

The state of every stored event is the library's JSON, so DuckDB can decode whole Arrow batches
with one ``json_transform`` — no Python object per event. Datetimes are the library's
``{"_type_": "datetime_iso", "_data_": …}`` objects.
"""

from __future__ import annotations

import json

from radar.domain.fieldspec import fact_columns
from radar.projections.schema import event_columns

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
