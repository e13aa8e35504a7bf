"""Service: inbound contacts, tickets, satisfaction ratings, moves and service outbound contacts.

* Inbound contacts: Poisson with weekly rate ``inbound_rate[segment]`` (×1.5 for contractual
  customers) until the customer's inactive time, ``inactive_contact_factor`` times that after.
  Reasons by weights (complaint ×5 for complaint-prone customers, ×1.5 for bargain; invoice
  questions ×2.5 for contractual customers; sales ×1.5 for premium); channels per segment.
* A complaint opens a ticket with probability 0.8, a service contact 0.4, an invoice question 0.2.
  Tickets are resolved after a log-normal delay (median 4 days for complaints, 1.5 otherwise);
  those resolving after the end stay open.
* CSAT (1–5) after 45% of resolutions: round(N(4.3 − 1.1·complaint − 0.08·delay_days, 0.7)).
* NPS (0–10) surveys at 0.5 per year: round(N(7.6 + seg_adj − 1.3·complaints_before, 1.6)),
  ``complaints_before`` = the customer's complaint contacts before the survey.
* A life event is a move with probability 0.7: ``customer.profile_changed`` (reason move) with a
  new address, postal code and city in the same country.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from radar.simulate import fake
from radar.simulate.batch import Batch, FloatArray, IntArray, ids, pick
from radar.simulate.params import SEGMENTS, SimulationParams
from radar.simulate.population import Population
from radar.simulate.sampling import choice, choice_rows, poisson_times

REASONS = (
    "information_request",
    "invoice_question",
    "complaint",
    "life_event",
    "sales",
    "service",
)
REASON_WEIGHTS = np.array([0.30, 0.12, 0.08, 0.05, 0.15, 0.30])
INBOUND_CHANNELS = ("web", "phone", "email", "chat", "store")
#: inbound channel preference per segment (bargain, loyal, premium, occasional)
INBOUND_PREF = np.array(
    [
        [0.35, 0.2, 0.2, 0.2, 0.05],
        [0.25, 0.3, 0.2, 0.15, 0.1],
        [0.1, 0.4, 0.15, 0.1, 0.25],
        [0.4, 0.15, 0.3, 0.1, 0.05],
    ]
)
TICKET_PROB = {"complaint": 0.8, "service": 0.4, "invoice_question": 0.2}
TICKET_TOPIC = {"complaint": "complaint", "service": "service", "invoice_question": "billing"}
NPS_SEGMENT_ADJ = {"bargain": -0.5, "loyal": 1.0, "premium": 0.5, "occasional": -0.3}
NPS_PER_YEAR = 0.5
MOVE_PROB = 0.7


def _inbound(
    rng: np.random.Generator, pop: Population, params: SimulationParams
) -> tuple[IntArray, FloatArray]:
    rate = np.array([params.inbound_rate[s] for s in SEGMENTS])[pop.segment] / 7.0
    rate = rate * np.where(pop.contractual, 1.5, 1.0)
    lo = pop.reg_t + 0.01
    cut = np.clip(pop.inactive_t, lo, pop.horizon)
    o1, t1 = poisson_times(rng, lo, cut, rate)
    o2, t2 = poisson_times(
        rng, cut, np.full(pop.n, pop.horizon), rate * params.inactive_contact_factor
    )
    return np.concatenate([o1, o2]), np.concatenate([t1, t2])


def generate_service(
    rng: np.random.Generator, pop: Population, params: SimulationParams
) -> list[Batch]:
    """All service-side events."""
    batches: list[Batch] = []
    cust, t = _inbound(rng, pop, params)
    n = len(cust)
    seg = pop.segment[cust]
    w = np.tile(REASON_WEIGHTS, (n, 1))
    w[:, 1] *= np.where(pop.contractual[cust], 2.5, 1.0)
    w[:, 2] *= np.where(pop.complaint_prone[cust], 5.0, 1.0)
    w[:, 2] *= np.where(seg == SEGMENTS.index("bargain"), 1.5, 1.0)
    w[:, 4] *= np.where(seg == SEGMENTS.index("premium"), 1.5, 1.0)
    reason = choice_rows(rng, w)
    chan = choice_rows(rng, INBOUND_PREF[seg])
    channel = pick(INBOUND_CHANNELS, chan)
    talk = np.isin(chan, [1, 3])  # phone, chat
    duration = np.where(talk, np.round(rng.lognormal(np.log(240), 0.6, n)), np.nan)
    outcome = pick(
        ("answered", "resolved", "forwarded", "callback_scheduled"),
        choice(rng, n, (0.45, 0.35, 0.12, 0.08)),
    )
    batches.append(
        Batch(
            "contact",
            cust,
            t,
            "contact-centre",
            pl.DataFrame(
                {
                    "reason": pick(REASONS, reason),
                    "outcome": outcome,
                    "duration_s": pl.Series(duration).fill_nan(None).cast(pl.Int64),
                }
            ),
            channel=channel,
            direction="inbound",
        )
    )
    batches += _tickets(rng, pop, cust, t, reason, channel)
    batches.append(_nps(rng, pop, cust[reason == 2], t[reason == 2]))
    batches.append(_moves(rng, pop, cust, t, reason))
    batches += _outbound(rng, pop)
    return batches


def _tickets(
    rng: np.random.Generator,
    pop: Population,
    cust: IntArray,
    t: FloatArray,
    reason: IntArray,
    channel: pl.Series,
) -> list[Batch]:
    p = np.zeros(len(cust))
    topic_code = np.zeros(len(cust), dtype=np.int64)
    topics = ("complaint", "service", "billing")
    for r, prob in TICKET_PROB.items():
        p[reason == REASONS.index(r)] = prob
        topic_code[reason == REASONS.index(r)] = topics.index(TICKET_TOPIC[r])
    opened = rng.random(len(cust)) < p
    c, t_open, tc = cust[opened], t[opened] + 0.002, topic_code[opened]
    m = len(c)
    complaint = tc == 0
    urgency = np.where(
        complaint, choice(rng, m, (0.1, 0.5, 0.4)), choice(rng, m, (0.4, 0.55, 0.05))
    )
    ticket_id = ids("T-", np.arange(m))
    topic = pick(topics, tc)
    opened_b = Batch(
        "ticket.opened",
        c,
        t_open,
        "service-desk",
        pl.DataFrame(
            {
                "ticket_id": ticket_id,
                "topic": topic,
                "urgency": pick(("low", "normal", "high"), urgency),
            }
        ),
        channel=channel.filter(pl.Series(opened)),
        direction="inbound",
    )
    delay = rng.lognormal(np.where(complaint, np.log(4.0), np.log(1.5)), 0.8)
    t_res = t_open + delay
    resolved = t_res < pop.horizon
    res_b = Batch(
        "ticket.resolved",
        c,
        t_res,
        "service-desk",
        pl.DataFrame(
            {
                "ticket_id": ticket_id,
                "topic": topic,
                "resolution": pick(
                    ("fixed", "explained", "refunded", "replaced", "no_action"),
                    choice(rng, m, (0.35, 0.3, 0.15, 0.1, 0.1)),
                ),
            }
        ),
        channel="email",
        direction="outbound",
    ).keep(resolved)
    t_rate = t_res + rng.exponential(1.0, m)
    rated = resolved & (rng.random(m) < 0.45) & (t_rate < pop.horizon)
    csat = np.clip(np.round(rng.normal(4.3 - 1.1 * complaint - 0.08 * delay, 0.7)), 1, 5)
    csat_b = Batch(
        "satisfaction.rated",
        c,
        t_rate,
        "survey",
        pl.DataFrame(
            {
                "score": csat.astype(np.int64),
                "scale": pl.repeat("csat", m, eager=True),
                "ticket_id": ticket_id,
            }
        ),
        channel="email",
        direction="inbound",
    ).keep(rated)
    return [opened_b, res_b, csat_b]


def _nps(
    rng: np.random.Generator, pop: Population, complaint_cust: IntArray, complaint_t: FloatArray
) -> Batch:
    cust, t = poisson_times(
        rng, pop.reg_t + 30.0, np.full(pop.n, pop.horizon), np.full(pop.n, NPS_PER_YEAR / 365.25)
    )
    # complaints of the same customer before each survey, via sorted (customer, time) keys
    span = pop.horizon + 1.0
    keys = np.sort(complaint_cust * span + complaint_t)
    before = np.searchsorted(keys, cust * span + t) - np.searchsorted(keys, cust * span)
    adj = np.array([NPS_SEGMENT_ADJ[s] for s in SEGMENTS])[pop.segment[cust]]
    score = np.clip(np.round(rng.normal(7.6 + adj - 1.3 * before, 1.6)), 0, 10)
    m = len(cust)
    return Batch(
        "satisfaction.rated",
        cust,
        t,
        "survey",
        pl.DataFrame({"score": score.astype(np.int64), "scale": pl.repeat("nps", m, eager=True)}),
        channel=pick(("email", "web"), choice(rng, m, (0.7, 0.3))),
        direction="inbound",
    )


def _moves(
    rng: np.random.Generator, pop: Population, cust: IntArray, t: FloatArray, reason: IntArray
) -> Batch:
    life = reason == REASONS.index("life_event")
    moves = life & (rng.random(len(cust)) < MOVE_PROB)
    c, tm = cust[moves], t[moves] + 0.003
    country = pop.country[c]
    city = fake.draw_cities(rng, country)
    addr = fake.address(rng, country)
    return Batch(
        "customer.profile_changed",
        c,
        tm,
        "crm",
        pl.DataFrame(
            {
                "address": addr["address"],
                "postal_code": addr["postal_code"],
                "city": pick(fake.ALL_CITIES, city),
                "reason": pl.repeat("move", len(c), eager=True),
            }
        ),
        direction="inbound",
    )


def _outbound(rng: np.random.Generator, pop: Population) -> list[Batch]:
    n = pop.n
    welcomed = np.flatnonzero(rng.random(n) < 0.5)
    m = len(welcomed)
    t = pop.reg_t[welcomed] + rng.uniform(0.5, 3.0, m)
    by_phone = rng.random(m) < 0.3
    outcome = np.where(by_phone & (rng.random(m) < 0.3), 1, 0)
    welcome = Batch(
        "contact",
        welcomed,
        t,
        "contact-centre",
        pl.DataFrame(
            {
                "reason": pl.repeat("welcome", m, eager=True),
                "outcome": pick(("completed", "no_answer"), outcome),
            }
        ),
        channel=pick(("email", "phone"), by_phone.astype(np.int64)),
        direction="outbound",
    ).keep(t < pop.horizon)
    runs = np.where(pop.contractual, np.minimum(pop.cancel_t, pop.horizon), pop.reg_t)
    c, tr = poisson_times(rng, pop.reg_t, runs, np.full(n, 0.01 / 7.0))
    k = len(c)
    retention = Batch(
        "contact",
        c,
        tr,
        "contact-centre",
        pl.DataFrame(
            {
                "reason": pl.repeat("retention", k, eager=True),
                "outcome": pick(
                    ("accepted_offer", "not_interested", "no_answer"),
                    choice(rng, k, (0.3, 0.4, 0.3)),
                ),
            }
        ),
        channel="phone",
        direction="outbound",
    )
    return [welcome, retention]
