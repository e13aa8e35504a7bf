"""`simulate`: a whole synthetic CRM history with its ground truth.

The generators run in a fixed order on independent random streams spawned from ``seed``, so the
same (customers, seed, start, end, params) always gives the same events and truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from radar.simulate import fake
from radar.simulate.batch import Batch, FloatArray, assemble, customer_ids, pick, to_datetime
from radar.simulate.contracts import generate_contracts
from radar.simulate.envelopes import write_events_jsonl
from radar.simulate.marketing import generate_marketing
from radar.simulate.params import MIX_CHANNELS, ORIGINS, PLANS, SEGMENTS, SimulationParams
from radar.simulate.population import Population, draw_population, segment_thresholds
from radar.simulate.purchases import generate_purchases
from radar.simulate.sales import generate_sales
from radar.simulate.sampling import choice
from radar.simulate.service import generate_service

NEW_CUSTOMER_DAYS = 90
LATENT_LIMIT_DAYS = 100 * 365.25


@dataclass
class Simulation:
    """A generated history: ``events`` (envelope columns, sorted by occurred_at), ``truth``
    (JSON-ready ground truth) and ``customers`` (the per-customer truth as a frame)."""

    events: pl.DataFrame
    truth: dict[str, Any]
    customers: pl.DataFrame

    def write_jsonl(self, path: str | Path) -> int:
        """Write the events as JSONL envelopes; returns the number of events."""
        return write_events_jsonl(self.events, path)

    def write_truth(self, path: str | Path) -> None:
        """Write the truth as JSON."""
        Path(path).write_text(json.dumps(self.truth, ensure_ascii=False), encoding="utf-8")


def simulate(
    customers: int,
    seed: int,
    start: date = date(2024, 1, 1),
    end: date = date(2026, 1, 1),
    params: SimulationParams | None = None,
) -> Simulation:
    """Simulate ``customers`` customers from ``start`` until ``end`` (exclusive, the as-of)."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if end <= start:
        raise ValueError("end must be after start")
    params = params or SimulationParams()
    horizon = float((end - start).days)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    pop = draw_population(streams[0], customers, horizon, params)
    batches: list[Batch] = [_registrations(streams[1], pop, start)]
    purchases = generate_purchases(streams[2], pop, params)
    batches.append(purchases.batch)
    contracts = generate_contracts(streams[3], pop, params, start)
    batches += contracts.batches
    batches += generate_service(streams[4], pop, params)
    marketing = generate_marketing(streams[5], pop, params, start)
    batches += marketing.batches
    sales = generate_sales(streams[6], pop, params)
    batches += sales.batches
    events = assemble(batches, start, customers)
    table = _customer_truth(
        pop, start, purchases.batch, events, purchases.future_dropout_t, contracts.latent_cancel_t
    )
    truth = _truth(pop, params, seed, start, end, table, marketing.weekly, sales.deals)
    return Simulation(events=events, truth=truth, customers=table)


def _registrations(rng: np.random.Generator, pop: Population, start: date) -> Batch:
    fields = fake.profiles(rng, start, pop.reg_t, pop.business, pop.country, pop.city)
    data = pl.DataFrame(
        {
            **fields,
            "customer_type": pick(("consumer", "business"), pop.business.astype(np.int64)),
            "contractual": pop.contractual,
        }
    )
    return Batch(
        "customer.registered",
        np.arange(pop.n, dtype=np.int64),
        pop.reg_t,
        "crm",
        data,
        channel=pick(("web", "store", "phone"), choice(rng, pop.n, (0.6, 0.25, 0.15))),
        direction="inbound",
    )


def _times(start: date, t: FloatArray) -> pl.Series:
    """Datetimes of model times; null where not finite or more than a century away."""
    finite = np.isfinite(t) & (np.abs(t) < LATENT_LIMIT_DAYS)
    dt = to_datetime(start, np.where(finite, t, 0.0))
    return pl.select(pl.when(pl.Series(finite)).then(dt).otherwise(None)).to_series()


def _customer_truth(
    pop: Population,
    start: date,
    purchases: Batch,
    events: pl.DataFrame,
    future_dropout_t: FloatArray,
    latent_cancel_t: FloatArray,
) -> pl.DataFrame:
    n = pop.n
    amounts = purchases.data["amount"].to_numpy()
    revenue = np.bincount(purchases.cust, weights=amounts, minlength=n)
    n_purchases = np.bincount(purchases.cust, minlength=n)
    day_keys = np.unique(purchases.cust * (int(pop.horizon) + 1) + np.floor(purchases.t))
    purchase_days = np.bincount((day_keys // (int(pop.horizon) + 1)).astype(np.int64), minlength=n)
    ids = customer_ids(n)
    complaints = (
        events.filter(
            (pl.col("type") == "contact")
            & pl.col("data").str.contains('"reason":"complaint"', literal=True)
        )
        .group_by("customer_id")
        .len("complaints")
    )
    end_t = pop.horizon
    cancelled = np.isfinite(pop.cancel_t)
    dropped = np.isfinite(pop.dropout_t)
    new = pop.reg_t >= end_t - NEW_CUSTOMER_DAYS
    stage = np.where(
        cancelled, "cancelled", np.where(dropped, "lapsed", np.where(new, "new", "active"))
    )
    frame = pl.DataFrame(
        {
            "customer_id": ids,
            "segment": pick(SEGMENTS, pop.segment),
            "customer_type": pick(("consumer", "business"), pop.business.astype(np.int64)),
            "contractual": pop.contractual,
            "plan": pl.select(
                pl.when(pl.Series(pop.contractual)).then(pick(PLANS, pop.plan)).otherwise(None)
            ).to_series(),
            "complaint_prone": pop.complaint_prone,
            "registered_at": _times(start, pop.reg_t),
            "lambda": pop.lam,
            "p": pop.p,
            "nu": pop.nu,
            "dropout_at": _times(start, pop.dropout_t),
            "alive_at_end": ~dropped,
            "latent_dropout_at": _times(start, future_dropout_t),
            "cancelled_at": _times(start, pop.cancel_t),
            "latent_cancel_at": _times(start, latent_cancel_t),
            "inactive_at": _times(start, pop.inactive_t),
            "purchases": n_purchases.astype(np.int64),
            "repeat_purchases": (n_purchases - 1).astype(np.int64),
            "purchase_days": purchase_days.astype(np.int64),
            "revenue": np.round(revenue, 2),
            "lifecycle_stage": stage,
        }
    )
    return frame.join(complaints, on="customer_id", how="left").with_columns(
        pl.col("complaints").fill_null(0).cast(pl.Int64)
    )


def _iso(s: pl.Series) -> pl.Series:
    return s.dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _truth(
    pop: Population,
    params: SimulationParams,
    seed: int,
    start: date,
    end: date,
    table: pl.DataFrame,
    weekly: list[dict[str, Any]],
    deals: list[dict[str, Any]],
) -> dict[str, Any]:
    bg, gg, cp, mm, dp = (
        params.bgnbd,
        params.spend,
        params.cancellation,
        params.marketing,
        params.deals,
    )
    ids = customer_ids(pop.n)
    records = table.with_columns(
        [_iso(table[c]).alias(c) for c, t in table.schema.items() if isinstance(t, pl.Datetime)]
    ).to_dicts()
    counts = table["segment"].value_counts()
    stages = table["lifecycle_stage"].value_counts()
    return {
        "generator": "radar.simulate",
        "seed": seed,
        "n_customers": pop.n,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "time": "model day d maps onto 07:00–22:00 UTC of start + d days (monotonic)",
        "params": params.to_json(),
        "segments": {
            "names": list(SEGMENTS),
            "definition": "premium: nu <= premium_nu_at_most; else loyal: lambda >= "
            "loyal_lambda_at_least and p <= loyal_p_at_most; else occasional: lambda < "
            "occasional_lambda_below; else bargain",
            "thresholds": segment_thresholds(params),
            "counts": dict(zip(counts["segment"], counts["count"], strict=True)),
        },
        "bgnbd": {
            "r": bg.r,
            "alpha": bg.alpha,
            "a": bg.a,
            "b": bg.b,
            "time_unit": "week",
            "birth": "first purchase at registration; x counts the repeat purchase events "
            "after it (several can fall on one day)",
        },
        "gamma_gamma": {"p": gg.p, "q": gg.q, "v": gg.v, "amount": "per purchase, EUR"},
        "cancellation": {
            "model": "proportional hazards, Weibull baseline, time in days since registration",
            "baseline_shape": cp.shape,
            "baseline_scale_days": cp.scale_days,
            "cumulative_baseline_hazard": "H0(t) = (t / baseline_scale_days) ** baseline_shape",
            "log_hazard_ratios": dict(cp.log_hazard_ratios),
            "reference": "consumer, basic plan, occasional segment",
            "population": "contractual customers only",
        },
        "marketing_mix": {
            "period": "week starting at start + 7k days (Monday 00:00 UTC)",
            "model": "conversions = intercept + sum(beta_ch * sends_ch) + noise",
            "intercept": mm.intercept_per_1000 * pop.n / 1000.0,
            "effects": {c: mm.effects[c] for c in MIX_CHANNELS},
            "touch": "campaign.sent on the channel",
            "conversion": "campaign.responded with response converted (any campaign)",
            "weekly": weekly,
        },
        "deals": {
            "model": "logistic: P(won) = sigmoid(intercept + value_log*ln(value/1000) "
            "+ origin[origin] + sales_contacts*n)",
            "coefficients": {
                "intercept": dp.intercept,
                "value_log": dp.value_log,
                "sales_contacts": dp.sales_contacts,
                **{f"origin_{o}": dp.origin[o] for o in ORIGINS},
            },
            "reference_origin": "web",
            "sales_contacts": "outbound contact events with reason sales of the customer between "
            "lead.created and the deal's close",
            "closed": [
                {
                    "deal_id": d["deal_id"],
                    "customer_id": ids[d["cust"]],
                    "origin": d["origin"],
                    "value": d["value"],
                    "sales_contacts": d["sales_contacts"],
                    "won": d["won"],
                }
                for d in deals
            ],
        },
        "inactivity": {
            "inactive_at": "dropout time, or the cancellation if earlier (contractual)",
            "inbound_contact_factor_after": params.inactive_contact_factor,
            "purchases_after_dropout": 0,
        },
        "lifecycle": {
            "stage_at_end": "cancelled if the contract was cancelled; else lapsed if dropped "
            f"out; else new if registered in the last {NEW_CUSTOMER_DAYS} days; else active",
            "counts": dict(zip(stages["lifecycle_stage"], stages["count"], strict=True)),
        },
        "customers": records,
    }
