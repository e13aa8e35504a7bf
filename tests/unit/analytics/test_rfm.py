"""RFM quintile scores and named groups."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.rfm import (
    SEGMENT_GRID,
    SEGMENTS,
    rfm_inputs_from_purchases,
    rfm_scores,
    segment_of,
)


def _customers(n: int = 500, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "recency_days": rng.integers(0, 720, n),
            "frequency": rng.geometric(0.3, n),
            "monetary": np.round(rng.gamma(2.0, 50.0, n), 2),
        }
    )


def test_scores_are_monotone_in_each_measure_with_recency_reversed() -> None:
    s = rfm_scores(_customers()).scores
    for value, score, sign in (
        ("recency_days", "r_score", -1),
        ("frequency", "f_score", 1),
        ("monetary", "m_score", 1),
    ):
        ordered = s.sort(pl.col(value) * sign)
        assert (ordered[score].diff().drop_nulls() >= 0).all(), score
    assert s["r_score"].min() == 1 and s["r_score"].max() == 5


def test_distinct_values_split_into_equal_quintiles() -> None:
    n = 100
    frame = pl.DataFrame(
        {
            "customer_id": [str(i) for i in range(n)],
            "recency_days": np.arange(n),
            "frequency": np.arange(n) + 1,
            "monetary": np.arange(n) * 1.5,
        }
    )
    s = rfm_scores(frame).scores
    for col in ("r_score", "f_score", "m_score"):
        assert s[col].value_counts().sort(col)["count"].to_list() == [20] * 5
    assert s.filter(pl.col("recency_days") == 0)["r_score"].item() == 5


def test_tied_values_share_a_score_whatever_the_row_order() -> None:
    frame = _customers(300, seed=1).with_columns(pl.col("frequency").clip(upper_bound=3))
    a = rfm_scores(frame).scores.sort("customer_id")
    b = rfm_scores(frame.sample(fraction=1.0, shuffle=True, seed=7)).scores.sort("customer_id")
    assert a.equals(b)
    per_value = a.group_by("frequency").agg(pl.col("f_score").n_unique())
    assert per_value["f_score"].max() == 1


def test_every_cell_of_the_grid_has_exactly_one_named_group_and_all_groups_are_used() -> None:
    used = {segment_of(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert used == set(SEGMENTS)
    assert sorted(SEGMENT_GRID) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError):
        segment_of(0, 3)


def test_best_and_worst_customers_land_in_champions_and_lost() -> None:
    s = rfm_scores(_customers(1_000, seed=2)).scores
    for row in s.to_dicts():
        assert row["segment"] == SEGMENT_GRID[row["r_score"]][row["fm_score"] - 1]
        assert row["fm_score"] == (row["f_score"] + row["m_score"] + 1) // 2
        assert row["rfm_code"] == f"{row['r_score']}{row['f_score']}{row['m_score']}"
    assert set(s.filter((pl.col("r_score") == 5) & (pl.col("fm_score") == 5))["segment"]) == {
        "champions"
    }
    assert set(s.filter((pl.col("r_score") == 1) & (pl.col("fm_score") == 1))["segment"]) == {
        "lost"
    }


def test_summary_counts_every_group() -> None:
    result = rfm_scores(_customers(), as_of=date(2026, 1, 1))
    d = result.to_dict()
    assert list(d["segment_counts"]) == list(SEGMENTS)
    assert sum(d["segment_counts"].values()) == 500
    assert d["as_of"] == "2026-01-01"
    assert [r["score"] for r in d["score_ranges"]["f_score"]] == sorted(
        {r["score"] for r in d["score_ranges"]["f_score"]}
    )


def test_bad_input_is_rejected_naming_the_problem() -> None:
    with pytest.raises(InsufficientData, match="no customers"):
        rfm_scores(_customers().head(0))
    with pytest.raises(ValueError, match="monetary"):
        rfm_scores(_customers().drop("monetary"))
    with pytest.raises(ValueError, match="duplicates"):
        rfm_scores(pl.concat([_customers(5), _customers(5)]))
    with pytest.raises(ValueError, match="recency_days has negative"):
        rfm_scores(_customers(5).with_columns(pl.lit(-1).alias("recency_days")))


def test_inputs_from_purchases_count_purchase_days() -> None:
    d = date
    purchases = pl.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B", "B"],
            "purchase_day": [
                d(2026, 1, 1),
                d(2026, 1, 1),
                d(2026, 1, 20),
                d(2026, 1, 5),
                d(2026, 3, 1),
            ],
            "amount": [10.0, 5.0, 20.0, 7.0, 100.0],
        }
    )
    out = rfm_inputs_from_purchases(purchases, d(2026, 1, 31))
    assert out.to_dicts() == [
        {"customer_id": "A", "recency_days": 11, "frequency": 2, "monetary": 35.0},
        {"customer_id": "B", "recency_days": 26, "frequency": 1, "monetary": 7.0},
    ]
