"""The documented columns of the integral customer view, with their types.

This is the typed catalogue that rule conditions are checked against before any data is seen, and
the contract of the ``customers`` table (one row per customer) that projections must fill.
Relative columns (``days_since_…``, ``tenure_days``) are computed against a reference moment
(now, or the as-of moment of a backtest) by the ``customer_radar`` view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from radar.domain.vocabulary import CHANNELS, CONSENT_CHANNELS

ColumnType = Literal["string", "number", "integer", "boolean", "timestamp"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    doc: str
    relative: bool = False  # computed against the reference moment


def _c(name: str, type_: ColumnType, doc: str, relative: bool = False) -> Column:
    return Column(name, type_, doc, relative)


_BASE: list[Column] = [
    _c("customer_id", "string", "The customer's id"),
    _c("first_seen", "timestamp", "Business time of the customer's first event"),
    _c("last_seen", "timestamp", "Business time of the customer's latest operational event"),
    _c("registered_at", "timestamp", "When the customer registered"),
    _c("customer_type", "string", "consumer or business (latest profile)"),
    _c("contractual", "boolean", "Whether the customer has a contract (latest profile)"),
    _c("city", "string", "City (latest profile)"),
    _c("country", "string", "Country code (latest profile)"),
    _c("language", "string", "Language (latest profile)"),
    _c("cancelled_at", "timestamp", "When the contract was cancelled (latest), if ever"),
    _c("forgotten", "boolean", "Personal data was shredded on request"),
    _c("purchases", "integer", "Number of purchases"),
    _c("purchase_days", "integer", "Number of distinct days with a purchase"),
    _c("revenue", "number", "Sum of purchase amounts"),
    _c("avg_order_value", "number", "revenue / purchases"),
    _c("first_purchase_at", "timestamp", "Business time of the first purchase"),
    _c("last_purchase_at", "timestamp", "Business time of the latest purchase"),
    _c("inbound_contacts", "integer", "Inbound contacts (contact, responses, tickets, ratings)"),
    _c("outbound_contacts", "integer", "Outbound contacts (contact, campaign sends, resolutions)"),
]
_BASE += [
    _c(f"{d}_{ch}", "integer", f"{d.capitalize()} contacts on channel {ch}")
    for d in ("inbound", "outbound")
    for ch in CHANNELS
]
_BASE += [
    _c("last_inbound_at", "timestamp", "Business time of the latest inbound contact"),
    _c("last_outbound_at", "timestamp", "Business time of the latest outbound contact"),
    _c("last_outbound_channel", "string", "Channel of the latest outbound contact"),
    _c("complaints", "integer", "Contacts with reason complaint"),
    _c("last_complaint_at", "timestamp", "Business time of the latest complaint"),
    _c("tickets_opened", "integer", "Tickets opened"),
    _c("open_tickets", "integer", "Tickets opened and not resolved"),
    _c("avg_satisfaction", "number", "Average rating normalised to 0–10 (csat 1–5 scaled)"),
    _c("avg_nps", "number", "Average NPS rating (0–10)"),
    _c("payments", "integer", "Payments"),
    _c("late_payments", "integer", "Payments made after the due date"),
    _c("avg_days_late", "number", "Average days late over late payments"),
]
_BASE += [
    _c(f"consent_{ch}", "boolean", f"Latest consent for {ch} (null: never stated)")
    for ch in CONSENT_CHANNELS
]
_BASE += [
    _c("campaigns_sent", "integer", "Campaign messages sent"),
    _c("campaign_responses", "integer", "Campaign responses (any)"),
    _c("conversions", "integer", "Campaign responses that converted"),
    _c("leads", "integer", "Leads created"),
    _c("deals_won", "integer", "Deals won"),
    _c("deals_lost", "integer", "Deals lost"),
    _c("usage_events", "integer", "Usage measurements"),
    _c("segment", "string", "Current k-means segment (analytics)"),
    _c("rfm_group", "string", "Current RFM group (analytics)"),
    _c("lifecycle_stage", "string", "Current lifecycle stage (analytics)"),
    _c("lead_score", "number", "Latest lead score 0–100 (analytics)"),
    _c("churn_risk", "number", "Latest probability of churning in the next 90 days"),
    _c("clv", "number", "Latest discounted customer lifetime value"),
    _c("p_alive", "number", "Latest probability that the customer is still active"),
    _c("actions_planned", "integer", "Actions planned for the customer by rules"),
    _c("last_action_at", "timestamp", "Business time of the latest planned action"),
    _c("position", "integer", "Highest log position (notification id) of the customer's events"),
    _c("days_since_last_purchase", "number", "Days from the last purchase to the reference", True),
    _c("days_since_last_contact", "number", "Days from the latest contact to the reference", True),
    _c("days_since_last_outbound", "number", "Days from the last outbound to the reference", True),
    _c("days_since_registration", "number", "Days from registration to the reference", True),
    _c(
        "days_since_last_complaint", "number", "Days from the last complaint to the reference", True
    ),
    _c("tenure_days", "number", "Days from first seen to the reference", True),
]

CUSTOMER_COLUMNS: dict[str, Column] = {c.name: c for c in _BASE}
