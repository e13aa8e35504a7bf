"""Sales: leads, qualification, the deal pipeline and the logistic model of winning.

Each customer gets at most one lead (probability per customer type), created uniformly between
registration and the end. 65% are qualified after Exp(7 days); a qualified lead becomes a deal
(``deal_id``) with stage ``proposal`` after Exp(5 days), maybe ``negotiation`` later, and closes
after Exp(21 days) more. Between proposal and close, Poisson(1.8) outbound ``contact`` events with
reason ``sales`` happen; the deal is won with probability
sigmoid(β0 + β_value·ln(value/1000) + β_origin + β_contacts·sales_contacts). Deals closing after
the end stay open (no won/lost event; their contacts after the end are not emitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from radar.simulate.batch import Batch, ids, pick
from radar.simulate.params import ORIGINS, SimulationParams
from radar.simulate.population import Population
from radar.simulate.sampling import choice, expand

PRODUCTS = ("plan-plus", "plan-pro", "consultancy", "hardware")
LOST_REASONS = ("price", "competitor", "no_budget", "timing")
ORIGIN_SHARES = (0.35, 0.15, 0.2, 0.15, 0.15)


@dataclass
class SalesDraw:
    batches: list[Batch]
    deals: list[dict[str, Any]]  # per closed deal: id, features and outcome (truth)


def generate_sales(
    rng: np.random.Generator, pop: Population, params: SimulationParams
) -> SalesDraw:
    """Lead and deal events, and the closed deals with their model features."""
    dp = params.deals
    p_lead = np.where(
        pop.business, params.lead_probability["business"], params.lead_probability["consumer"]
    )
    cust = np.flatnonzero(rng.random(pop.n) < p_lead)
    m = len(cust)
    t_lead = pop.reg_t[cust] + 0.01 + rng.random(m) * (pop.horizon - pop.reg_t[cust] - 0.01)
    origin = choice(rng, m, ORIGIN_SHARES)
    product = choice(rng, m, (0.35, 0.2, 0.25, 0.2))
    value = np.round(
        rng.lognormal(np.log(1000.0), 0.8, m) * np.where(pop.business[cust], 4.0, 1.0), 0
    )
    lead_id = ids("L-", np.arange(m))
    origin_s = pick(ORIGINS, origin)
    batches = [
        Batch(
            "lead.created",
            cust,
            t_lead,
            "sales-crm",
            pl.DataFrame(
                {
                    "lead_id": lead_id,
                    "origin": origin_s,
                    "product": pick(PRODUCTS, product),
                    "value": value,
                }
            ),
            channel=pl.select(
                pl.when(origin_s == "web").then(pl.lit("web")).otherwise(pl.lit(None))
            ).to_series(),
        )
    ]
    qualified = rng.random(m) < 0.65
    t_q = t_lead + rng.exponential(7.0, m)
    t_prop = t_q + rng.exponential(5.0, m)
    t_close = t_prop + rng.exponential(21.0, m)
    negotiation = rng.random(m) < 0.6
    t_neg = t_prop + rng.random(m) * (t_close - t_prop)
    contacts = rng.poisson(1.8, m)
    logit = (
        dp.intercept
        + dp.value_log * np.log(value / 1000.0)
        + np.array([dp.origin[o] for o in ORIGINS])[origin]
        + dp.sales_contacts * contacts
    )
    won = rng.random(m) < 1.0 / (1.0 + np.exp(-logit))
    deal_id = ids("D-", np.arange(m))
    h = pop.horizon

    def lead_batch(kind: str, t: np.ndarray[Any, Any], cols: dict[str, Any], mask: Any) -> Batch:
        return Batch(kind, cust, t, "sales-crm", pl.DataFrame(cols)).keep(mask & (t < h))

    batches.append(
        lead_batch("lead.qualified", t_q, {"lead_id": lead_id, "value": value}, qualified)
    )
    for stage, ts, mask in (
        ("proposal", t_prop, qualified),
        ("negotiation", t_neg, qualified & negotiation),
    ):
        cols = {
            "deal_id": deal_id,
            "lead_id": lead_id,
            "stage": pl.repeat(stage, m, eager=True),
            "value": value,
        }
        batches.append(lead_batch("deal.stage_changed", ts, cols, mask))
    cols = {"deal_id": deal_id, "lead_id": lead_id, "value": value}
    batches.append(lead_batch("deal.won", t_close, cols, qualified & won))
    lost_cols = {**cols, "reason": pick(LOST_REASONS, choice(rng, m, (0.4, 0.3, 0.2, 0.1)))}
    batches.append(lead_batch("deal.lost", t_close, lost_cols, qualified & ~won))
    # sales contacts between proposal and close
    deal_idx, _ = expand(np.where(qualified, contacts, 0))
    tc = t_prop[deal_idx] + rng.random(len(deal_idx)) * (t_close - t_prop)[deal_idx]
    k = len(deal_idx)
    batches.append(
        Batch(
            "contact",
            cust[deal_idx],
            tc,
            "sales-crm",
            pl.DataFrame(
                {
                    "reason": pl.repeat("sales", k, eager=True),
                    "outcome": pick(
                        ("follow_up", "meeting_planned", "no_answer"),
                        choice(rng, k, (0.5, 0.3, 0.2)),
                    ),
                }
            ),
            channel=pick(("phone", "email"), choice(rng, k, (0.6, 0.4))),
            direction="outbound",
        ).keep(tc < h)
    )
    closed = qualified & (t_close < h)
    deals = (
        pl.DataFrame(
            {
                "deal_id": deal_id,
                "cust": cust,
                "origin": origin_s,
                "value": value,
                "sales_contacts": contacts,
                "won": won,
            }
        )
        .filter(pl.Series(closed))
        .to_dicts()
    )
    return SalesDraw(batches, deals)
