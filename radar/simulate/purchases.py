"""Purchases: the BG/NBD transaction process with Gamma-Gamma spend (see params).

The first purchase happens at registration. Given λ (per week) and p, the repeat purchases are a
Poisson(λ) process and the customer drops out right after the J-th repeat purchase,
J ~ Geometric(p) on {1, 2, …}. Vectorised: K ~ Poisson(λ·T) arrivals on the observation window
[registration, end) are uniform order statistics; the first min(J, K) are kept; when J ≤ K the
J-th is the dropout time, otherwise the customer is alive at the end (the truth still gets the
future dropout time, T + Gamma(J − K, λ)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from radar.simulate.batch import Batch, FloatArray, IntArray, ids, pick
from radar.simulate.params import SimulationParams
from radar.simulate.population import Population
from radar.simulate.sampling import expand

FIRST_PURCHASE_DELAY = 0.002  # model days after registration
PURCHASE_CHANNELS = ("web", "store", "app")
#: channel preference per segment (bargain, loyal, premium, occasional)
CHANNEL_PREF = np.array([[0.8, 0.1, 0.1], [0.55, 0.25, 0.2], [0.4, 0.5, 0.1], [0.7, 0.25, 0.05]])


@dataclass
class PurchaseDraw:
    """The purchase batch and per-customer facts for the truth."""

    batch: Batch
    future_dropout_t: FloatArray  # latent dropout time (model days), may be past the end
    repeats: IntArray  # emitted repeat purchases per customer


def generate_purchases(
    rng: np.random.Generator, pop: Population, params: SimulationParams
) -> PurchaseDraw:
    """Purchases of every customer; sets ``pop.dropout_t`` (inf when alive at the end)."""
    n = pop.n
    window_w = (pop.horizon - pop.reg_t - FIRST_PURCHASE_DELAY) / 7.0
    j = rng.geometric(pop.p)  # repeat purchase after which the customer drops out
    k = rng.poisson(pop.lam * window_w)
    owner, _ = expand(k)
    u = rng.random(len(owner)) * window_w[owner]
    order = np.lexsort((u, owner))
    owner, u = owner[order], u[order]
    _, rank = expand(k)  # owner is sorted with the same counts, so ranks line up
    kept = rank < j[owner]
    owner, u, rank = owner[kept], u[kept], rank[kept]
    # dropout: J-th arrival when J <= K, otherwise after the end
    at_drop = rank == j[owner] - 1
    future = np.empty(n)
    alive = j > k
    extra = rng.gamma(np.maximum(j - k, 1).astype(np.float64), 1.0 / pop.lam)
    future[alive] = (window_w[alive] + extra[alive]) * 7.0 + pop.reg_t[alive] + FIRST_PURCHASE_DELAY
    t_first = pop.reg_t + FIRST_PURCHASE_DELAY
    repeat_t = t_first[owner] + u * 7.0
    future[owner[at_drop]] = repeat_t[at_drop]
    pop.dropout_t = np.where(alive, np.inf, future)
    cust = np.concatenate([np.arange(n, dtype=np.int64), owner])
    t = np.concatenate([t_first, repeat_t])
    repeats = np.bincount(owner, minlength=n)
    m = len(cust)
    gg = params.spend
    amount = np.maximum(np.round(rng.gamma(gg.p, 1.0 / pop.nu[cust]), 2), 0.01)
    seg = pop.segment[cust]
    u_ch = rng.random(m)
    cum = np.cumsum(CHANNEL_PREF, axis=1)[seg]
    chan = np.minimum((u_ch[:, None] >= cum).sum(axis=1), 2)
    # products: premium buys from the upper range of the catalogue
    sku = np.where(seg == 2, rng.integers(200, 260, m), rng.integers(100, 240, m))
    channel = pick(PURCHASE_CHANNELS, chan)
    data = pl.DataFrame(
        {
            "order_id": ids("O-", np.arange(m)),
            "amount": amount,
            "currency": pl.repeat("EUR", m, eager=True),
            "product": ids("SKU-", sku),
            "quantity": (1 + rng.poisson(0.3, m)).astype(np.int64),
        }
    )
    source = pl.select(
        pl.when(channel == "store").then(pl.lit("store-pos")).otherwise(pl.lit("webshop"))
    ).to_series()
    batch = Batch("purchase", cust, t, source, data, channel=channel, direction="inbound")
    return PurchaseDraw(batch, future, repeats.astype(np.int64))
