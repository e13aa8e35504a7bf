"""The parameters of every generative model of the simulation (all echoed in the truth).

Time: the model clock counts *days* since ``start`` (``weeks`` where stated). Each model day is
mapped onto the calendar day's business hours (07:00–22:00 UTC) monotonically, so the order of
events is kept and a model day is a calendar day.

The models, exactly as generated:

* **Segments** (latent, derived from the purchase latents so they show in behaviour):
  ``premium`` = expected spend per purchase in the top ``premium_share`` of the population;
  otherwise ``loyal`` = λ above its population median and p below its median; otherwise
  ``occasional`` = λ below its ``occasional_quantile``; otherwise ``bargain``. Segments also set
  channel preferences, campaign click/open rates, complaint and late-payment propensity, consents.
* **BG/NBD purchases** (one population, per week): λ ~ Gamma(shape r, rate alpha),
  p ~ Beta(a, b). The first purchase happens at registration (time 0 of the model); repeat
  purchases arrive as Poisson(λ); after each repeat purchase the customer drops out with
  probability p (the dropout time is that purchase's time). Every transaction is emitted as a
  ``purchase`` event, so the model holds exactly for purchase *events*; two can fall on one day
  (≈ (r+1)/(14·alpha) of repeat purchases, ≈3% by default), so purchase-day counts are slightly
  lower than purchase counts.
* **Gamma-Gamma spend**: ν ~ Gamma(shape q, rate v) per customer; each purchase amount
  z ~ Gamma(shape p, rate ν), rounded to cents. Independent of the purchase process.
* **Cancellation** (contractual customers only, proportional hazards, time in days since
  registration): h(t|x) = h0(t)·exp(β·x) with Weibull baseline h0(t) = (k/s)(t/s)^(k−1), i.e.
  cumulative baseline hazard H0(t) = (t/s)^k; covariates are indicators (reference: consumer,
  basic plan, occasional segment).
* **Marketing mix** (period = week starting Monday 00:00 UTC of ``start``, which should be a
  Monday): each week each outbound channel runs a campaign with a probability and a random
  audience fraction of the customers registered and consenting on that channel; every
  ``campaign.sent`` converts (``campaign.responded`` response ``converted``, within the same week)
  with probability β_channel, independent of anything else; ``intercept`` organic conversions per
  week (Poisson, ``intercept_per_1000`` × customers / 1000) come from the always-on web
  campaign. So E[conversions_week] = intercept +
  Σ β_ch·sends_ch,week.
* **Deals**: a lead becomes a deal when qualified; the deal is won with probability
  sigmoid(β0 + β_value·ln(value/1000) + β_origin + β_contacts·sales_contacts), where
  sales_contacts counts the outbound ``contact`` events with reason ``sales`` of the customer
  between the lead's creation and the deal's close (each customer has at most one lead).
* **Inactivity**: after a customer's inactive time (the dropout time, or the cancellation for a
  contractual customer if earlier) inbound contacts arrive at ``inactive_contact_factor`` times
  the active rate, and no purchase happens after the dropout time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEGMENTS: tuple[str, ...] = ("bargain", "loyal", "premium", "occasional")
PLANS: tuple[str, ...] = ("basic", "plus", "pro")
MIX_CHANNELS: tuple[str, ...] = ("email", "sms", "letter", "phone")
CONSENTS: tuple[str, ...] = ("email", "phone", "sms", "letter")
ORIGINS: tuple[str, ...] = ("web", "fair", "referral", "partner", "cold_call")


@dataclass(frozen=True)
class BGNBD:
    """BG/NBD population (rates per week)."""

    r: float = 1.0
    alpha: float = 2.5
    a: float = 0.6
    b: float = 6.0


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma spend: ν ~ Gamma(q, rate v); amount ~ Gamma(p, rate ν). Mean ≈ p·v/(q−1)."""

    p: float = 6.0
    q: float = 4.0
    v: float = 15.0


@dataclass(frozen=True)
class Cancellation:
    """Weibull proportional-hazards cancellation of contractual customers (days)."""

    shape: float = 1.3
    scale_days: float = 1100.0
    log_hazard_ratios: dict[str, float] = field(
        default_factory=lambda: {
            "business": -0.5,
            "plan_plus": -0.3,
            "plan_pro": -0.6,
            "segment_bargain": 0.7,
            "segment_loyal": -0.6,
            "segment_premium": -0.2,
        }
    )


@dataclass(frozen=True)
class MarketingMix:
    """Weekly campaigns per channel and their true conversion effect per send."""

    #: organic conversions per week per 1000 customers (the regression intercept scales with n)
    intercept_per_1000: float = 1.0
    effects: dict[str, float] = field(
        default_factory=lambda: {"email": 0.012, "sms": 0.02, "letter": 0.03, "phone": 0.08}
    )
    #: probability that the channel runs a campaign in a given week
    activity: dict[str, float] = field(
        default_factory=lambda: {"email": 0.9, "sms": 0.5, "letter": 0.2, "phone": 0.5}
    )
    #: audience fraction (uniform between the two) of the consenting registered customers
    audience: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "email": (0.15, 0.6),
            "sms": (0.05, 0.3),
            "letter": (0.1, 0.5),
            "phone": (0.03, 0.15),
        }
    )
    #: non-converting responses: probability of clicked / opened / declined per send
    clicked: dict[str, float] = field(
        default_factory=lambda: {"email": 0.05, "sms": 0.06, "letter": 0.0, "phone": 0.0}
    )
    opened: dict[str, float] = field(
        default_factory=lambda: {"email": 0.22, "sms": 0.0, "letter": 0.0, "phone": 0.0}
    )
    declined: dict[str, float] = field(
        default_factory=lambda: {"email": 0.005, "sms": 0.01, "letter": 0.01, "phone": 0.35}
    )
    #: multiplier of clicked/opened per segment (bargain hunters click more)
    segment_response: dict[str, float] = field(
        default_factory=lambda: {"bargain": 1.8, "loyal": 1.2, "premium": 0.7, "occasional": 0.5}
    )


@dataclass(frozen=True)
class Deals:
    """Logistic model of winning a deal."""

    intercept: float = -0.8
    value_log: float = -0.6
    origin: dict[str, float] = field(
        default_factory=lambda: {
            "web": 0.0,
            "fair": 0.4,
            "referral": 1.2,
            "partner": 0.7,
            "cold_call": -0.7,
        }
    )
    sales_contacts: float = 0.35


@dataclass(frozen=True)
class SimulationParams:
    """All knobs of the simulation; the defaults give ≈50 events per customer over two years."""

    bgnbd: BGNBD = field(default_factory=BGNBD)
    spend: GammaGamma = field(default_factory=GammaGamma)
    cancellation: Cancellation = field(default_factory=Cancellation)
    marketing: MarketingMix = field(default_factory=MarketingMix)
    deals: Deals = field(default_factory=Deals)
    #: share of the period (from start) over which registrations are spread uniformly
    registration_span: float = 0.95
    business_share: float = 0.2
    contractual_share: dict[str, float] = field(
        default_factory=lambda: {"consumer": 0.25, "business": 0.5}
    )
    plan_shares: tuple[float, float, float] = (0.5, 0.35, 0.15)
    premium_share: float = 0.2
    occasional_quantile: float = 0.4
    complaint_prone_share: float = 0.15
    #: inbound contacts per week while active, per segment (×1.5 for contractual customers)
    inbound_rate: dict[str, float] = field(
        default_factory=lambda: {
            "bargain": 0.07,
            "loyal": 0.06,
            "premium": 0.06,
            "occasional": 0.03,
        }
    )
    inactive_contact_factor: float = 0.15
    #: consent granted at registration, per segment, channels email/phone/sms/letter
    consent: dict[str, tuple[float, float, float, float]] = field(
        default_factory=lambda: {
            "bargain": (0.85, 0.3, 0.55, 0.5),
            "loyal": (0.75, 0.4, 0.4, 0.6),
            "premium": (0.6, 0.45, 0.25, 0.7),
            "occasional": (0.5, 0.2, 0.2, 0.4),
        }
    )
    #: yearly withdrawal hazard of a granted consent
    consent_withdrawal_per_year: float = 0.08
    late_payment: dict[str, float] = field(
        default_factory=lambda: {
            "bargain": 0.15,
            "loyal": 0.03,
            "premium": 0.04,
            "occasional": 0.08,
        }
    )
    lead_probability: dict[str, float] = field(
        default_factory=lambda: {"consumer": 0.06, "business": 0.5}
    )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready copy of every parameter."""
        return asdict(self)
