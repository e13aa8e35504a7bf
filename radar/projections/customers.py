"""The integral customer view as one SQL aggregation over the events fact table.

``customer_rows_sql(where)`` is the only definition of a customer's row: the live table runs it
over all events (rebuild) or over the customers touched by a batch (catch-up), and the as-of view
runs it over the events that had occurred by T and been recorded by T2. "Latest" values are taken
by business time, ties broken by log position, so every path agrees.
"""

from __future__ import annotations

import re

from radar.domain.catalogue import CATALOGUE, CONTACT_TYPES
from radar.domain.columns import CUSTOMER_COLUMNS
from radar.domain.vocabulary import CHANNELS, CONSENT_CHANNELS
from radar.ingest.sql_codec import lit
from radar.projections.schema import event_columns

ORDER_KEY = "(epoch_us(occurred_at)::HUGEINT * 100000000000 + position)"
OPERATIONAL = tuple(n for n, t in CATALOGUE.items() if t.written_by == "operational")
PROFILE = ("customer.registered", "customer.profile_changed")
#: The order key of an event row (:data:`ORDER_KEY`), a column of the inner projection.
KEY = "_key"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


def _contact(direction: str) -> str:
    return f"type IN {_in(CONTACT_TYPES)} AND direction = {lit(direction)}"


#: Conditions that several columns share, evaluated once per event row as columns of the inner
#: projection (see :func:`customer_rows_sql`). Each is TRUE or NULL, never FALSE, so
#: ``count(flag)`` counts the rows matching the condition and ``CASE WHEN flag …`` keeps them.
#: Repeated in every aggregate instead, they made the statement almost twice as large — and
#: DuckDB parses, binds and optimizes it at every catch-up: most of the cost of a small one.
FLAGS: dict[str, str] = {
    "_operational": f"type IN {_in(OPERATIONAL)}",
    "_profile": f"type IN {_in(PROFILE)}",
    "_inbound": _contact("inbound"),
    "_outbound": _contact("outbound"),
    "_purchase": "type = 'purchase'",
    "_complaint": "type = 'contact' AND reason = 'complaint'",
    "_opened": "type = 'ticket.opened'",
    "_rated": "type = 'satisfaction.rated'",
    "_payment": "type = 'payment'",
    "_consent": "type = 'consent.changed'",
    "_segment": "type IN ('segment.entered', 'segment.left')",
    "_score": "type = 'score.changed'",
    "_action": "type = 'action.planned'",
}


def _when(condition: str, expr: str) -> str:
    """``expr`` on the rows matching ``condition``, NULL on the others.

    Aggregates skip NULLs, so ``agg(_when(c, x))`` equals ``agg(x) FILTER (WHERE c)`` — and
    ``arg_max(x, _when(c, key))`` skips the rows whose key is NULL. DuckDB evaluates a FILTER
    clause per aggregate and per chunk, slicing the aggregate inputs each time; with about 70
    aggregates the CASE form computes the same rows in half the time.
    """
    return f"CASE WHEN {condition} THEN {expr} END"


def _count(condition: str) -> str:
    """The number of rows matching ``condition`` (0 if none)."""
    return f"count({condition})" if condition in FLAGS else f"count({_when(condition, '1')})"


def _sum(expr: str, condition: str) -> str:
    """An order-independent (exact) sum: floating-point sums differ with the summation order,
    which would make a rebuild differ from an incremental catch-up in the last bits."""
    return f"CAST(sum({_when(condition, f'CAST({expr} AS DECIMAL(38, 6))')}) AS DOUBLE)"


def _avg(expr: str, condition: str) -> str:
    """An order-independent average (see :func:`_sum`)."""
    return (
        f"CAST(sum({_when(condition, f'CAST({expr} AS DECIMAL(38, 6))')}) / "
        f"nullif(count({_when(condition, expr)}), 0) AS DOUBLE)"
    )


def _latest(expr: str, condition: str) -> str:
    """The non-NULL ``expr`` of the latest row matching ``condition`` (``arg_max`` skips the rows
    where ``expr`` or the key is NULL)."""
    return f"arg_max({expr}, {_when(condition, KEY)})"


def _latest_null(expr: str, condition: str) -> str:
    """``expr`` of the latest row matching ``condition``, even if it is NULL there."""
    return f"arg_max_null({expr}, {_when(condition, KEY)})"


def _profile(field: str) -> str:
    """The latest stated value of a profile field (a profile event without it keeps the one
    before: :func:`_latest` skips NULLs)."""
    return _latest(field, "_profile")


def _score(name: str) -> str:
    return _latest("value", f"_score AND score_name = {lit(name)}")


def _group(segmentation: str) -> str:
    # arg_max_null: a later segment.left (NULL here) must win over an earlier segment.entered
    return _latest_null(
        _when("type = 'segment.entered'", "segment"),
        f"_segment AND segmentation = {lit(segmentation)}",
    )


def _first(condition: str) -> str:
    """The earliest business time among the rows matching ``condition``."""
    return f"min({_when(condition, 'occurred_at')})"


def _last(condition: str) -> str:
    """The latest business time among the rows matching ``condition``."""
    return f"max({_when(condition, 'occurred_at')})"


def _distinct(expr: str, condition: str) -> str:
    """The number of distinct non-NULL values of ``expr`` among the rows matching ``condition``."""
    return f"count(DISTINCT {_when(condition, expr)})"


def _definitions() -> dict[str, str]:
    """Each stored column as an aggregate over the rows of the inner projection (the events
    columns, :data:`KEY` and the :data:`FLAGS`)."""
    opened = _distinct("ticket_id", "_opened")
    resolved = _distinct("ticket_id", "type = 'ticket.resolved'")
    d: dict[str, str] = {
        "customer_id": "customer_id",
        "first_seen": _first("_operational"),
        "last_seen": _last("_operational"),
        "registered_at": _first("type = 'customer.registered'"),
        "customer_type": _profile("customer_type"),
        "contractual": _profile("contractual"),
        "city": _profile("city"),
        "country": _profile("country"),
        "language": _profile("language"),
        "cancelled_at": _last("type = 'contract.cancelled'"),
        "forgotten": "coalesce(bool_or(type = 'customer.forgotten'), FALSE)",
        "purchases": _count("_purchase"),
        "purchase_days": _distinct("CAST(occurred_at AS DATE)", "_purchase"),
        "revenue": "coalesce(" + _sum("amount", "_purchase") + ", 0)",
        "avg_order_value": _avg("amount", "_purchase"),
        "first_purchase_at": _first("_purchase"),
        "last_purchase_at": _last("_purchase"),
        "inbound_contacts": _count("_inbound"),
        "outbound_contacts": _count("_outbound"),
    }
    for direction in ("inbound", "outbound"):
        for ch in CHANNELS:
            d[f"{direction}_{ch}"] = _count(f"_{direction} AND channel = {lit(ch)}")
    d |= {
        "last_inbound_at": _last("_inbound"),
        "last_outbound_at": _last("_outbound"),
        "last_outbound_channel": _latest("channel", "_outbound"),
        "complaints": _count("_complaint"),
        "last_complaint_at": _last("_complaint"),
        "tickets_opened": _count("_opened"),
        "open_tickets": f"greatest(0, {opened} - {resolved})",
        "avg_satisfaction": _avg(
            "CASE WHEN scale = 'csat' THEN (score - 1) * 2.5 ELSE score END", "_rated"
        ),
        "avg_nps": _avg("score", "_rated AND scale = 'nps'"),
        "payments": _count("_payment"),
        "late_payments": _count("_payment AND (days_late > 0 OR paid_date > due_date)"),
        "avg_days_late": _avg("days_late", "_payment AND days_late > 0"),
    }
    for ch in CONSENT_CHANNELS:
        d[f"consent_{ch}"] = _latest("granted", f"_consent AND data_channel = {lit(ch)}")
    d |= {
        "campaigns_sent": _count("type = 'campaign.sent'"),
        "campaign_responses": _count("type = 'campaign.responded'"),
        "conversions": _count("type = 'campaign.responded' AND response = 'converted'"),
        "leads": _count("type = 'lead.created'"),
        "deals_won": _count("type = 'deal.won'"),
        "deals_lost": _count("type = 'deal.lost'"),
        "usage_events": _count("type = 'usage'"),
        "segment": _group("kmeans"),
        "rfm_group": _group("rfm"),
        "lifecycle_stage": _latest("stage", "type = 'lifecycle.stage_changed'"),
        "lead_score": _score("lead_score"),
        "churn_risk": _score("churn_risk"),
        "clv": _score("clv"),
        "p_alive": _score("p_alive"),
        "actions_planned": _count("_action"),
        "last_action_at": _last("_action"),
        "position": "max(position)",
    }
    return d


def _read_columns(expressions: list[str]) -> tuple[str, ...]:
    """The events columns that ``expressions`` read (every column whose name they mention)."""
    text = " ".join(expressions)
    return tuple(c for c in event_columns() if re.search(rf"\b{re.escape(c)}\b", text))


DEFINITIONS = _definitions()
STORED_COLUMNS = tuple(c.name for c in CUSTOMER_COLUMNS.values() if not c.relative)
assert tuple(DEFINITIONS) == STORED_COLUMNS, set(DEFINITIONS) ^ set(STORED_COLUMNS)
#: The events columns of the inner projection.
READ_COLUMNS = _read_columns([*DEFINITIONS.values(), ORDER_KEY, *FLAGS.values()])

_DUCK = {
    "string": "VARCHAR",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}


def customers_ddl(table: str = "customers") -> str:
    cols = ", ".join(f'"{n}" {_DUCK[CUSTOMER_COLUMNS[n].type]}' for n in STORED_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def _rows_sql(events: str, where: str) -> str:
    """The inner projection: the matching rows of ``events`` with the columns the definitions
    read, their order key and the flags."""
    columns = [
        *READ_COLUMNS,
        f"{ORDER_KEY} AS {KEY}",
        *(f"({condition}) OR NULL AS {name}" for name, condition in FLAGS.items()),
    ]
    return f"SELECT {', '.join(columns)} FROM {events} WHERE customer_id IS NOT NULL AND ({where})"


def customer_rows_sql(events: str = "events", where: str = "TRUE") -> str:
    """One row per customer over ``events`` rows matching ``where`` (columns in table order,
    of the types of :func:`customers_ddl`).

    Each definition already has its column's type (a test checks it), so the statement casts
    nothing: every word of it costs DuckDB parsing, binding and optimizing at each catch-up.
    """
    select = ",\n  ".join(f'{expr} AS "{name}"' for name, expr in DEFINITIONS.items())
    return f"SELECT\n  {select}\nFROM ({_rows_sql(events, where)})\nGROUP BY customer_id"


def radar_sql(customers: str, reference: str) -> str:
    """``customers`` plus the relative columns measured at ``reference`` (a SQL timestamp)."""

    def days(col: str) -> str:
        return f"(epoch({reference}) - epoch({col})) / 86400.0"

    return (
        f"SELECT *, {days('last_purchase_at')} AS days_since_last_purchase, "
        f"{days('greatest(last_inbound_at, last_outbound_at)')} AS days_since_last_contact, "
        f"{days('last_outbound_at')} AS days_since_last_outbound, "
        f"{days('registered_at')} AS days_since_registration, "
        f"{days('last_complaint_at')} AS days_since_last_complaint, "
        f"{days('first_seen')} AS tenure_days FROM {customers}"
    )
