"""Segments: k-means on standardised features recovers simulated clusters, with stable labels."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.segments import segment_customers
from radar.analytics.models.synthetic import simulate_clusters

CENTRES = {
    "revenue": [100.0, 1500.0, 400.0, 60.0],
    "orders": [1.0, 12.0, 5.0, 25.0],
    "tenure_days": [30.0, 900.0, 365.0, 200.0],
}


def _labels_by_truth(labels: np.ndarray, truth: np.ndarray) -> dict[int, str]:
    """The (majority) label given to each true cluster."""
    out = {}
    for t in np.unique(truth):
        values, counts = np.unique(labels[truth == t], return_counts=True)
        out[int(t)] = str(values[np.argmax(counts)])
    return out


def test_kmeans_recovers_well_separated_simulated_clusters() -> None:
    frame, truth = simulate_clusters(3000, CENTRES, spread=0.05, seed=1)
    result = segment_customers(frame, seed=0)
    assert result.k == 4
    labels = result.assignments["segment"].to_numpy()
    assert adjusted_rand_score(truth, labels) > 0.8
    assert max(result.silhouette_by_k, key=lambda k: result.silhouette_by_k[k]) == 4


def test_segments_are_described_in_original_units() -> None:
    frame, truth = simulate_clusters(3000, CENTRES, spread=0.05, seed=2)
    result = segment_customers(frame, seed=0)
    labels = result.assignments["segment"].to_numpy()
    by_truth = _labels_by_truth(labels, truth)
    segments = {s.label: s for s in result.segments}
    assert sum(s.size for s in result.segments) == frame.height
    assert sum(s.share for s in result.segments) == pytest.approx(1.0)
    for t, label in by_truth.items():
        members = frame.filter(pl.Series(truth == t))
        for feature in CENTRES:
            expected = members[feature].mean()
            assert segments[label].centroid[feature] == pytest.approx(expected, rel=0.02)
    big_spenders = segments[by_truth[1]]
    assert big_spenders.traits[0].startswith(("revenue", "tenure_days"))
    assert "× average" in big_spenders.traits[0]
    ratio = big_spenders.centroid["revenue"] / frame["revenue"].mean()  # type: ignore[operator]
    assert f"revenue {ratio:.1f}× average" in big_spenders.traits


def test_labels_stay_with_customers_when_rerun_with_another_seed_and_previous_centroids() -> None:
    frame, _ = simulate_clusters(2000, CENTRES, spread=0.05, weights=[4, 3, 2, 1], seed=3)
    first = segment_customers(frame, k=4, seed=0)
    # The smallest cluster grows to the biggest: ordering labels by size would now differ.
    extra, _ = simulate_clusters(
        2000, {f: [c[3]] for f, c in CENTRES.items()}, spread=[5.0, 1.0, 10.0], seed=4
    )
    extra = extra.with_columns(pl.format("X-{}", pl.col("customer_id")).alias("customer_id"))
    grown = pl.concat([frame, extra])
    fresh = segment_customers(grown, k=4, seed=11)
    matched = segment_customers(grown, k=4, seed=11, previous=first.centroids())
    before = first.assignments
    after = matched.assignments.join(before, on="customer_id", suffix="_before")
    assert after.height == frame.height
    assert (after["segment"] == after["segment_before"]).all()
    unmatched = fresh.assignments.join(before, on="customer_id", suffix="_before")
    assert not (unmatched["segment"] == unmatched["segment_before"]).all()
    assert matched.matched_to_previous and not first.matched_to_previous


def test_new_clusters_beyond_the_previous_ones_get_fresh_labels() -> None:
    three = {f: c[:3] for f, c in CENTRES.items()}
    frame, _ = simulate_clusters(1500, three, spread=0.05, seed=5)
    first = segment_customers(frame, k=3, seed=0)
    assert {s.label for s in first.segments} == {"S1", "S2", "S3"}
    newcomers, _ = simulate_clusters(
        500, {f: [c[3]] for f, c in CENTRES.items()}, spread=[5.0, 1.0, 10.0], seed=6
    )
    newcomers = newcomers.with_columns(pl.format("N-{}", pl.col("customer_id")))
    second = segment_customers(
        pl.concat([frame, newcomers]), k=4, seed=1, previous=first.centroids()
    )
    assert {s.label for s in second.segments} == {"S1", "S2", "S3", "S4"}
    joined = second.assignments.join(first.assignments, on="customer_id", suffix="_before")
    assert (joined["segment"] == joined["segment_before"]).all()
    new_labels = second.assignments.filter(pl.col("customer_id").str.starts_with("N-"))["segment"]
    assert set(new_labels.to_list()) == {"S4"}


def test_fewer_clusters_than_before_retire_the_unmatched_labels() -> None:
    frame, _ = simulate_clusters(1200, CENTRES, spread=0.05, seed=7)
    first = segment_customers(frame, k=4, seed=0)
    three_only = frame.join(
        first.assignments.filter(pl.col("segment") != "S4"), on="customer_id", how="semi"
    )
    second = segment_customers(three_only, k=3, seed=2, previous=first.centroids())
    assert second.retired_labels == ("S4",)
    joined = second.assignments.join(first.assignments, on="customer_id", suffix="_before")
    assert (joined["segment"] == joined["segment_before"]).all()


def test_segmentation_is_deterministic_given_a_seed() -> None:
    frame, _ = simulate_clusters(1000, CENTRES, spread=0.2, seed=8)
    a = segment_customers(frame, seed=3)
    b = segment_customers(frame, seed=3)
    assert a.to_dict() == b.to_dict()
    assert a.assignments.equals(b.assignments)


def test_previous_centroids_must_carry_every_feature() -> None:
    frame, _ = simulate_clusters(300, CENTRES, spread=0.05, seed=9)
    with pytest.raises(ValueError, match="orders"):
        segment_customers(frame, k=4, previous={"S1": {"revenue": 1.0, "tenure_days": 2.0}})


def test_a_single_customer_is_insufficient_data() -> None:
    frame, _ = simulate_clusters(1, CENTRES, seed=10)
    with pytest.raises(InsufficientData, match="customers"):
        segment_customers(frame)


def test_constant_features_are_insufficient_data() -> None:
    frame = pl.DataFrame({"customer_id": ["a", "b", "c", "d"], "revenue": [5.0] * 4})
    with pytest.raises(InsufficientData, match="no feature varies"):
        segment_customers(frame)


def test_result_is_json_ready() -> None:
    frame, _ = simulate_clusters(500, CENTRES, spread=0.05, seed=11)
    out = json.loads(json.dumps(segment_customers(frame, seed=0).to_dict()))
    assert out["k"] == len(out["segments"])
    assert set(out["segments"][0]["centroid"]) == set(CENTRES)
