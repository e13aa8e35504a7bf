"""Generators of synthetic data with a KNOWN truth, for tests and for the main simulator.

Every generator is deterministic given ``seed`` and returns polars frames (plus the truth it was
drawn from), so a model can be checked by recovering that truth:

- :func:`simulate_clusters` — behavioural features drawn around known cluster centres.
- :func:`simulate_leads` — leads whose won/lost outcome follows a known logistic model.
- :func:`simulate_survival` — Weibull lifetimes with known log hazard ratios per covariate,
  administratively censored.
- :func:`simulate_markov_chains` — stage paths drawn from a known transition matrix ``Q``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
import polars as pl


def simulate_clusters(
    n: int,
    centres: Mapping[str, Sequence[float]],
    *,
    spread: float | Sequence[float] = 0.1,
    weights: Sequence[float] | None = None,
    seed: int = 0,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Draw ``n`` customers around cluster centres; return (frame, true cluster index per row).

    ``centres`` maps feature name -> one centre value per cluster (all the same length k).
    ``spread`` is the normal noise as a fraction of each feature's range of centres (or absolute
    standard deviations per feature when a sequence is given). Values are clipped at 0, as
    behavioural counts and amounts are. The frame has ``customer_id`` ("C-000001"…) first.
    """
    names = list(centres)
    mu = np.array([list(centres[f]) for f in names], dtype=float).T  # (k, d)
    k = mu.shape[0]
    rng = np.random.default_rng(seed)
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=float)
    truth = rng.choice(k, size=n, p=w / w.sum())
    if isinstance(spread, (int, float)):
        scale = np.ptp(mu, axis=0) * float(spread)
        scale[scale == 0] = float(spread)
    else:
        scale = np.asarray(spread, dtype=float)
    values = np.clip(mu[truth] + rng.normal(size=(n, len(names))) * scale, 0.0, None)
    frame = pl.DataFrame({"customer_id": [f"C-{i:06d}" for i in range(1, n + 1)]}).with_columns(
        [pl.Series(f, values[:, j]) for j, f in enumerate(names)]
    )
    return frame, truth


def simulate_leads(
    n: int,
    *,
    seed: int = 0,
    open_share: float = 0.1,
    start: datetime = datetime(2024, 1, 1),
    days: int = 365,
) -> pl.DataFrame:
    """Leads whose outcome follows a known logistic model.

    True drivers (in order of strength): ``engagement`` (numeric, strong), ``source`` (string:
    "referral" wins far more than "web"/"fair"/"cold_call") and ``company_size`` (numeric,
    moderate). ``noise_a`` and ``noise_b`` are unrelated to the outcome. A share ``open_share``
    of the latest leads has no outcome yet (null). Columns: lead_id, customer_id, created_at,
    outcome, engagement, company_size, source, noise_a, noise_b.
    """
    rng = np.random.default_rng(seed)
    engagement = rng.normal(size=n)
    company_size = rng.normal(size=n)
    sources = np.array(["referral", "web", "fair", "cold_call"])
    source = rng.choice(sources, size=n, p=[0.2, 0.4, 0.2, 0.2])
    source_effect = np.where(source == "referral", 1.5, np.where(source == "cold_call", -0.8, 0.0))
    logit = -0.5 + 2.0 * engagement + 0.8 * company_size + source_effect
    won = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    offsets = np.sort(rng.uniform(0, days * 86400, size=n))
    created = [start + timedelta(seconds=float(s)) for s in offsets]
    n_open = round(n * open_share)
    outcome: list[int | None] = [int(v) for v in won]
    if n_open:
        outcome[n - n_open :] = [None] * n_open
    return pl.DataFrame(
        {
            "lead_id": [f"L-{i:06d}" for i in range(1, n + 1)],
            "customer_id": [f"C-{i % max(n // 2, 1):06d}" for i in range(1, n + 1)],
            "created_at": created,
            "outcome": pl.Series(outcome, dtype=pl.Int64),
            "engagement": engagement,
            "company_size": company_size,
            "source": source.tolist(),
            "noise_a": rng.normal(size=n),
            "noise_b": rng.uniform(size=n),
        }
    )


def simulate_survival(
    n: int,
    log_hazard_ratios: Mapping[str, float],
    *,
    baseline_scale_days: float = 365.0,
    shape: float = 1.0,
    censor_after_days: float | None = 730.0,
    seed: int = 0,
) -> pl.DataFrame:
    """Weibull proportional-hazards lifetimes with known log hazard ratios.

    Covariates are standard normal except names starting with ``is_`` (Bernoulli 0.5). With
    cumulative hazard ``H(t|x) = (t / scale)^shape · exp(x·β)``, times are drawn by inversion:
    ``T = scale · (E · exp(-x·β))^(1/shape)``, ``E ~ Exp(1)``; ``shape = 1`` is exponential with
    rate ``exp(x·β) / scale``. Entry times are uniform over ``censor_after_days``; follow-up ends at
    ``censor_after_days`` (administrative censoring, so censoring is independent of T).
    Columns: customer_id, duration (days), event (bool), one column per covariate.
    """
    rng = np.random.default_rng(seed)
    cov: dict[str, np.ndarray] = {}
    for name in log_hazard_ratios:
        if name.startswith("is_"):
            cov[name] = (rng.random(n) < 0.5).astype(float)
        else:
            cov[name] = rng.normal(size=n)
    lin = np.zeros(n)
    for name, beta in log_hazard_ratios.items():
        lin += beta * cov[name]
    times = baseline_scale_days * (rng.exponential(size=n) * np.exp(-lin)) ** (1.0 / shape)
    if censor_after_days is None:
        duration, event = times, np.ones(n, dtype=bool)
    else:
        follow_up = rng.uniform(0.05, 1.0, size=n) * censor_after_days
        event = times <= follow_up
        duration = np.minimum(times, follow_up)
    return pl.DataFrame(
        {
            "customer_id": [f"C-{i:06d}" for i in range(1, n + 1)],
            "duration": duration,
            "event": event,
            **cov,
        }
    )


def simulate_markov_chains(
    q: np.ndarray,
    *,
    n_chains: int,
    n_steps: int,
    initial: Sequence[float] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Paths of a Markov chain with transition matrix ``q``: an int array (n_chains, n_steps + 1).

    Vectorised over chains (one loop per step): each step draws the next state by inverting the
    cumulative row of the current state.
    """
    q = np.asarray(q, dtype=float)
    m = q.shape[0]
    rng = np.random.default_rng(seed)
    p0 = np.full(m, 1.0 / m) if initial is None else np.asarray(initial, dtype=float)
    paths = np.empty((n_chains, n_steps + 1), dtype=np.int64)
    paths[:, 0] = rng.choice(m, size=n_chains, p=p0 / p0.sum())
    cum = np.cumsum(q, axis=1)
    cum[:, -1] = 1.0
    for s in range(n_steps):
        u = rng.random(n_chains)
        rows = cum[paths[:, s]]
        paths[:, s + 1] = (u[:, None] > rows).sum(axis=1)
    return paths
