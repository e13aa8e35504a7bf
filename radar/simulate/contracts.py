"""Contractual customers: cancellation (proportional hazards), monthly payments and usage.

Cancellation time since registration (days): T = s·(E / exp(β·x))^(1/k), E ~ Exp(1), which is
the Weibull proportional-hazards model of :class:`~radar.simulate.params.Cancellation`.
Invoices are issued every 30 days after registration while the contract runs; each is paid within
its 14-day term, or late (probability per segment) by 1 + Geometric(1/10) − 1 days past due.
Monthly usage of the plan declines linearly to 40% over the 90 days before cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from radar.simulate.batch import Batch, FloatArray, day_dates, ids, pick
from radar.simulate.params import PLANS, SEGMENTS, SimulationParams
from radar.simulate.population import Population
from radar.simulate.sampling import choice, expand

INVOICE_DAYS = 30
PAYMENT_TERM_DAYS = 14
FEES = np.array([14.95, 29.95, 59.95])
CANCEL_REASONS = ("price", "service", "moving", "competitor", "no_need")
USAGE_DECLINE_DAYS = 90.0
USAGE_DECLINE_TO = 0.4


@dataclass
class ContractDraw:
    batches: list[Batch]
    latent_cancel_t: FloatArray  # model days (inf for non-contractual customers)


def covariates(pop: Population) -> dict[str, FloatArray]:
    """The indicator covariates of the cancellation model, per customer."""
    return {
        "business": pop.business.astype(np.float64),
        "plan_plus": (pop.plan == PLANS.index("plus")).astype(np.float64),
        "plan_pro": (pop.plan == PLANS.index("pro")).astype(np.float64),
        **{
            f"segment_{s}": (pop.segment == SEGMENTS.index(s)).astype(np.float64)
            for s in ("bargain", "loyal", "premium")
        },
    }


def generate_contracts(
    rng: np.random.Generator, pop: Population, params: SimulationParams, start_day: date
) -> ContractDraw:
    """Cancellations, payments and usage; sets ``pop.cancel_t`` (inf when not cancelled)."""
    cp = params.cancellation
    n = pop.n
    lin = np.zeros(n)
    for name, x in covariates(pop).items():
        lin += cp.log_hazard_ratios.get(name, 0.0) * x
    e = rng.exponential(1.0, n)
    latent = pop.reg_t + cp.scale_days * (e / np.exp(lin)) ** (1.0 / cp.shape)
    latent = np.where(pop.contractual, latent, np.inf)
    pop.cancel_t = np.where(latent < pop.horizon, latent, np.inf)
    batches: list[Batch] = []

    cancelled = np.flatnonzero(np.isfinite(pop.cancel_t))
    m = len(cancelled)
    batches.append(
        Batch(
            "contract.cancelled",
            cancelled,
            pop.cancel_t[cancelled],
            "crm",
            pl.DataFrame(
                {
                    "contract_id": ids("K-", cancelled),
                    "reason": pick(CANCEL_REASONS, choice(rng, m, (0.35, 0.2, 0.1, 0.2, 0.15))),
                }
            ),
            channel=pick(("phone", "email", "web"), choice(rng, m, (0.4, 0.3, 0.3))),
            direction="inbound",
        )
    )

    # monthly invoices (paid) and usage while the contract runs
    runs_until = np.where(pop.contractual, np.minimum(pop.cancel_t, pop.horizon), pop.reg_t)
    months = np.maximum(np.ceil((runs_until - pop.reg_t) / INVOICE_DAYS) - 1, 0).astype(np.int64)
    cust, k = expand(months)
    issue_day = np.floor(pop.reg_t[cust] + INVOICE_DAYS * (k + 1))
    q = len(cust)
    late = rng.random(q) < np.array([params.late_payment[s] for s in SEGMENTS])[pop.segment[cust]]
    days_late = np.where(late, rng.geometric(0.1, q), 0).astype(np.int64)
    on_time_day = issue_day + rng.integers(1, PAYMENT_TERM_DAYS + 1, q)
    due_day = issue_day + PAYMENT_TERM_DAYS
    paid_day = np.where(late, due_day + days_late, on_time_day)
    t_paid = paid_day + rng.random(q)
    fee = FEES[pop.plan[cust]] * np.where(pop.business[cust], 2.0, 1.0)
    pay = Batch(
        "payment",
        cust,
        t_paid,
        "billing",
        pl.DataFrame(
            {
                "invoice_id": pl.select(
                    ids("I-", cust) + "-" + pl.Series(k + 1).cast(pl.String)
                ).to_series(),
                "amount": np.round(fee, 2),
                "due_date": day_dates(start_day, due_day),
                "paid_date": day_dates(start_day, paid_day),
                "days_late": days_late,
            }
        ),
        direction="inbound",
    )
    batches.append(pay.keep(t_paid < pop.horizon))

    t_use = issue_day - 1 + rng.random(q)
    level = rng.lognormal(np.log(3.0), 0.5, n) * np.array([1.0, 2.0, 4.0])[pop.plan]
    to_cancel = latent[cust] - t_use
    decline = 1.0 - (1.0 - USAGE_DECLINE_TO) * np.clip(1.0 - to_cancel / USAGE_DECLINE_DAYS, 0, 1)
    value = np.round(level[cust] * decline * rng.lognormal(0.0, 0.25, q) * 10.0, 1)
    plan_names = tuple(f"plan-{p}" for p in PLANS)
    use = Batch(
        "usage",
        cust,
        t_use,
        "metering",
        pl.DataFrame(
            {
                "product": pick(plan_names, pop.plan[cust]),
                "metric": pl.repeat("sessions", q, eager=True),
                "value": value.astype(np.float64),
            }
        ),
    )
    batches.append(use.keep((t_use < pop.horizon) & (t_use > pop.reg_t[cust])))
    return ContractDraw(batches, latent)
