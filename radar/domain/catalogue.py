"""The event catalogue: every event type radar knows, with the payload (`data`) it carries.

Each type is a past-tense fact. Its payload is a pydantic model; fields holding personal data are
marked with :func:`personal` so that they can be kept apart from the facts (stored encrypted under a
per-customer key, and shredded when the customer is forgotten).

The catalogue is the single source of the contract: the JSON Schemas (`radar schema`), the
per-event validation of the Python API and the set-based SQL validation of bulk ingestion are all
derived from these models, and a contract test checks that the two validators agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from radar.domain.vocabulary import Channel

PERSONAL = "x-personal"

Str = Annotated[str, Field(min_length=1, max_length=500)]
Id = Annotated[str, Field(min_length=1, max_length=200)]
Money = StrictFloat | StrictInt
Count = Annotated[StrictInt, Field(ge=0)]


def personal(description: str) -> Any:
    """A payload field that holds personal data (stored encrypted, shredded on forget)."""
    return Field(default=None, description=description, json_schema_extra={PERSONAL: True})


class Payload(BaseModel):
    """Base of every payload: unknown fields are rejected, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfileFields(Payload):
    """Profile attributes shared by registration and profile changes (all optional)."""

    name: str | None = personal("Full name")
    email: str | None = personal("E-mail address")
    phone: str | None = personal("Telephone number")
    address: str | None = personal("Street address")
    postal_code: str | None = personal("Postal code")
    birth_date: date | None = personal("Date of birth")
    city: Str | None = None
    country: Annotated[str, Field(min_length=2, max_length=2)] | None = None
    language: Annotated[str, Field(min_length=2, max_length=5)] | None = None
    customer_type: Literal["consumer", "business"] | None = None
    contractual: StrictBool | None = Field(
        default=None, description="True when the customer has a contract (churn = cancellation)"
    )


class CustomerRegistered(ProfileFields):
    """A customer registered (became known to the company)."""


class CustomerProfileChanged(ProfileFields):
    """Some profile attributes changed; only the fields present changed."""

    reason: Literal["move", "correction", "marriage", "other"] | None = None


class ConsentChanged(Payload):
    """The customer granted or withdrew consent for a channel or a purpose."""

    channel: Channel | None = None
    purpose: Str | None = None
    granted: StrictBool


ContactReason = Literal[
    "information_request",
    "invoice_question",
    "complaint",
    "life_event",
    "sales",
    "service",
    "retention",
    "welcome",
    "other",
]


class Contact(Payload):
    """An inbound or outbound contact between the customer and the company."""

    reason: ContactReason
    outcome: Str | None = None
    campaign_id: Id | None = None
    action_id: Id | None = None
    duration_s: Annotated[Money, Field(ge=0)] | None = None
    note: str | None = personal("Free text written about the contact")


class CampaignSent(Payload):
    """A campaign message was sent to the customer."""

    campaign_id: Id
    offer: Str | None = None
    action_id: Id | None = None
    cost: Annotated[Money, Field(ge=0)] | None = None


class CampaignResponded(Payload):
    """The customer responded to a campaign."""

    campaign_id: Id
    response: Literal["opened", "clicked", "converted", "declined"]
    offer: Str | None = None
    action_id: Id | None = None


class Purchase(Payload):
    """The customer bought something."""

    order_id: Id
    amount: Money
    currency: Annotated[str, Field(min_length=3, max_length=3)] = "EUR"
    product: Str
    quantity: Annotated[StrictInt, Field(ge=1)] = 1
    action_id: Id | None = None


class Payment(Payload):
    """An invoice was paid (possibly late)."""

    invoice_id: Id
    amount: Money
    due_date: date | None = None
    paid_date: date | None = None
    days_late: Count | None = None


class Usage(Payload):
    """A usage measurement of a product."""

    product: Str
    metric: Str
    value: Money


class LeadCreated(Payload):
    """A sales lead was created."""

    lead_id: Id
    origin: Str | None = Field(default=None, description="Where the lead came from (web, fair…)")
    product: Str | None = None
    value: Money | None = None


class LeadQualified(Payload):
    """A lead was qualified by sales."""

    lead_id: Id
    value: Money | None = None


class DealStageChanged(Payload):
    """A deal moved to another stage of the sales pipeline."""

    deal_id: Id
    lead_id: Id | None = None
    stage: Str
    value: Money | None = None


class DealWon(Payload):
    """A deal was won."""

    deal_id: Id
    lead_id: Id | None = None
    value: Money | None = None


class DealLost(Payload):
    """A deal was lost."""

    deal_id: Id
    lead_id: Id | None = None
    value: Money | None = None
    reason: Str | None = None


class TicketOpened(Payload):
    """A service ticket was opened."""

    ticket_id: Id
    topic: Str
    urgency: Literal["low", "normal", "high"] | None = None


class TicketResolved(Payload):
    """A service ticket was resolved."""

    ticket_id: Id
    topic: Str | None = None
    resolution: Str | None = None


class SatisfactionRated(Payload):
    """The customer rated satisfaction (NPS 0–10 or CSAT 1–5)."""

    score: Annotated[Money, Field(ge=0, le=10)]
    scale: Literal["nps", "csat"]
    ticket_id: Id | None = None
    comment: str | None = personal("Free text of the rating")


class ContractCancelled(Payload):
    """A contractual customer cancelled the contract (contractual churn)."""

    contract_id: Id | None = None
    reason: Str | None = None


# ---- written by radar itself ------------------------------------------------------------------


class AnalysisCompleted(Payload):
    """An analysis ran; its parameters, the view position it read and its fit metrics."""

    analysis: Str
    version: Str
    run_id: Id
    as_of: datetime | None = None
    view_position: Count
    parameters: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)


class SegmentMembership(Payload):
    """Shared payload of segment.entered / segment.left."""

    segmentation: Str = Field(description="Which grouping: kmeans, rfm, …")
    segment: Str
    run_id: Id


class ScoreChanged(Payload):
    """A customer's score changed materially (see the analytics docs for the threshold)."""

    score_name: Str = Field(description="lead_score, churn_risk, clv, p_alive, …")
    value: Money
    previous: Money | None = None
    run_id: Id


class LifecycleStageChanged(Payload):
    """A customer moved to another lifecycle stage."""

    stage: Str
    previous_stage: Str | None = None
    run_id: Id


class RulesetPublished(Payload):
    """A rule set was published; every action links to its content hash."""

    ruleset_hash: Id
    rules: list[dict[str, Any]]
    changes: dict[str, Any] = Field(default_factory=dict)


class DecisionProvenance(Payload):
    """Where a rule's decision came from: the rule (id, version, hash), the rule set's hash,
    the view position it read, the action it decided on and why it was not planned."""

    rule_id: Id
    rule_version: Str
    rule_hash: Id
    ruleset_hash: Id
    view_position: Count = Field(description="The view position (notification id) the rule read")
    campaign_id: Id | None = None
    offer: Str | None = None
    template: Str | None = None
    priority: StrictInt = 0
    reason: Str | None = None


class ActionDecision(DecisionProvenance):
    """Shared payload of the action events: one decision and its provenance."""

    action_id: Id
    condition_values: dict[str, Any] = Field(default_factory=dict)
    run_id: Id | None = None


class DecisionList(Payload):
    """The decisions of an ``actions.decided`` event as parallel lists: the i-th decision is
    about ``customer_id[i]``, and ``condition_values[i]`` holds the values of the event's
    ``condition_columns`` (in that order) that made the rule's condition true for them."""

    customer_id: list[Id]
    condition_values: list[list[Any]]

    @model_validator(mode="after")
    def _same_length(self) -> DecisionList:
        if len(self.customer_id) != len(self.condition_values):
            raise ValueError("customer_id and condition_values differ in length")
        return self


def decision_action_id(ruleset_hash: str, rule_id: str, customer_id: str, position: int) -> str:
    """The action id of a rule's decision on a customer at a view position (32 hex digits):
    ``md5(f"{ruleset_hash}|{rule_id}|{customer_id}|{position}")``. Deterministic, so the same
    rule set applied at the same view position decides under the same ids."""
    return hashlib.md5(f"{ruleset_hash}|{rule_id}|{customer_id}|{position}".encode()).hexdigest()


class ActionsDecided(DecisionProvenance):
    """A rule's decisions of one run with one outcome (and reason), many customers at once.

    radar's rules append decisions at this grain (one event per rule, outcome and chunk of
    customers) so that a run over millions of customers is a few thousand events; the projection
    gives every decision its own row in the view, exactly as an ``action.planned``,
    ``action.suppressed`` or ``action.held_out`` event of that decision would (``decision``
    names which). A decision's action id (its event id in the view) is not stored: it is
    :func:`decision_action_id` of the rule set, the rule, the customer and the view position.
    """

    decision: Literal["planned", "suppressed", "held_out"]
    run_id: Id
    condition_columns: list[Str] = Field(
        default_factory=list, description="The columns the rule's condition read"
    )
    decisions: DecisionList

    @model_validator(mode="after")
    def _values_fit_columns(self) -> ActionsDecided:
        width = len(self.condition_columns)
        if any(len(v) != width for v in self.decisions.condition_values):
            raise ValueError(f"every condition_values entry must hold {width} value(s)")
        return self


class CustomerForgotten(Payload):
    """The customer's personal data was crypto-shredded (right to be forgotten)."""

    request_id: Id | None = None
    reason: Str | None = None


DirectionRule = Literal["inbound", "outbound", "required", "none", "any"]


@dataclass(frozen=True)
class EventType:
    """One entry of the catalogue.

    ``direction``: ``inbound``/``outbound`` is the default (a contradicting value is rejected);
    ``required`` means the sender must say; ``any`` allows either or none; ``none`` forbids it.
    ``customer``: whether the event is about one customer (customer_id required).
    """

    name: str
    payload: type[Payload]
    direction: DirectionRule
    channel_required: bool
    customer: bool
    written_by: Literal["operational", "radar"]
    summary: str

    @property
    def personal_fields(self) -> tuple[str, ...]:
        return tuple(
            name
            for name, f in self.payload.model_fields.items()
            if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get(PERSONAL)
        )

    @property
    def class_name(self) -> str:
        """The stored-event class name
        (``customer.profile_changed`` → ``CustomerProfileChanged``)."""
        parts = self.name.replace(".", "_").split("_")
        return "".join(p[:1].upper() + p[1:] for p in parts)


def _t(
    name: str,
    payload: type[Payload],
    direction: DirectionRule = "any",
    *,
    channel_required: bool = False,
    customer: bool = True,
    written_by: Literal["operational", "radar"] = "operational",
) -> EventType:
    return EventType(
        name=name,
        payload=payload,
        direction=direction,
        channel_required=channel_required,
        customer=customer,
        written_by=written_by,
        summary=(payload.__doc__ or "").strip().splitlines()[0],
    )


CATALOGUE: dict[str, EventType] = {
    t.name: t
    for t in (
        _t("customer.registered", CustomerRegistered, "inbound"),
        _t("customer.profile_changed", CustomerProfileChanged, "inbound"),
        _t("consent.changed", ConsentChanged, "inbound"),
        _t("contact", Contact, "required", channel_required=True),
        _t("campaign.sent", CampaignSent, "outbound", channel_required=True),
        _t("campaign.responded", CampaignResponded, "inbound"),
        _t("purchase", Purchase, "inbound"),
        _t("payment", Payment, "inbound"),
        _t("usage", Usage, "none"),
        _t("lead.created", LeadCreated, "any"),
        _t("lead.qualified", LeadQualified, "none"),
        _t("deal.stage_changed", DealStageChanged, "none"),
        _t("deal.won", DealWon, "none"),
        _t("deal.lost", DealLost, "none"),
        _t("ticket.opened", TicketOpened, "inbound"),
        _t("ticket.resolved", TicketResolved, "outbound"),
        _t("satisfaction.rated", SatisfactionRated, "inbound"),
        _t("contract.cancelled", ContractCancelled, "inbound"),
        _t("analysis.completed", AnalysisCompleted, "none", customer=False, written_by="radar"),
        _t("segment.entered", SegmentMembership, "none", written_by="radar"),
        _t("segment.left", SegmentMembership, "none", written_by="radar"),
        _t("score.changed", ScoreChanged, "none", written_by="radar"),
        _t("lifecycle.stage_changed", LifecycleStageChanged, "none", written_by="radar"),
        _t("ruleset.published", RulesetPublished, "none", customer=False, written_by="radar"),
        _t("action.planned", ActionDecision, "outbound", channel_required=True, written_by="radar"),
        _t("action.suppressed", ActionDecision, "outbound", written_by="radar"),
        _t("action.held_out", ActionDecision, "outbound", written_by="radar"),
        _t("actions.decided", ActionsDecided, "none", customer=False, written_by="radar"),
        _t("customer.forgotten", CustomerForgotten, "none", written_by="radar"),
    )
}

#: Event types that count as a contact on the customer's timeline.
CONTACT_TYPES: tuple[str, ...] = (
    "contact",
    "campaign.sent",
    "campaign.responded",
    "ticket.opened",
    "ticket.resolved",
    "satisfaction.rated",
)


def event_type(name: str) -> EventType:
    """The catalogue entry for ``name``; raises KeyError with a suggestion when unknown."""
    try:
        return CATALOGUE[name]
    except KeyError:
        from radar.domain.suggest import did_you_mean

        raise KeyError(f"unknown event type {name!r}{did_you_mean(name, CATALOGUE)}") from None
