"""Plots of analysis results as PNG files (matplotlib, Agg canvas; no display, no global state).

Each function takes plain result data (frames, arrays, dicts), writes one PNG to ``path`` and
returns the path, so a dashboard can reuse them. The runner writes them to ``<data>/plots/``
(``<data>/plots/as_of_<YYYYMMDDTHHMMSS>/`` for an explicit ``--as-of`` run) under stable names:

========================  ===================================================================
file                      content
========================  ===================================================================
churn_survival.png        Kaplan–Meier S(t) overall and per segment, with the overall 95 % CI
lifecycle_transitions.png the Markov transition matrix Q as a heatmap (from-stage rows)
segments_profiles.png     per k-means segment, each feature's mean in standard deviations
rfm_grid.png              customers per (R score, FM score) cell, named group in each cell
clv_distribution.png      histogram of discounted CLV per customer (log-scaled counts)
========================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def survival_curves(curves: pl.DataFrame, path: Path, *, title: str = "Survival") -> Path:
    """Step curves of ``curves`` (``group, t, survival, ci_lower, ci_upper``)."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    for (group,), part in sorted(
        curves.partition_by("group", as_dict=True).items(), key=lambda kv: kv[0][0] != "all"
    ):
        t = part["t"].to_numpy()
        s = part["survival"].to_numpy()
        overall = group == "all"
        ax.step(
            t,
            s,
            where="post",
            label=str(group),
            lw=2.2 if overall else 1.2,
            color="black" if overall else None,
        )
        if overall:
            ax.fill_between(
                t,
                part["ci_lower"].to_numpy(),
                part["ci_upper"].to_numpy(),
                step="post",
                alpha=0.15,
                color="black",
            )
    ax.set_xlabel("days since first seen")
    ax.set_ylabel("S(t): share not churned")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def transition_heatmap(
    q: npt.NDArray[np.float64], stages: Sequence[str], path: Path, *, title: str = ""
) -> Path:
    """Heatmap of a row-stochastic matrix with the probabilities written in the cells."""
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot()
    image = ax.imshow(q, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(stages)), labels=list(stages), rotation=40, ha="right")
    ax.set_yticks(range(len(stages)), labels=list(stages))
    ax.set_xlabel("to stage (next period)")
    ax.set_ylabel("from stage")
    for i in range(q.shape[0]):
        for j in range(q.shape[1]):
            if q[i, j] >= 0.005:
                ax.text(
                    j,
                    i,
                    f"{q[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if q[i, j] > 0.6 else "black",
                )
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title or "Lifecycle transition matrix Q")
    return _save(fig, path)


def segment_profiles(
    deviations: Mapping[str, Mapping[str, float]],
    sizes: Mapping[str, int],
    path: Path,
) -> Path:
    """Heatmap: rows segments (label and size), columns features, cells = mean in sd units."""
    labels = list(deviations)
    features = sorted({f for d in deviations.values() for f in d})
    z = np.array([[deviations[s].get(f, 0.0) for f in features] for s in labels], dtype=float)
    fig = Figure(figsize=(1.6 + 1.4 * len(features), 1.2 + 0.55 * len(labels)))
    ax = fig.add_subplot()
    lim = max(1.0, float(np.abs(z).max()) if z.size else 1.0)
    image = ax.imshow(z, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(features)), labels=features, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels=[f"{s} (n={sizes.get(s, 0):,})" for s in labels])
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            ax.text(j, i, f"{z[i, j]:+.1f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, label="sd from the overall mean")
    ax.set_title("Segment profiles")
    return _save(fig, path)


def rfm_grid(scores: pl.DataFrame, path: Path) -> Path:
    """Customers per (``r_score``, ``fm_score``) cell with the named ``segment`` of the cell."""
    cells = scores.group_by("r_score", "fm_score").agg(
        pl.len().alias("n"), pl.col("segment").first()
    )
    counts = np.zeros((5, 5))
    names: dict[tuple[int, int], str] = {}
    for r, fm, n, seg in cells.iter_rows():  # at most 25 cells
        counts[5 - int(r), int(fm) - 1] = n
        names[(5 - int(r), int(fm) - 1)] = str(seg)
    fig = Figure(figsize=(7.5, 5.5))
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Greens")
    ax.set_xticks(range(5), labels=[str(i) for i in range(1, 6)])
    ax.set_yticks(range(5), labels=[str(i) for i in range(5, 0, -1)])
    ax.set_xlabel("FM score (frequency and monetary)")
    ax.set_ylabel("R score (recency)")
    top = counts.max() or 1.0
    for (i, j), seg in names.items():
        ax.text(
            j,
            i,
            f"{seg}\n{int(counts[i, j]):,}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if counts[i, j] > 0.6 * top else "black",
        )
    fig.colorbar(image, ax=ax, fraction=0.046, label="customers")
    ax.set_title("RFM grid")
    return _save(fig, path)


def clv_distribution(clv: npt.NDArray[np.float64], path: Path, *, currency: str = "") -> Path:
    """Histogram of CLV per customer (counts on a log scale), with the mean and median marked."""
    values = np.asarray(clv, dtype=float)
    values = values[np.isfinite(values)]
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    if values.size:
        ax.hist(values, bins=60, color="tab:blue", alpha=0.8)
        ax.axvline(float(values.mean()), color="black", lw=1.5, label=f"mean {values.mean():,.0f}")
        ax.axvline(
            float(np.median(values)),
            color="tab:orange",
            lw=1.5,
            label=f"median {np.median(values):,.0f}",
        )
        ax.set_yscale("log")
        ax.legend()
    ax.set_xlabel(f"discounted CLV {currency}".strip())
    ax.set_ylabel("customers")
    ax.set_title("Customer lifetime value")
    return _save(fig, path)
