"""A fast, vectorised generator of valid envelopes for the benchmarks (not the simulator).

Mix: purchases, contacts, campaign sends/responses, payments, usage, registrations with personal
data — the shapes the ingest path must handle — written as JSONL with polars.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl


def _fmt(template: str, *args: pl.Expr) -> pl.Expr:
    """``template`` with each ``{}`` replaced by the next expression (as text)."""
    pieces = template.split("{}")
    assert len(pieces) == len(args) + 1, template
    parts: list[pl.Expr] = [pl.lit(pieces[0])]
    for arg, piece in zip(args, pieces[1:], strict=True):
        parts += [arg.cast(pl.String), pl.lit(piece)]
    return pl.concat_str(parts)


def write_events(path: Path, n: int, customers: int, seed: int = 1, source: str = "bench") -> int:
    """Write ``n`` valid events of ``customers`` customers to ``path`` (JSONL); returns n."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(5, size=n, p=[0.35, 0.3, 0.15, 0.1, 0.1])
    cust = rng.integers(0, customers, n)
    secs = rng.integers(0, 2 * 365 * 86400, n)
    frame = pl.DataFrame(
        {
            "i": np.arange(n),
            "kind": kind,
            "cust": cust,
            "ts": pl.Series((secs + 1_704_067_200) * 1_000_000).cast(pl.Datetime("us", "UTC")),
            "amount": np.round(rng.gamma(2.0, 25.0, n), 2),
        }
    ).with_columns(
        _fmt("C-{}", pl.col("cust").cast(pl.String).str.zfill(7)).alias("customer_id"),
        _fmt("{}-{}", pl.lit(source), pl.col("i")).alias("event_id"),
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("occurred_at"),
    )
    purchase = _fmt(
        '"type":"purchase","channel":"web","direction":"inbound","data":{"order_id":"O{}",'
        '"amount":{},"currency":"EUR","product":"SKU-{}","quantity":1}',
        pl.col("i"),
        pl.col("amount"),
        pl.col("cust") % 50,
    )
    contact = _fmt(
        '"type":"contact","channel":"phone","direction":"inbound",'
        '"data":{"reason":"invoice_question","outcome":"resolved"}'
    )
    campaign = _fmt(
        '"type":"campaign.sent","channel":"email","direction":"outbound",'
        '"data":{"campaign_id":"CMP-{}","offer":"spring"}',
        pl.col("cust") % 7,
    )
    payment = _fmt(
        '"type":"payment","data":{"invoice_id":"I{}","amount":{},"days_late":{}}',
        pl.col("i"),
        pl.col("amount"),
        pl.col("cust") % 3,
    )
    registered = _fmt(
        '"type":"customer.registered","channel":"web","data":{"name":"Customer {}",'
        '"email":"c{}@example.com","city":"Utrecht","country":"NL","contractual":false}',
        pl.col("cust"),
        pl.col("cust"),
    )
    body = (
        pl.when(pl.col("kind") == 0)
        .then(purchase)
        .when(pl.col("kind") == 1)
        .then(contact)
        .when(pl.col("kind") == 2)
        .then(campaign)
        .when(pl.col("kind") == 3)
        .then(payment)
        .otherwise(registered)
    )
    line = _fmt(
        '{"event_id":"{}","customer_id":"{}","occurred_at":"{}","source":"{}",{}}',
        pl.col("event_id"),
        pl.col("customer_id"),
        pl.col("occurred_at"),
        pl.lit(source),
        body,
    )
    lines = frame.select(line.alias("line"))
    path.parent.mkdir(parents=True, exist_ok=True)
    lines.write_csv(path, include_header=False, quote_style="never")
    return n
