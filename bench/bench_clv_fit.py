"""Time the BG/NBD + Gamma-Gamma fits on 25k simulated customers (target: < 0.5 s total).

Run: ``python bench/bench_clv_fit.py [n_customers] [repeats]``. Prints figures only.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from radar.analytics.models.bgnbd import fit_bgnbd, simulate_bgnbd
from radar.analytics.models.gamma_gamma import (
    customer_lifetime_value,
    fit_gamma_gamma,
    simulate_gamma_gamma,
)

TRUTH_BGNBD = (0.243, 4.414, 0.793, 2.426)  # r, alpha, a, b (weeks)
TRUTH_GG = (6.25, 3.74, 15.44)  # p, q, v


def main(n: int = 25_000, repeats: int = 5) -> None:
    """Simulate ``n`` customers, fit both models ``repeats`` times, print timings and fits."""
    rng = np.random.default_rng(2026)
    sim = simulate_bgnbd(n, *TRUTH_BGNBD, rng.uniform(27.0, 78.0, n), rng, holdout=26.0)
    # purchase-day data: times are whole days expressed in weeks
    t_x, T = np.round(sim.t_x * 7.0) / 7.0, np.round(sim.T * 7.0) / 7.0
    m_x = simulate_gamma_gamma(sim.x, *TRUTH_GG, rng)
    print(f"customers: {n}, repeat buyers: {int((sim.x > 0).sum())}, repeats: {repeats}")

    bg_times, gg_times = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        bg = fit_bgnbd(sim.x, t_x, T)
        t1 = time.perf_counter()
        gg = fit_gamma_gamma(m_x, sim.x)
        t2 = time.perf_counter()
        bg_times.append(t1 - t0)
        gg_times.append(t2 - t1)
    total = [a + b for a, b in zip(bg_times, gg_times, strict=True)]
    for label, times in (("bgnbd fit:      ", bg_times), ("gamma-gamma fit:", gg_times)):
        print(f"{label}  median {np.median(times) * 1e3:7.1f} ms  (min {min(times) * 1e3:.1f})")
    print(f"total:            median {np.median(total) * 1e3:7.1f} ms  (target < 500 ms)")
    print(f"bgnbd:  {bg.to_dict()['parameters']}  truth {TRUTH_BGNBD}  iterations {bg.iterations}")
    print(f"gamma:  {gg.to_dict()['parameters']}  truth {TRUTH_GG}  iterations {gg.iterations}")

    t0 = time.perf_counter()
    clv = customer_lifetime_value(bg, gg, sim.x, t_x, T, m_x, horizon=52.0)
    print(
        f"clv 52 weeks, weekly steps: {(time.perf_counter() - t0) * 1e3:.1f} ms, "
        f"total {clv.clv.sum():,.0f}"
    )
    fc = bg.conditional_expected_purchases(26.0, sim.x, t_x, T).sum()
    print(f"holdout 26 weeks: forecast {fc:,.0f} vs simulated {sim.x_holdout.sum():,.0f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
