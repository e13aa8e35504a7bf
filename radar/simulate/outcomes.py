"""What the operational systems report back after carrying out radar's actions (closes the loop).

For every planned action, :func:`simulate_outcomes` emits the execution: a ``campaign.sent`` (when
the action has a campaign_id) or an outbound ``contact`` (reason ``other``), both carrying the
``action_id``, a few minutes to hours after ``planned_at``. The customer then converts with
probability ``base_rate + effects[rule_id]`` (clipped to [0, 1]) within ``window_days`` of the
execution: a ``purchase`` with the ``action_id`` (preceded by a ``campaign.responded`` converted
for campaign actions). A held-out customer (not contacted) converts with ``base_rate`` only: a
``purchase`` without action_id. So a rule's true uplift is ``effects[rule_id]`` on the rate of
purchases within the window.

Deterministic for the same frames and seed (rows are processed in id order). Event ids derive from
the action id, so reporting the same action twice is idempotent.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from radar.simulate.batch import EVENT_COLUMNS, EVENT_SCHEMA

EXEC_DELAY_S = (300, 6 * 3600)
CONVERSION_LEAD_S = 60
SOURCES = {"phone": "contact-centre", "store": "store-pos"}


def _frame(
    event_id: pl.Series,
    type_: str | pl.Series,
    customer_id: pl.Series,
    at: pl.Series,
    source: str | pl.Series,
    channel: str | pl.Series | None,
    direction: str | None,
    data: pl.DataFrame,
) -> pl.DataFrame:
    n = len(event_id)

    def col(v: str | pl.Series | None) -> pl.Series:
        if isinstance(v, pl.Series):
            return v.cast(pl.String)
        return pl.repeat(v, n, dtype=pl.String, eager=True)

    encoded = data.select(pl.struct(pl.all()).struct.json_encode()).to_series()
    encoded = encoded.str.replace_all(r'"[a-z_]+":null,', "").str.replace_all(
        r',"[a-z_]+":null', ""
    )
    return pl.DataFrame(
        {
            "event_id": event_id,
            "type": col(type_),
            "customer_id": customer_id,
            "occurred_at": at,
            "source": col(source),
            "channel": col(channel),
            "direction": col(direction),
            "data": encoded,
        },
        schema=EVENT_SCHEMA,
    )


def _utc(s: pl.Series) -> pl.Series:
    dt = s.cast(pl.Datetime("us", s.dtype.time_zone if isinstance(s.dtype, pl.Datetime) else None))
    if isinstance(dt.dtype, pl.Datetime) and dt.dtype.time_zone is None:
        return dt.dt.replace_time_zone("UTC")
    return dt.dt.convert_time_zone("UTC")


def _plus_seconds(at: pl.Series, seconds: np.ndarray) -> pl.Series:
    delta = pl.Series(seconds.astype(np.int64) * 1_000_000).cast(pl.Duration("us"))
    return at + delta


def _purchases(
    rng: np.random.Generator,
    order_id: pl.Series,
    customer_id: pl.Series,
    at: pl.Series,
    action_id: pl.Series | None,
) -> pl.DataFrame:
    n = len(order_id)
    data = pl.DataFrame(
        {
            "order_id": order_id,
            "amount": np.maximum(np.round(rng.gamma(6.0, 5.0, n), 2), 0.01),
            "currency": pl.repeat("EUR", n, eager=True),
            "product": pl.repeat("SKU-150", n, eager=True),
            "quantity": np.ones(n, dtype=np.int64),
        }
    )
    if action_id is not None:
        data = data.with_columns(action_id=action_id)
    return _frame(
        pl.select(pl.lit("out-purchase-") + order_id).to_series(),
        "purchase",
        customer_id,
        at,
        "webshop",
        "web",
        "inbound",
        data,
    )


def simulate_outcomes(
    actions: pl.DataFrame,
    seed: int,
    effects: dict[str, float],
    holdouts: pl.DataFrame | None = None,
    *,
    base_rate: float = 0.05,
    window_days: float = 14.0,
    until: datetime | None = None,
) -> pl.DataFrame:
    """Outcome events (envelope columns, sorted by occurred_at) of the planned ``actions``.

    ``actions``: action_id, customer_id, rule_id, channel, campaign_id (nullable), planned_at.
    ``holdouts``: customer_id, rule_id, decided_at. ``effects``: true uplift per rule_id (rules
    not named have none). ``until``: drop outcomes that would occur after it.
    """
    rng = np.random.default_rng(seed)
    window_s = window_days * 86400.0
    frames: list[pl.DataFrame] = []
    acts = actions.sort("action_id")
    n = acts.height
    if n:
        planned = _utc(acts["planned_at"])
        executed = _plus_seconds(planned, rng.integers(*EXEC_DELAY_S, n))
        has_campaign = acts["campaign_id"].is_not_null()
        channel = acts["channel"].cast(pl.String)
        source = pl.select(
            pl.when(has_campaign)
            .then(pl.lit("mailer"))
            .otherwise(channel.replace_strict(SOURCES, default="contact-centre"))
        ).to_series()
        sent = acts.select("action_id", "customer_id", "campaign_id").with_columns(
            executed=executed, channel=channel, source=source
        )
        camp = sent.filter(has_campaign)
        frames.append(
            _frame(
                pl.select(pl.lit("out-sent-") + camp["action_id"]).to_series(),
                "campaign.sent",
                camp["customer_id"],
                camp["executed"],
                camp["source"],
                camp["channel"],
                "outbound",
                camp.select("campaign_id", "action_id"),
            )
        )
        calls = sent.filter(~has_campaign)
        m = calls.height
        frames.append(
            _frame(
                pl.select(pl.lit("out-contact-") + calls["action_id"]).to_series(),
                "contact",
                calls["customer_id"],
                calls["executed"],
                calls["source"],
                calls["channel"],
                "outbound",
                pl.DataFrame(
                    {
                        "reason": pl.repeat("other", m, eager=True),
                        "outcome": pl.repeat("completed", m, eager=True),
                        "action_id": calls["action_id"],
                    }
                ),
            )
        )
        uplift = (
            acts["rule_id"]
            .cast(pl.String)
            .replace_strict(
                {k: float(v) for k, v in effects.items()}, default=0.0, return_dtype=pl.Float64
            )
        )
        prob = np.clip(base_rate + uplift.to_numpy(), 0.0, 1.0)
        u = rng.random(n)
        delay = rng.random(n) * window_s + CONVERSION_LEAD_S
        conv = pl.Series(u < prob)
        converted = sent.with_columns(converted_at=_plus_seconds(executed, delay)).filter(conv)
        frames.append(
            _purchases(
                rng,
                converted["action_id"],
                converted["customer_id"],
                converted["converted_at"],
                converted["action_id"],
            )
        )
        resp = converted.filter(pl.col("campaign_id").is_not_null())
        frames.append(
            _frame(
                pl.select(pl.lit("out-responded-") + resp["action_id"]).to_series(),
                "campaign.responded",
                resp["customer_id"],
                _plus_seconds(resp["converted_at"], np.full(resp.height, -CONVERSION_LEAD_S)),
                "mailer",
                resp["channel"],
                "inbound",
                pl.DataFrame(
                    {
                        "campaign_id": resp["campaign_id"],
                        "response": pl.repeat("converted", resp.height, eager=True),
                        "action_id": resp["action_id"],
                    }
                ),
            )
        )
    if holdouts is not None and holdouts.height:
        held = holdouts.sort("rule_id", "customer_id", "decided_at")
        k = held.height
        decided = _utc(held["decided_at"])
        conv_h = rng.random(k) < base_rate
        at = _plus_seconds(decided, rng.random(k) * window_s + CONVERSION_LEAD_S)
        order = pl.select(
            pl.concat_str(
                pl.lit("holdout-"),
                held["rule_id"].cast(pl.String),
                pl.lit("-"),
                held["customer_id"],
                pl.lit("-"),
                decided.dt.strftime("%Y%m%dT%H%M%S"),
            )
        ).to_series()
        mask = pl.Series(conv_h)
        frames.append(
            _purchases(
                rng, order.filter(mask), held["customer_id"].filter(mask), at.filter(mask), None
            )
        )
    if not frames:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    out = pl.concat(frames).select(EVENT_COLUMNS).sort("occurred_at", "event_id")
    if until is not None:
        cut = (
            pl.lit(until).cast(pl.Datetime("us", "UTC"))
            if until.tzinfo
            else pl.lit(until).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        )
        out = out.filter(pl.col("occurred_at") <= cut)
    return out
