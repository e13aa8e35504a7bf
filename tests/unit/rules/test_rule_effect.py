"""Effect measurement: treated vs hold-out success within the rule's window, lift and CI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from radar.rules.effect import mark_successes, measure_effect, newcombe_interval
from radar.rules.schema import Success

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def decisions(rule_id: str, n_treated: int, n_held: int) -> pl.DataFrame:
    n = n_treated + n_held
    return pl.DataFrame(
        {
            "action_id": [f"{rule_id}-{i}" for i in range(n)],
            "rule_id": [rule_id] * n,
            "rule_version": ["v1"] * n,
            "customer_id": [f"{rule_id}-C{i}" for i in range(n)],
            "status": ["planned"] * n_treated + ["held_out"] * n_held,
            "decided_at": [T0] * n,
        }
    )


def purchases(
    frame: pl.DataFrame, rate_treated: float, rate_held: float, seed: int
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rate = np.where(frame["status"].to_numpy() == "planned", rate_treated, rate_held)
    buys = rng.random(frame.height) < rate
    buyers = frame.filter(pl.Series(buys))
    return pl.DataFrame(
        {
            "customer_id": buyers["customer_id"],
            "type": ["purchase"] * buyers.height,
            "occurred_at": [T0 + timedelta(days=5)] * buyers.height,
        }
    )


SUCCESS = {
    "works": Success(event="purchase", within_days=30),
    "useless": Success(event="purchase", within_days=30),
}


def test_an_effective_rule_shows_positive_lift_with_ci_excluding_zero() -> None:
    d = decisions("works", 4000, 1000)
    out = measure_effect(d, purchases(d, 0.20, 0.10, seed=1), SUCCESS)
    row = out.row(0, named=True)
    assert row["treated"] == 4000 and row["holdout"] == 1000 and row["contacts"] == 4000
    assert row["lift"] > 0 and row["lift_low"] > 0 and row["significant"]
    assert row["lift_low"] < 0.10 < row["lift_high"]
    assert row["lift_ratio"] > 1.4
    assert abs(row["incremental_successes"] - row["lift"] * 4000) < 1e-9


def test_an_ineffective_rule_shows_a_ci_containing_zero() -> None:
    d = decisions("useless", 4000, 1000)
    out = measure_effect(d, purchases(d, 0.15, 0.15, seed=2), SUCCESS)
    row = out.row(0, named=True)
    assert row["lift_low"] < 0 < row["lift_high"] and not row["significant"]


def test_only_outcomes_inside_the_window_and_of_the_right_kind_count() -> None:
    d = decisions("works", 4, 0)
    outcomes = pl.DataFrame(
        {
            "customer_id": ["works-C0", "works-C1", "works-C2", "works-C3", "works-C3"],
            "type": ["purchase", "purchase", "contact", "campaign.responded", "purchase"],
            "occurred_at": [
                T0 + timedelta(days=30),  # last moment of the window: counts
                T0 + timedelta(days=30, seconds=1),  # too late
                T0 + timedelta(days=1),  # wrong type
                T0 + timedelta(days=1),  # wrong type
                T0 - timedelta(days=1),  # before the decision
            ],
            "response": [None, None, None, "converted", None],
        }
    )
    marked = mark_successes(d, outcomes, SUCCESS).sort("customer_id")
    assert marked["success"].to_list() == [True, False, False, False]


def test_a_required_response_must_match() -> None:
    d = decisions("conv", 2, 0)
    outcomes = pl.DataFrame(
        {
            "customer_id": ["conv-C0", "conv-C1"],
            "type": ["campaign.responded"] * 2,
            "occurred_at": [T0 + timedelta(days=1)] * 2,
            "response": ["converted", "opened"],
        }
    )
    rule = {"conv": Success(event="campaign.responded", within_days=7, response="converted")}
    assert mark_successes(d, outcomes, rule).sort("customer_id")["success"].to_list() == [
        True,
        False,
    ]


def test_as_of_leaves_out_windows_that_are_still_open() -> None:
    d = pl.concat(
        [
            decisions("works", 2, 0),
            decisions("works", 2, 0).with_columns(
                pl.lit(T0 + timedelta(days=20)).alias("decided_at"),
                pl.col("action_id") + "-late",
            ),
        ]
    )
    empty = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "type": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
        }
    )
    out = measure_effect(d, empty, SUCCESS, as_of=T0 + timedelta(days=31))
    assert out["treated"].to_list() == [2]
    assert out["holdout_rate"].to_list() == [None]


def test_newcombe_interval_matches_the_published_example() -> None:
    # Newcombe (1998), example (a): 56/70 vs 48/80 → difference 0.2, 95% CI 0.0524 to 0.3339
    d, low, high = newcombe_interval([56], [70], [48], [80])
    assert abs(d[0] - 0.2) < 1e-12
    assert abs(low[0] - 0.0524) < 5e-4 and abs(high[0] - 0.3339) < 5e-4
