"""Marketing: consents, weekly campaigns per channel and the responses (marketing-mix truth).

Consent for email/phone/sms/letter is stated at registration (granted with the segment's
probability); a granted consent is withdrawn after an exponential time (``consent_withdrawal_per
_year``). Each week (from ``start``) each channel of :data:`MIX_CHANNELS` runs a campaign with
probability ``activity``; it is sent (Monday or Tuesday) to a uniform ``audience`` fraction of the
customers registered and consenting on the channel at that moment. Every send converts with
probability β_channel (the true effect); otherwise it is clicked/opened (rates × the segment's
response multiplier) or declined, or gets no response. Responses arrive within the week. The
always-on web campaign adds Poisson(``intercept``) conversions per week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from radar.simulate.batch import Batch, FloatArray, IntArray, pick
from radar.simulate.params import CONSENTS, MIX_CHANNELS, SEGMENTS, SimulationParams
from radar.simulate.population import Population
from radar.simulate.sampling import expand

OFFERS = ("10% off", "free shipping", "upgrade", "loyalty bonus", "new collection", "bundle deal")
COST = {"email": 0.01, "sms": 0.08, "letter": 0.9, "phone": 4.5}
SOURCE = {"email": "mailer", "sms": "mailer", "letter": "mailer", "phone": "contact-centre"}
ALWAYS_ON = "CMP-ALWAYS-ON"
RESPONSES = ("converted", "clicked", "opened", "declined")


@dataclass
class MarketingDraw:
    batches: list[Batch]
    weekly: list[dict[str, Any]]  # per week: week_start, sends per channel, conversions


def _consents(
    rng: np.random.Generator, pop: Population, params: SimulationParams
) -> tuple[list[Batch], FloatArray, FloatArray]:
    """Consent events; per (customer, channel) the grant time and the withdrawal time."""
    n = pop.n
    probs = np.array([params.consent[s] for s in SEGMENTS])[pop.segment]  # n × 4
    granted = rng.random((n, len(CONSENTS))) < probs
    t_state = pop.reg_t[:, None] + 0.001 * (1 + np.arange(len(CONSENTS)))[None, :]
    scale = 365.25 / params.consent_withdrawal_per_year
    t_withdraw = np.where(granted, t_state + rng.exponential(scale, granted.shape), -np.inf)
    cust = np.repeat(np.arange(n, dtype=np.int64), len(CONSENTS))
    ch = np.tile(np.arange(len(CONSENTS), dtype=np.int64), n)
    stated = Batch(
        "consent.changed",
        cust,
        t_state.ravel(),
        "crm",
        pl.DataFrame({"channel": pick(CONSENTS, ch), "granted": granted.ravel()}),
        direction="inbound",
    )
    tw = t_withdraw.ravel()
    withdrawn = Batch(
        "consent.changed",
        cust,
        tw,
        "crm",
        pl.DataFrame({"channel": pick(CONSENTS, ch), "granted": np.zeros(n * 4, dtype=bool)}),
        direction="inbound",
    ).keep(np.isfinite(tw) & (tw < pop.horizon))
    grant_t = np.where(granted, t_state, np.inf)
    return [stated, withdrawn], grant_t, np.where(granted, t_withdraw, -np.inf)


def generate_marketing(
    rng: np.random.Generator, pop: Population, params: SimulationParams, start: date
) -> MarketingDraw:
    """Consents, campaign sends and responses, plus the weekly marketing-mix table."""
    mm = params.marketing
    batches, grant_t, withdraw_t = _consents(rng, pop, params)
    n = pop.n
    weeks = int(pop.horizon // 7)
    seg_mult = np.array([mm.segment_response[s] for s in SEGMENTS])[pop.segment]
    send_c: list[IntArray] = []
    send_t: list[FloatArray] = []
    send_ch: list[IntArray] = []
    send_camp: list[IntArray] = []
    camp_names: list[str] = []
    camp_offers: list[str] = []
    for w in range(weeks):
        for ci, ch in enumerate(MIX_CHANNELS):
            if rng.random() >= mm.activity[ch]:
                continue
            lo, hi = mm.audience[ch]
            frac = rng.uniform(lo, hi)
            k = CONSENTS.index(ch)
            t = 7.0 * w + rng.uniform(0.0, 1.5, n)
            chosen = (
                (rng.random(n) < frac)
                & (pop.reg_t < t)
                & (grant_t[:, k] < t)
                & (t < withdraw_t[:, k])
            )
            idx = np.flatnonzero(chosen)
            iso = (start + timedelta(days=7 * w)).isocalendar()
            send_camp.append(np.full(len(idx), len(camp_names), dtype=np.int64))
            camp_names.append(f"CMP-{iso.year}W{iso.week:02d}-{ch.upper()}")
            camp_offers.append(OFFERS[int(rng.integers(0, len(OFFERS)))])
            send_c.append(idx)
            send_t.append(t[idx])
            send_ch.append(np.full(len(idx), ci, dtype=np.int64))
    cust = np.concatenate(send_c) if send_c else np.zeros(0, dtype=np.int64)
    t = np.concatenate(send_t) if send_t else np.zeros(0)
    chi = np.concatenate(send_ch) if send_ch else np.zeros(0, dtype=np.int64)
    camp = np.concatenate(send_camp) if send_camp else np.zeros(0, dtype=np.int64)
    m = len(cust)
    names, offers = tuple(camp_names), tuple(camp_offers)
    channel = pick(MIX_CHANNELS, chi)
    campaign_id = pick(names, camp) if names else pl.Series([], dtype=pl.String)
    offer = pick(offers, camp) if offers else pl.Series([], dtype=pl.String)
    batches.append(
        Batch(
            "campaign.sent",
            cust,
            t,
            pick(tuple(SOURCE[c] for c in MIX_CHANNELS), chi),
            pl.DataFrame(
                {
                    "campaign_id": campaign_id,
                    "offer": offer,
                    "cost": np.array([COST[c] for c in MIX_CHANNELS])[chi],
                }
            ),
            channel=channel,
            direction="outbound",
        )
    )

    # responses: converted with the true effect; else clicked/opened (segment) or declined
    def rate(d: dict[str, float]) -> FloatArray:
        return np.array([d[c] for c in MIX_CHANNELS])[chi]

    conv = rate(mm.effects)
    click = rate(mm.clicked) * seg_mult[cust]
    opened = rate(mm.opened) * seg_mult[cust]
    decl = rate(mm.declined)
    cum = np.cumsum(np.stack([conv, click, opened, decl], axis=1), axis=1)
    cum = np.minimum(cum, 1.0)
    u = rng.random(m)
    resp = (u[:, None] >= cum).sum(axis=1)  # 0..3 response, 4 = none
    has = resp < 4
    phone = chi == MIX_CHANNELS.index("phone")
    delay = np.where(phone, 0.001, np.minimum(rng.exponential(0.7, m) + 0.01, 4.0))
    responded = Batch(
        "campaign.responded",
        cust,
        t + delay,
        pick(tuple(SOURCE[c] for c in MIX_CHANNELS), chi),
        pl.DataFrame(
            {
                "campaign_id": campaign_id,
                "response": pick(RESPONSES, np.minimum(resp, 3)),
                "offer": offer,
            }
        ),
        channel=channel,
        direction="inbound",
    ).keep(has)
    batches.append(responded)
    # the always-on web campaign: organic conversions
    organic = rng.poisson(mm.intercept_per_1000 * n / 1000.0, weeks)
    week_of, _ = expand(organic)
    to = 7.0 * week_of + rng.uniform(0.0, 7.0, len(week_of))
    registered = np.searchsorted(pop.reg_t, to)  # reg_t is sorted
    ok = registered > 0
    oc = np.floor(rng.random(len(to)) * np.maximum(registered, 1)).astype(np.int64)
    k = len(oc)
    batches.append(
        Batch(
            "campaign.responded",
            oc,
            np.maximum(to, pop.reg_t[oc] + 0.01),
            "webshop",
            pl.DataFrame(
                {
                    "campaign_id": pl.repeat(ALWAYS_ON, k, eager=True),
                    "response": pl.repeat("converted", k, eager=True),
                    "offer": pl.repeat("always-on", k, eager=True),
                }
            ),
            channel="web",
            direction="inbound",
        ).keep(ok)
    )
    weekly = _weekly(start, weeks, t, chi, (t + delay)[has & (resp == 0)], to[ok])
    return MarketingDraw(batches, weekly)


def _weekly(
    start: date,
    weeks: int,
    send_t: FloatArray,
    chi: IntArray,
    conv_t: FloatArray,
    organic_t: FloatArray,
) -> list[dict[str, Any]]:
    wk = np.floor(send_t / 7).astype(np.int64)
    sends = np.zeros((weeks, len(MIX_CHANNELS)), dtype=np.int64)
    np.add.at(sends, (wk, chi), 1)
    conv = np.bincount(np.floor(conv_t / 7).astype(np.int64), minlength=weeks)[:weeks]
    org = np.bincount(np.floor(organic_t / 7).astype(np.int64), minlength=weeks)[:weeks]
    return [
        {
            "week_start": (start + timedelta(days=7 * w)).isoformat(),
            "sends": {c: int(sends[w, i]) for i, c in enumerate(MIX_CHANNELS)},
            "conversions": int(conv[w] + org[w]),
        }
        for w in range(weeks)
    ]
