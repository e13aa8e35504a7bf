"""Customer segments: k-means on standardised behavioural features, with stable labels.

Contract
--------
:func:`segment_customers` takes a polars frame with an id column and numeric feature columns
(one row per customer) and returns a :class:`Segmentation`:

- Features are standardised (z-scores with the overall mean and standard deviation; constant
  features are dropped with a note). Missing values are imputed with the feature's mean.
- ``k`` is given, or chosen as the k in ``k_range`` with the highest silhouette score (ties: the
  smaller k). To keep this fast at 100k customers, every candidate k is fitted (k-means, ``n_init``
  restarts, seeded) on a seeded random sample of at most ``selection_sample`` rows and scored by the
  silhouette on at most ``silhouette_sample`` of those; the chosen k is then fitted on all rows.
- Each segment is described in ORIGINAL units: size, share, the mean of every feature over its
  members (``centroid``), and what sets it apart — the features whose segment mean deviates most
  from the overall mean in standard deviations (``|z| ≥ 0.25``, at most three), as text such as
  ``"revenue 3.2× average"`` (for features with a positive overall mean) or
  ``"tenure_days -1.1 sd"`` (otherwise).

Labels
------
Without a previous run, labels are ``"S1"…"Sk"`` by decreasing segment size (ties by centroid),
so the same data always gives the same labels whatever the seed. With ``previous`` (label ->
centroid in original units, e.g. :meth:`Segmentation.centroids` of the last run), the new clusters
are matched to the old ones by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) on the Euclidean distance between centroids
standardised with THIS run's scaler; a matched cluster takes the old label, so relabelling never
moves customers. New clusters beyond the old ones get fresh labels ``S<n>`` with n above every
number used before; old labels left unmatched are reported in ``retired_labels``. Previous labels
may be any strings (derived names are kept as given). Matching has no distance limit: with as many
or fewer clusters than before, every new cluster inherits the nearest available old label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from radar.analytics.models.errors import InsufficientData

_NUMERIC = (pl.Float32, pl.Float64, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16,
            pl.UInt32, pl.UInt64, pl.Boolean)  # fmt: skip
_MIN_Z = 0.25
_MAX_TRAITS = 3


@dataclass(frozen=True)
class Segment:
    """One segment described in original units."""

    label: str
    size: int
    share: float
    centroid: Mapping[str, float]
    deviation_sd: Mapping[str, float]
    traits: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "size": self.size,
            "share": self.share,
            "centroid": dict(self.centroid),
            "deviation_sd": dict(self.deviation_sd),
            "traits": list(self.traits),
        }


@dataclass(frozen=True, eq=False)
class Segmentation:
    """Result of :func:`segment_customers`.

    ``assignments`` has the id column and ``segment`` (label); ``silhouette_by_k`` holds the
    sampled silhouette of every k tried (only the chosen k when k was given).
    """

    k: int
    features: tuple[str, ...]
    segments: tuple[Segment, ...]
    assignments: pl.DataFrame
    silhouette: float | None
    silhouette_by_k: Mapping[int, float]
    seed: int
    matched_to_previous: bool
    retired_labels: tuple[str, ...]
    notes: tuple[str, ...]

    def centroids(self) -> dict[str, dict[str, float]]:
        """Label -> centroid in original units: pass as ``previous`` to the next run."""
        return {s.label: dict(s.centroid) for s in self.segments}

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "features": list(self.features),
            "segments": [s.to_dict() for s in self.segments],
            "silhouette": self.silhouette,
            "silhouette_by_k": {str(k): v for k, v in self.silhouette_by_k.items()},
            "seed": self.seed,
            "matched_to_previous": self.matched_to_previous,
            "retired_labels": list(self.retired_labels),
            "notes": list(self.notes),
        }


def segment_customers(
    frame: pl.DataFrame,
    features: Sequence[str] | None = None,
    *,
    id_column: str = "customer_id",
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    previous: Mapping[str, Mapping[str, float]] | None = None,
    seed: int = 0,
    n_init: int = 3,
    silhouette_sample: int = 2_000,
    selection_sample: int = 20_000,
    threads: int | None = 1,
) -> Segmentation:
    """Cluster customers; see the module docstring for the contract.

    ``features`` defaults to every numeric column except ``id_column``. Raises
    :class:`InsufficientData` when there are fewer customers than needed for two clusters or no
    usable (non-constant) feature, and ``ValueError`` when ``previous`` centroids lack a feature.
    ``threads`` caps the native (OpenMP/BLAS) threads; one is the default because k-means' OpenMP
    threads spin and slow down badly when the cores are shared (measured: 1000 rows 0.2 s on one
    thread vs 5 s on two under load); None leaves the library default.
    """
    with threadpool_limits(limits=threads):
        return _segment(
            frame,
            features,
            id_column,
            k,
            k_range,
            previous,
            seed,
            n_init,
            silhouette_sample,
            selection_sample,
        )


def _segment(
    frame: pl.DataFrame,
    features: Sequence[str] | None,
    id_column: str,
    k: int | None,
    k_range: tuple[int, int],
    previous: Mapping[str, Mapping[str, float]] | None,
    seed: int,
    n_init: int,
    silhouette_sample: int,
    selection_sample: int,
) -> Segmentation:
    if id_column not in frame.columns:
        raise InsufficientData(f"segments: the frame has no id column {id_column!r}")
    if features is None:
        features = [c for c, t in frame.schema.items() if c != id_column and t in _NUMERIC]
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise InsufficientData(f"segments: feature columns missing from the frame: {missing}")
    notes: list[str] = []
    x_raw = frame.select(pl.col(f).cast(pl.Float64) for f in features).to_numpy()
    x_raw = np.asarray(x_raw, dtype=float).reshape(frame.height, len(features))
    mean = np.nanmean(x_raw, axis=0) if frame.height else np.zeros(len(features))
    nan_rows, nan_cols = np.where(np.isnan(x_raw))
    if nan_rows.size:
        x_raw[nan_rows, nan_cols] = mean[nan_cols]
        notes.append(f"{nan_rows.size} missing feature values imputed with the feature mean")
    std = x_raw.std(axis=0) if frame.height else np.zeros(len(features))
    keep = [i for i, s in enumerate(std) if s > 1e-12 and np.isfinite(s)]
    dropped = [features[i] for i in range(len(features)) if i not in keep]
    if dropped:
        notes.append(f"constant features left out: {dropped}")
    if not keep:
        raise InsufficientData(
            f"segments: no feature varies across customers (features: {list(features)})"
        )
    feats = tuple(features[i] for i in keep)
    x_raw, mean, std = x_raw[:, keep], mean[keep], std[keep]
    n = x_raw.shape[0]
    k_lo, k_hi = (k, k) if k is not None else k_range
    if k_lo < 1 or k_hi < k_lo:
        raise ValueError(f"segments: invalid k / k_range ({k_lo}..{k_hi})")
    needed = k_lo if k is not None else max(k_lo, 2) + 1
    if n < needed:
        raise InsufficientData(
            f"segments: {n} customers with features; at least {needed} needed for {k_lo} segments"
        )
    z = (x_raw - mean) / std
    k_hi = min(k_hi, n - 1) if k is None else k_hi
    rng = np.random.default_rng(seed)
    pick = rng.permutation(n)[: min(n, selection_sample)]
    z_sel = z[pick]
    sil_rows = np.arange(min(z_sel.shape[0], silhouette_sample))
    scores: dict[int, float] = {}
    if k is None:
        for kk in range(k_lo, k_hi + 1):
            km = KMeans(n_clusters=kk, n_init=n_init, random_state=seed).fit(z_sel)
            scores[kk] = _silhouette(z_sel[sil_rows], np.asarray(km.labels_)[sil_rows])
        k_final = max(scores, key=lambda kk: (scores[kk], -kk))
    else:
        k_final = k
    km = KMeans(n_clusters=k_final, n_init=n_init, random_state=seed).fit(z)
    labels = np.asarray(km.labels_)
    centres_z = np.asarray(km.cluster_centers_)
    score = _silhouette(z[pick][sil_rows], labels[pick][sil_rows])
    if k is not None and np.isfinite(score):
        scores[k_final] = score
    names, retired = _name_clusters(labels, centres_z, feats, mean, std, previous)
    segments = _describe(x_raw, labels, names, feats, mean, std)
    label_arr = np.array(names, dtype=object)[labels]
    assignments = frame.select(pl.col(id_column)).with_columns(
        pl.Series("segment", label_arr.tolist(), dtype=pl.String)
    )
    return Segmentation(
        k=k_final,
        features=feats,
        segments=segments,
        assignments=assignments,
        silhouette=score if np.isfinite(score) else None,
        silhouette_by_k=scores,
        seed=seed,
        matched_to_previous=previous is not None and len(previous) > 0,
        retired_labels=retired,
        notes=tuple(notes),
    )


def _silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    distinct = np.unique(labels).size
    if 1 < distinct < labels.size:
        return float(silhouette_score(z, labels))
    return float("-inf")


def _name_clusters(
    labels: np.ndarray,
    centres_z: np.ndarray,
    feats: tuple[str, ...],
    mean: np.ndarray,
    std: np.ndarray,
    previous: Mapping[str, Mapping[str, float]] | None,
) -> tuple[list[str], tuple[str, ...]]:
    """Label per cluster index, and the previous labels left unmatched."""
    k = centres_z.shape[0]
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda i: (-sizes[i], tuple(np.round(centres_z[i], 9))))
    if not previous:
        names = [""] * k
        for rank, i in enumerate(order, start=1):
            names[i] = f"S{rank}"
        return names, ()
    old_labels = list(previous)
    for lab in old_labels:
        lacking = [f for f in feats if f not in previous[lab]]
        if lacking:
            raise ValueError(f"segments: previous centroid {lab!r} lacks features {lacking}")
    old_z = np.array([[previous[lab][f] for f in feats] for lab in old_labels], dtype=float)
    old_z = (old_z - mean) / std
    cost = np.linalg.norm(centres_z[:, None, :] - old_z[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    names = [""] * k
    for r, c in zip(rows, cols, strict=True):
        names[int(r)] = old_labels[int(c)]
    used = [int(m.group(1)) for lab in old_labels if (m := re.fullmatch(r"S(\d+)", lab))]
    nxt = max(used, default=0) + 1
    for i in order:  # unmatched new clusters, biggest first
        if not names[i]:
            while f"S{nxt}" in old_labels:
                nxt += 1
            names[i] = f"S{nxt}"
            nxt += 1
    retired = tuple(old_labels[c] for c in range(len(old_labels)) if c not in set(cols.tolist()))
    return names, retired


def _describe(
    x_raw: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    feats: tuple[str, ...],
    mean: np.ndarray,
    std: np.ndarray,
) -> tuple[Segment, ...]:
    """Segments in original units, ordered by label (natural order: S2 before S10)."""
    n = x_raw.shape[0]
    k = len(names)
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros((k, x_raw.shape[1]))
    np.add.at(sums, labels, x_raw)
    out: list[Segment] = []
    for i in range(k):
        if counts[i] == 0:
            continue
        centre = sums[i] / counts[i]
        dev = (centre - mean) / std
        top = [j for j in np.argsort(-np.abs(dev), kind="stable") if abs(dev[j]) >= _MIN_Z]
        traits = tuple(_trait(feats[j], centre[j], mean[j], dev[j]) for j in top[:_MAX_TRAITS])
        out.append(
            Segment(
                label=names[i],
                size=int(counts[i]),
                share=float(counts[i] / n),
                centroid={f: float(centre[j]) for j, f in enumerate(feats)},
                deviation_sd={f: float(dev[j]) for j, f in enumerate(feats)},
                traits=traits,
            )
        )
    return tuple(sorted(out, key=lambda s: _natural_key(s.label)))


def _trait(feature: str, value: float, overall: float, dev_sd: float) -> str:
    if overall > 0 and value >= 0:
        return f"{feature} {value / overall:.1f}× average"
    return f"{feature} {dev_sd:+.1f} sd"


def _natural_key(label: str) -> tuple[str, int, str]:
    m = re.fullmatch(r"(\D*)(\d+)", label)
    return (m.group(1), int(m.group(2)), "") if m else (label, -1, label)
