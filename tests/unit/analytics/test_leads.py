"""Lead scoring: a random forest on simulated leads with known drivers, on a time-based holdout."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.leads import LeadModelResult, score_leads
from radar.analytics.models.synthetic import simulate_leads

TRUE_DRIVERS = {"engagement", "source", "company_size"}


@pytest.fixture(scope="module")
def leads() -> pl.DataFrame:
    return simulate_leads(3000, seed=1)


@pytest.fixture(scope="module")
def result(leads: pl.DataFrame) -> LeadModelResult:
    return score_leads(leads, seed=0)


def test_lead_model_beats_chance_on_simulated_leads(result: LeadModelResult) -> None:
    assert result.auc is not None and result.auc > 0.7
    assert result.top_decile_lift is not None and result.top_decile_lift > 1.5
    base_rate = result.test_win_rate
    assert result.brier is not None and result.brier < base_rate * (
        1 - base_rate
    )  # better than predicting the base rate


def test_importances_rank_the_true_drivers_first(result: LeadModelResult) -> None:
    ranked = [name for name, _ in result.importances]
    assert set(ranked[:3]) == TRUE_DRIVERS
    assert ranked[0] == "engagement"
    values = [v for _, v in result.importances]
    assert values == sorted(values, reverse=True)
    assert {name for name, _ in result.impurity_importances} == set(ranked)


def test_holdout_is_split_by_creation_time(leads: pl.DataFrame, result: LeadModelResult) -> None:
    labelled = leads.filter(pl.col("outcome").is_not_null())
    assert result.n_train + result.n_test == labelled.height
    assert result.n_test == pytest.approx(0.2 * labelled.height, abs=2)
    before = labelled.filter(pl.col("created_at") < result.cut).height
    assert before == result.n_train


def test_an_explicit_cut_date_is_respected(leads: pl.DataFrame) -> None:
    cut = datetime(2024, 7, 1)
    r = score_leads(leads, cut=cut, seed=0)
    labelled = leads.filter(pl.col("outcome").is_not_null())
    assert r.n_train == labelled.filter(pl.col("created_at") < cut).height
    assert r.cut == cut


def test_reliability_table_covers_the_test_leads_by_decile(result: LeadModelResult) -> None:
    bins = result.reliability
    assert len(bins) == 10
    assert sum(b.n for b in bins) == result.n_test
    predicted = [b.mean_predicted for b in bins]
    assert predicted == sorted(predicted)
    observed = [b.observed_rate for b in bins]
    assert observed[-1] > observed[0] + 0.5


def test_open_leads_get_a_score_from_0_to_100_that_follows_the_drivers(
    leads: pl.DataFrame,
    result: LeadModelResult,
) -> None:
    scores = result.scores
    open_ids = leads.filter(pl.col("outcome").is_null())["lead_id"]
    assert sorted(scores["lead_id"].to_list()) == sorted(open_ids.to_list())
    assert scores["score"].is_between(0, 100).all()
    joined = scores.join(leads, on="lead_id")
    corr = np.corrcoef(joined["score"].to_numpy(), joined["engagement"].to_numpy())[0, 1]
    assert corr > 0.5
    referral = joined.filter(pl.col("source") == "referral")["score"].mean()
    cold = joined.filter(pl.col("source") == "cold_call")["score"].mean()
    assert referral > cold  # type: ignore[operator]


def test_scoring_is_deterministic_given_a_seed(
    leads: pl.DataFrame, result: LeadModelResult
) -> None:
    again = score_leads(leads, seed=0)
    assert again.to_dict() == result.to_dict()
    assert again.scores.equals(result.scores)


def test_result_is_json_ready(result: LeadModelResult) -> None:
    out = json.loads(json.dumps(result.to_dict()))
    assert out["auc"] == result.auc
    assert len(out["reliability"]) == 10


def test_no_labelled_leads_is_insufficient_data(leads: pl.DataFrame) -> None:
    unlabelled = leads.with_columns(pl.lit(None, dtype=pl.Int64).alias("outcome"))
    with pytest.raises(InsufficientData, match="no leads with a known outcome"):
        score_leads(unlabelled)


def test_leads_of_one_outcome_only_are_insufficient_data(leads: pl.DataFrame) -> None:
    all_won = leads.with_columns(pl.when(pl.col("outcome").is_not_null()).then(1).alias("outcome"))
    with pytest.raises(InsufficientData, match="both outcomes"):
        score_leads(all_won)


def test_too_few_labelled_leads_are_insufficient_data(leads: pl.DataFrame) -> None:
    with pytest.raises(InsufficientData, match="at least 20"):
        score_leads(leads.head(15))
    with pytest.raises(InsufficientData, match="at least 20"):
        score_leads(leads.head(1))


def test_a_cut_before_every_lead_is_insufficient_data(leads: pl.DataFrame) -> None:
    with pytest.raises(InsufficientData, match="before the cut"):
        score_leads(leads, cut=datetime(2020, 1, 1))
