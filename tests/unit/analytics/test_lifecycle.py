"""Lifecycle: stage rules on known histories; the Markov model recovers a simulated Q."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.lifecycle import (
    STAGES,
    StageRules,
    activity_panel,
    analyse_lifecycle,
    assign_stages,
    backtest,
    forecast_shares,
    stationary_distribution,
    transition_counts,
    transition_matrix,
)
from radar.analytics.models.synthetic import simulate_markov_chains

# A known, irreducible Q over STAGES (rows sum to 1).
TRUE_Q = np.array(
    [
        [0.60, 0.30, 0.00, 0.00, 0.00, 0.10, 0.00],
        [0.00, 0.30, 0.40, 0.00, 0.30, 0.00, 0.00],
        [0.00, 0.00, 0.30, 0.50, 0.20, 0.00, 0.00],
        [0.00, 0.00, 0.00, 0.80, 0.20, 0.00, 0.00],
        [0.00, 0.00, 0.10, 0.20, 0.40, 0.30, 0.00],
        [0.05, 0.00, 0.00, 0.00, 0.00, 0.80, 0.15],
        [0.00, 0.00, 0.00, 0.30, 0.20, 0.10, 0.40],
    ]
)


def _stage_frame(paths: np.ndarray) -> pl.DataFrame:
    n, steps = paths.shape
    names = np.array(STAGES)
    return pl.DataFrame(
        {
            "customer_id": np.repeat([f"C{i}" for i in range(n)], steps),
            "period_index": np.tile(np.arange(steps), n),
            "stage": names[paths.ravel()],
        }
    )


def test_markov_estimate_recovers_the_simulated_q() -> None:
    paths = simulate_markov_chains(TRUE_Q, n_chains=20_000, n_steps=10, seed=1)
    counts = transition_counts(_stage_frame(paths))
    assert counts.sum() == 20_000 * 10
    tm = transition_matrix(counts)
    assert np.abs(tm.q - TRUE_Q).max() < 0.02
    assert np.allclose(tm.q.sum(axis=1), 1.0)
    assert tm.unobserved_stages == ()


def test_stationary_distribution_solves_pi_q_equals_pi() -> None:
    paths = simulate_markov_chains(TRUE_Q, n_chains=5000, n_steps=10, seed=2)
    q = transition_matrix(transition_counts(_stage_frame(paths))).q
    pi, unique = stationary_distribution(q)
    assert unique
    assert np.allclose(pi @ q, pi, atol=1e-10)
    assert pi.sum() == pytest.approx(1.0) and (pi >= 0).all()
    start = np.eye(len(STAGES))[1]
    assert np.allclose(forecast_shares(start, q, 400)[-1], pi, atol=1e-6)


def test_forecast_is_p_times_q_to_the_k() -> None:
    p0 = np.array([0.2, 0.1, 0.1, 0.3, 0.1, 0.1, 0.1])
    fc = forecast_shares(p0, TRUE_Q, 5)
    assert fc.shape == (6, len(STAGES))
    for k in range(6):
        assert np.allclose(fc[k], p0 @ np.linalg.matrix_power(TRUE_Q, k))


def test_stages_never_left_become_absorbing_rows_and_make_the_stationary_state_ambiguous() -> None:
    counts = np.zeros((7, 7))
    counts[0, 1] = 5
    counts[1, 3] = 5
    counts[3, 5] = 5  # nobody observed leaving 'lapsed'; 'won_back' etc. never observed
    tm = transition_matrix(counts)
    assert tm.q[5, 5] == 1.0 and tm.q[6, 6] == 1.0
    assert set(tm.unobserved_stages) == {"developing", "at_risk", "lapsed", "won_back"}
    pi, unique = stationary_distribution(tm.q)
    assert not unique
    assert np.allclose(pi @ tm.q, pi, atol=1e-10)


def test_backtest_on_a_time_homogeneous_chain_has_small_error() -> None:
    p0 = [0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0.0]
    paths = simulate_markov_chains(TRUE_Q, n_chains=20_000, n_steps=6, initial=p0, seed=3)
    frame = _stage_frame(paths)
    result = backtest(frame, cut_index=3, horizon=3)
    assert set(result.mae) == set(STAGES)
    assert result.errors.height == 3 * len(STAGES)
    assert max(result.mae.values()) < 0.02
    # far better than assuming the shares at the cut stay as they are
    at_cut = np.bincount(paths[:, 3], minlength=len(STAGES)) / paths.shape[0]
    later = [
        np.bincount(paths[:, 3 + k], minlength=len(STAGES)) / paths.shape[0] for k in (1, 2, 3)
    ]
    persistence_mae = float(np.mean([np.abs(at_cut - s) for s in later]))
    assert result.mae_overall < persistence_mae / 3
    actual = result.errors.filter(pl.col("step") == 3).sort("stage")
    assert np.allclose(
        actual["actual"].to_numpy(),
        [later[2][STAGES.index(s)] for s in actual["stage"].to_list()],
    )


def test_backtest_needs_periods_after_the_cut() -> None:
    paths = simulate_markov_chains(TRUE_Q, n_chains=10, n_steps=4, seed=4)
    with pytest.raises(InsufficientData, match="periods after the cut"):
        backtest(_stage_frame(paths), cut_index=3, horizon=3)


def _months(*pairs: tuple[int, int]) -> list[datetime]:
    return [datetime(y, m, 15) for y, m in pairs]


def test_stage_rules_follow_the_documented_table() -> None:
    registrations = pl.DataFrame(
        {"customer_id": ["A", "B"], "registered_at": _months((2024, 1), (2024, 1))}
    )
    bought = _months((2024, 3), (2024, 5), (2024, 6), (2025, 1), (2025, 1))
    purchases = pl.DataFrame({"customer_id": ["A"] * 5, "occurred_at": bought})
    panel = activity_panel(registrations, purchases, end=datetime(2025, 3, 1))
    stages = assign_stages(panel, StageRules(at_risk_after=3, lapsed_after=6, retained_after=3))
    a = stages.filter(pl.col("customer_id") == "A").sort("period_index")
    expected = [
        "prospect",  # 2024-01 registered
        "prospect",  # 02
        "new",  # 03 first purchase
        "new",  # 04 quiet month: stage carried
        "developing",  # 05 second active month
        "retained",  # 06 third active month
        "retained",  # 07 carried (gap 1)
        "retained",  # 08 carried (gap 2)
        "at_risk",  # 09 gap 3
        "at_risk",  # 10
        "at_risk",  # 11
        "lapsed",  # 12 gap 6
        "won_back",  # 2025-01 buys again after a lapse (two purchases, one period)
        "won_back",  # 02 carried
        "won_back",  # 03 carried
    ]
    assert a["stage"].to_list() == expected
    assert a["purchases"].to_list()[12] == 2
    b = stages.filter(pl.col("customer_id") == "B")
    assert set(b["stage"].to_list()) == {"prospect"} and b.height == len(expected)


def test_customers_known_only_from_purchases_enter_at_their_first_purchase() -> None:
    registrations = pl.DataFrame({"customer_id": ["A"], "registered_at": _months((2024, 1))})
    purchases = pl.DataFrame(
        {"customer_id": ["Z", "Z"], "occurred_at": _months((2024, 4), (2024, 5))}
    )
    panel = activity_panel(registrations, purchases)
    z = assign_stages(panel).filter(pl.col("customer_id") == "Z")
    assert z["period"].to_list() == [datetime(2024, 4, 1), datetime(2024, 5, 1)]
    assert z["stage"].to_list() == ["new", "developing"]


def test_analyse_lifecycle_from_simulated_events_is_consistent_and_json_ready() -> None:
    rng = np.random.default_rng(5)
    n = 400
    reg_month = rng.integers(1, 7, size=n)
    registrations = pl.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "registered_at": [datetime(2024, int(m), 1) for m in reg_month],
        }
    )
    buyer = rng.integers(0, n, size=3000)
    month = np.minimum(reg_month[buyer] + rng.geometric(0.25, size=3000) - 1, 12)
    purchases = pl.DataFrame(
        {
            "customer_id": [f"C{i}" for i in buyer],
            "occurred_at": [datetime(2024, int(m), 10) for m in month],
        }
    )
    result = analyse_lifecycle(activity_panel(registrations, purchases), forecast_steps=4)
    assert result.periods == 12
    assert result.shares.sum() == pytest.approx(1.0)
    assert result.current.height == n
    observed = result.current.group_by("stage").len()
    for stage, count in observed.iter_rows():
        assert result.shares[STAGES.index(stage)] == pytest.approx(count / n)
    assert np.allclose(result.forecast[1], result.shares @ result.transitions.q)
    assert result.backtest is not None
    out = json.loads(json.dumps(result.to_dict()))
    assert out["stages"] == list(STAGES)
    assert len(out["forecast"]) == 5
    assert len(out["transitions"]["q"]) == len(STAGES)


def test_a_single_period_has_no_transitions_and_is_insufficient_data() -> None:
    registrations = pl.DataFrame({"customer_id": ["A"], "registered_at": _months((2024, 1))})
    purchases = pl.DataFrame({"customer_id": ["A"], "occurred_at": _months((2024, 1))})
    with pytest.raises(InsufficientData, match="no period-to-period transitions"):
        analyse_lifecycle(activity_panel(registrations, purchases))


def test_no_activity_at_all_is_insufficient_data() -> None:
    empty_regs = pl.DataFrame(
        {"customer_id": [], "registered_at": []},
        schema={"customer_id": pl.String, "registered_at": pl.Datetime("us")},
    )
    empty_buys = pl.DataFrame(
        {"customer_id": [], "occurred_at": []},
        schema={"customer_id": pl.String, "occurred_at": pl.Datetime("us")},
    )
    with pytest.raises(InsufficientData, match="no registrations and no purchases"):
        activity_panel(empty_regs, empty_buys)


def test_invalid_stage_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError, match="at_risk_after"):
        StageRules(at_risk_after=6, lapsed_after=6)
