"""The DuckDB schema of the view: each table states its grain and its kind.

| table / view   | kind           | grain (one row is …)                                   |
|----------------|----------------|--------------------------------------------------------|
| events         | append-only    | one stored event (position = the log's notification id) |
|                |                | — and one decision of an ``actions.decided`` event, at   |
|                |                | its position (type ``action.<decision>``)                |
| contacts       | view on events | one inbound or outbound contact (contact-type events)  |
| customers      | current state  | one customer: the integral view at the view position   |
| radar_position | current state  | one projection: the log position it has applied up to  |

``customers`` is a pure function of the customer's rows in ``events`` (see
:mod:`radar.projections.customers`), so a rebuild and an incremental catch-up give the same table,
and the same function over events filtered by business and recorded time gives the as-of view.
"""

from __future__ import annotations

from radar.domain.catalogue import CONTACT_TYPES
from radar.domain.fieldspec import fact_columns
from radar.ingest.sql_codec import lit

ENVELOPE_COLUMNS: dict[str, str] = {
    "position": "BIGINT",
    "stream": "VARCHAR",
    "stream_version": "BIGINT",
    "type": "VARCHAR",
    "event_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "occurred_at": "TIMESTAMPTZ",
    "recorded_at": "TIMESTAMPTZ",
    "source": "VARCHAR",
    "channel": "VARCHAR",
    "direction": "VARCHAR",
    "has_pii": "BOOLEAN",
}


def event_columns() -> dict[str, str]:
    """All columns of the events fact table: envelope, then one typed column per fact field."""
    return {**ENVELOPE_COLUMNS, **fact_columns()}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def events_ddl(table: str = "events") -> str:
    cols = ",\n    ".join(f"{_quote(n)} {t}" for n, t in event_columns().items())
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {cols}\n)"


POSITION_DDL = (
    "CREATE TABLE IF NOT EXISTS radar_position (projection VARCHAR PRIMARY KEY, "
    "position BIGINT NOT NULL, customers_dirty BOOLEAN NOT NULL DEFAULT FALSE, "
    "updated_at TIMESTAMPTZ)"
)


def contacts_view_sql(events: str = "events") -> str:
    """The contacts timeline (a view: it is the contact-type rows of the events table)."""
    return (
        "CREATE OR REPLACE VIEW contacts AS SELECT position, customer_id, occurred_at, "
        "recorded_at, type, channel, direction, reason, outcome, campaign_id, action_id, "
        "response, offer, ticket_id, topic, score, scale, source, event_id "
        f"FROM {events} WHERE type IN ({', '.join(lit(t) for t in CONTACT_TYPES)})"
    )
