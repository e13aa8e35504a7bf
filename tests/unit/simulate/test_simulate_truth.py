"""The ground truth is consistent with the events and with the documented generative models."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from radar.simulate import Simulation

END = pl.datetime(2026, 1, 1, time_zone="UTC")


def _of(sim: Simulation, type_: str) -> pl.DataFrame:
    return sim.events.filter(pl.col("type") == type_)


def _weeks(expr: Any) -> Any:
    return expr.dt.total_seconds() / (7 * 86400)


def test_no_purchase_happens_after_a_customers_dropout(sim1k: Simulation) -> None:
    p = _of(sim1k, "purchase").join(sim1k.customers, on="customer_id")
    dropped = p.filter(pl.col("dropout_at").is_not_null())
    assert dropped.height > 0
    assert (dropped["occurred_at"] <= dropped["dropout_at"]).all()
    # the dropout time is the time of the customer's last purchase
    last = dropped.group_by("customer_id").agg(
        pl.col("occurred_at").max(), pl.col("dropout_at").first()
    )
    assert (last["occurred_at"] == last["dropout_at"]).all()


def test_cancellations_are_those_of_the_truth_and_only_of_contractual_customers(
    sim1k: Simulation,
) -> None:
    c = _of(sim1k, "contract.cancelled").join(sim1k.customers, on="customer_id")
    assert c.height > 0
    assert c["contractual"].all()
    assert (c["occurred_at"] == c["cancelled_at"]).all()
    assert sim1k.customers["cancelled_at"].is_not_null().sum() == c.height


def test_payments_and_usage_belong_to_running_contracts(sim1k: Simulation) -> None:
    usage = _of(sim1k, "usage").join(sim1k.customers, on="customer_id")
    assert usage.height > 0 and usage["contractual"].all()
    assert usage.filter(pl.col("occurred_at") > pl.col("cancelled_at")).height == 0
    pay = _of(sim1k, "payment").join(sim1k.customers, on="customer_id")
    assert pay.height > 0 and pay["contractual"].all()
    issued = pay["data"].str.json_path_match("$.due_date").str.to_date() - timedelta(days=14)
    assert (pay.filter(issued > pay["cancelled_at"].dt.date())).height == 0
    late = pay["data"].str.json_path_match("$.days_late").cast(pl.Int64)
    assert 0 < int((late > 0).sum()) < pay.height // 3


def test_mean_purchase_rate_matches_the_population_r_over_alpha(sim1k: Simulation) -> None:
    bg = sim1k.truth["bgnbd"]
    mean_lambda = sim1k.customers["lambda"].mean()
    assert abs(float(mean_lambda) / (bg["r"] / bg["alpha"]) - 1) < 0.1  # type: ignore[arg-type]


def test_repeat_purchases_while_alive_follow_each_customers_rate(sim1k: Simulation) -> None:
    # N(τ) − λτ is a martingale: over the alive exposure, Σ x ≈ Σ λ·τ
    c = sim1k.customers.with_columns(
        tau=_weeks(pl.coalesce("dropout_at", END) - pl.col("registered_at"))
    )
    expected = float((c["lambda"] * c["tau"]).sum())
    observed = int(c["repeat_purchases"].sum())
    assert abs(observed / expected - 1) < 0.05


def test_first_repeat_purchase_times_follow_the_gamma_mixture(sim1k: Simulation) -> None:
    bg = sim1k.truth["bgnbd"]
    w = 8.0
    p = (
        _of(sim1k, "purchase")
        .group_by("customer_id")
        .agg(
            first=pl.col("occurred_at").min(),
            second=pl.col("occurred_at").sort().get(1, null_on_oob=True),
        )
    )
    p = p.filter(_weeks(END - pl.col("first")) >= w)
    within = p["second"].is_not_null() & (_weeks(p["second"] - p["first"]) <= w)
    expected = 1 - (bg["alpha"] / (bg["alpha"] + w)) ** bg["r"]
    assert abs(float(within.mean()) - expected) < 0.05


def test_inbound_contacts_become_rare_after_inactivity(sim1k: Simulation) -> None:
    c = sim1k.customers.with_columns(
        start=pl.col("registered_at"), cut=pl.coalesce("inactive_at", END)
    ).with_columns(
        active_w=_weeks(pl.col("cut") - pl.col("start")), inactive_w=_weeks(END - pl.col("cut"))
    )
    inbound = (
        _of(sim1k, "contact").filter(pl.col("direction") == "inbound").join(c, on="customer_id")
    )
    after = int((inbound["occurred_at"] > inbound["cut"]).sum())
    rate_active = (inbound.height - after) / float(c["active_w"].sum())
    rate_inactive = after / float(c["inactive_w"].sum())
    assert rate_inactive < 0.4 * rate_active


def test_sales_contacts_of_closed_deals_are_those_in_the_truth(sim1k: Simulation) -> None:
    deals = pl.DataFrame(sim1k.truth["deals"]["closed"])
    assert deals.height > 20
    created = _of(sim1k, "lead.created").select("customer_id", lead_at="occurred_at")
    closed = sim1k.events.filter(pl.col("type").is_in(["deal.won", "deal.lost"])).select(
        "customer_id",
        close_at="occurred_at",
        deal_id=pl.col("data").str.json_path_match("$.deal_id"),
        won=pl.col("type") == "deal.won",
    )
    sales = _of(sim1k, "contact").filter(
        (pl.col("direction") == "outbound")
        & pl.col("data").str.contains('"reason":"sales"', literal=True)
    )
    j = deals.join(closed, on=["deal_id", "customer_id"]).join(created, on="customer_id")
    counted = (
        j.join(sales.select("customer_id", "occurred_at"), on="customer_id", how="left")
        .group_by("deal_id")
        .agg(
            n=(
                (pl.col("occurred_at") >= pl.col("lead_at"))
                & (pl.col("occurred_at") <= pl.col("close_at"))
            ).sum(),
            truth=pl.col("sales_contacts").first(),
        )
    )
    assert counted.height == deals.height
    assert (counted["n"] == counted["truth"]).all()


def test_weekly_marketing_table_matches_the_events(sim1k: Simulation) -> None:
    weekly = sim1k.truth["marketing_mix"]["weekly"]
    sent = _of(sim1k, "campaign.sent").group_by("channel").len()
    for row in sent.iter_rows(named=True):
        assert sum(w["sends"][row["channel"]] for w in weekly) == row["len"]
    converted = _of(sim1k, "campaign.responded").filter(
        pl.col("data").str.contains('"response":"converted"', literal=True)
    )
    assert sum(w["conversions"] for w in weekly) == converted.height


def test_campaigns_go_only_to_customers_consenting_on_the_channel(sim1k: Simulation) -> None:
    consent = (
        _of(sim1k, "consent.changed")
        .select(
            "customer_id",
            "occurred_at",
            channel=pl.col("data").str.json_path_match("$.channel"),
            granted=pl.col("data").str.json_path_match("$.granted") == "true",
        )
        .sort("occurred_at")
    )
    sent = _of(sim1k, "campaign.sent").select("customer_id", "channel", "occurred_at")
    state = sent.sort("occurred_at").join_asof(
        consent,
        on="occurred_at",
        by=["customer_id", "channel"],
        strategy="backward",
        check_sortedness=False,
    )
    assert state.height > 1000
    assert state["granted"].fill_null(False).all()


def test_lifecycle_stage_at_end_agrees_with_the_latent_times(sim1k: Simulation) -> None:
    c = sim1k.customers
    assert ((c["lifecycle_stage"] == "cancelled") == c["cancelled_at"].is_not_null()).all()
    lapsed = c.filter(pl.col("lifecycle_stage") == "lapsed")
    assert lapsed["dropout_at"].is_not_null().all()
    assert not lapsed["alive_at_end"].any()


def test_segments_follow_their_latent_definition(sim1k: Simulation) -> None:
    th = sim1k.truth["segments"]["thresholds"]
    c = sim1k.customers
    assert set(c["segment"].unique()) == {"bargain", "loyal", "premium", "occasional"}
    premium = c["nu"] <= th["premium_nu_at_most"]
    assert ((c["segment"] == "premium") == premium).all()
    loyal = (
        ~premium & (c["lambda"] >= th["loyal_lambda_at_least"]) & (c["p"] <= th["loyal_p_at_most"])
    )
    assert ((c["segment"] == "loyal") == loyal).all()


def test_ratings_are_lower_for_customers_with_complaints(sim1k: Simulation) -> None:
    r = _of(sim1k, "satisfaction.rated").select(
        "customer_id",
        score=pl.col("data").str.json_path_match("$.score").cast(pl.Float64),
        scale=pl.col("data").str.json_path_match("$.scale"),
    )
    nps = r.filter(pl.col("scale") == "nps").join(sim1k.customers, on="customer_id")
    with_c = nps.filter(pl.col("complaints") > 0)["score"].mean()
    without = nps.filter(pl.col("complaints") == 0)["score"].mean()
    assert float(with_c) < float(without) - 0.5  # type: ignore[arg-type]
    assert set(np.unique(r.filter(pl.col("scale") == "csat")["score"].to_numpy())) <= {
        1,
        2,
        3,
        4,
        5,
    }
