"""Vectorised sampling helpers shared by the generators."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from radar.simulate.batch import BoolArray, FloatArray, IntArray


def expand(counts: npt.NDArray[np.integer]) -> tuple[IntArray, IntArray]:
    """For per-owner ``counts``: the owner of each item and the item's rank within its owner."""
    c = counts.astype(np.int64)
    owner = np.repeat(np.arange(len(c), dtype=np.int64), c)
    starts = np.cumsum(c) - c
    rank = np.arange(int(c.sum()), dtype=np.int64) - np.repeat(starts, c)
    return owner, rank


def choice_rows(rng: np.random.Generator, probs: FloatArray) -> IntArray:
    """One category per row of ``probs`` (rows need not be normalised)."""
    p = np.asarray(probs, dtype=np.float64)
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), p.shape[1] - 1).astype(np.int64)


def choice(rng: np.random.Generator, n: int, probs: list[float] | tuple[float, ...]) -> IntArray:
    """``n`` draws of a category with the given (normalised here) probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)


def poisson_times(
    rng: np.random.Generator, lo: FloatArray, hi: FloatArray, rate: FloatArray
) -> tuple[IntArray, FloatArray]:
    """A Poisson process with per-owner ``rate`` (per day) on [lo, hi): owners and times."""
    length = np.maximum(hi - lo, 0.0)
    counts = rng.poisson(rate * length)
    owner, _ = expand(counts)
    t = lo[owner] + rng.random(len(owner)) * length[owner]
    return owner, t


def bernoulli(rng: np.random.Generator, p: FloatArray | float, n: int) -> BoolArray:
    """``n`` independent coin flips with success probability ``p`` (scalar or per item)."""
    return rng.random(n) < p
