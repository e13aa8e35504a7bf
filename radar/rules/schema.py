"""The format of a rule file: pydantic models and the published JSON Schema.

A rule file is YAML::

    policy:                       # optional: global contact pressure, over the whole rule set
      max_outbound: 3             #   at most 3 planned outbound actions per customer …
      per_days: 30                #   … in any 30 days (history + this run)
    rules:
      - id: winback-lapsed        # a slug: lowercase letters, digits and '-'
        description: Win back lapsed high-value customers
        owner: retention-team
        version: "2"              # optional; default: first 12 hex of the rule's content hash
        when: lifecycle_stage == 'lapsed' and clv >= 500
        action: {channel: phone, campaign_id: WINBACK-26, offer: voucher-20,
                 template: winback-call, priority: 80}
        active: {from: 2026-01-01, until: 2026-12-31}   # optional, inclusive dates (UTC)
        limit: {once_per_days: 90}                       # optional
        consent: phone            # optional; default: the action channel when it needs consent;
                                  # "none": no consent needed (e.g. a service call)
        holdout: 10               # percent of matching customers kept as a control group
        success: {event: purchase, within_days: 30}      # how the rule's effect is measured

Unknown keys are rejected (a typo does not pass silently). :func:`rules_json_schema` is the JSON
Schema of this format (``radar schema rules``).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from radar.domain.catalogue import CATALOGUE
from radar.domain.suggest import did_you_mean
from radar.domain.vocabulary import CHANNELS, CONSENT_CHANNELS

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
NO_CONSENT = "none"


def _date(value: Any) -> Any:
    """Dates are written ``YYYY-MM-DD`` (the loader keeps YAML dates as text)."""
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"bad date {value!r}: expected YYYY-MM-DD") from None
    raise ValueError(f"bad date {value!r}: expected YYYY-MM-DD")


def _enum(values: Iterable[str]) -> dict[str, Any]:
    return {"enum": list(values)}


def _extra(**items: Any) -> dict[str, Any]:
    return dict(items)


Day = Annotated[date, BeforeValidator(_date)]
PositiveDays = Annotated[StrictInt, Field(ge=1, le=36_500)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Action(_Strict):
    """What the operational system is asked to do for each selected customer."""

    channel: str = Field(json_schema_extra=_enum(CHANNELS))
    campaign_id: Text
    offer: Text | None = None
    template: Text | None = None
    priority: StrictInt = Field(default=0, description="Higher wins under contact pressure")

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, v: str) -> str:
        if v not in CHANNELS:
            raise ValueError(f"unknown channel {v!r}{did_you_mean(v, CHANNELS)}")
        return v


class Active(_Strict):
    """The period (inclusive dates, UTC) in which the rule applies; open-ended when omitted."""

    from_: Day | None = Field(default=None, alias="from")
    until: Day | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Active:
        if self.from_ and self.until and self.until < self.from_:
            raise ValueError(
                f"until {self.until.isoformat()} is before from {self.from_.isoformat()}"
            )
        return self

    def contains(self, day: date) -> bool:
        return (self.from_ is None or self.from_ <= day) and (
            self.until is None or day <= self.until
        )


class Limit(_Strict):
    """Frequency limit of one rule: at most once per ``once_per_days`` days per customer."""

    once_per_days: PositiveDays


class Success(_Strict):
    """How the rule's effect is measured: an outcome event within ``within_days`` of the
    decision (optionally with a given ``response``, e.g. ``converted``)."""

    event: str = Field(json_schema_extra=_enum(sorted(CATALOGUE)))
    within_days: PositiveDays
    response: Text | None = None

    @field_validator("event")
    @classmethod
    def _known_event(cls, v: str) -> str:
        if v not in CATALOGUE:
            raise ValueError(f"unknown event type {v!r}{did_you_mean(v, CATALOGUE)}")
        return v

    @model_validator(mode="after")
    def _known_response(self) -> Success:
        if self.response is None:
            return self
        fields = CATALOGUE[self.event].payload.model_fields
        if "response" not in fields:
            raise ValueError(f"event {self.event!r} has no response")
        allowed = _literal_values(fields["response"].annotation)
        if allowed and self.response not in allowed:
            raise ValueError(
                f"unknown response {self.response!r} for {self.event!r}"
                f"{did_you_mean(self.response, allowed)}"
            )
        return self


def _literal_values(annotation: Any) -> tuple[str, ...]:
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    return tuple(v for a in typing.get_args(annotation) for v in _literal_values(a))


class Rule(_Strict):
    """One contact arrangement: who (``when``) gets which contact (``action``), how often."""

    id: str = Field(
        description="A slug: lowercase letters, digits, '-'",
        json_schema_extra=_extra(pattern=SLUG_PATTERN),
    )
    description: Text
    owner: Text
    version: Text | None = Field(
        default=None, description="Default: the first 12 hex of the rule's content hash"
    )
    when: str = Field(min_length=1, max_length=10_000, description="The condition expression")
    action: Action
    active: Active | None = None
    limit: Limit | None = None
    consent: str | None = Field(
        default=None,
        description="Channel consent needed; default: the action channel when it needs consent; "
        "'none': no consent needed",
        json_schema_extra=_enum([*CONSENT_CHANNELS, NO_CONSENT]),
    )
    holdout: float = Field(default=0, description="Percent (0–100) kept as a control group")
    success: Success | None = None

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(SLUG_PATTERN, v):
            raise ValueError(
                f"must be a slug (lowercase letters, digits and '-', at most 100), got {v!r}"
            )
        return v

    @field_validator("consent")
    @classmethod
    def _known_consent(cls, v: str | None) -> str | None:
        allowed = (*CONSENT_CHANNELS, NO_CONSENT)
        if v is not None and v not in allowed:
            raise ValueError(f"unknown consent channel {v!r}{did_you_mean(v, allowed)}")
        return v

    @model_validator(mode="after")
    def _consent_fits_channel(self) -> Rule:
        """No action is ever planned on a channel without that channel's consent."""
        channel = self.action.channel
        if channel in CONSENT_CHANNELS and self.consent not in (None, channel):
            raise ValueError(
                f"consent: an action on {channel} always needs the customer's {channel} consent "
                f"(got {self.consent!r}); 'none' or another channel is only allowed for actions "
                "on channels without consent ("
                + ", ".join(c for c in CHANNELS if c not in CONSENT_CHANNELS)
                + ")"
            )
        return self

    @field_validator("holdout", mode="before")
    @classmethod
    def _percent(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"must be a number of percent (0–100), got {v!r}")
        if not 0 <= v <= 100:
            raise ValueError(f"must be between 0 and 100 (percent), got {v}")
        return v

    @property
    def consent_channel(self) -> str | None:
        """The channel whose consent is needed, or None when none is."""
        if self.consent == NO_CONSENT:
            return None
        if self.consent is not None:
            return self.consent
        return self.action.channel if self.action.channel in CONSENT_CHANNELS else None


class Policy(_Strict):
    """Global contact pressure: at most ``max_outbound`` planned actions per customer in any
    ``per_days`` days, counting earlier planned actions and this run's higher-priority ones."""

    max_outbound: Annotated[StrictInt, Field(ge=0)]
    per_days: PositiveDays


class RuleFile(_Strict):
    """A rule file: a list of rules and optionally the global policy."""

    policy: Policy | None = None
    rules: list[Rule] = Field(default_factory=list)


#: The keys allowed in each kind of mapping of a rule file (for "did you mean" on unknown keys).
ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "": ("policy", "rules"),
    "rules": tuple(f.alias or n for n, f in Rule.model_fields.items()),
    "action": tuple(Action.model_fields),
    "active": ("from", "until"),
    "limit": tuple(Limit.model_fields),
    "success": tuple(Success.model_fields),
    "policy": tuple(Policy.model_fields),
}


def rules_json_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file (draft 2020-12)."""
    schema = RuleFile.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://radar.example/schemas/rules.json",
        "title": "radar rule file",
        **schema,
    }
