"""The simulated customers: registration time, profile attributes and latent parameters.

See :mod:`radar.simulate.params` for the models. Times are model days since ``start``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from radar.simulate import fake
from radar.simulate.batch import BoolArray, FloatArray, IntArray
from radar.simulate.params import SEGMENTS, SimulationParams
from radar.simulate.sampling import choice


@dataclass
class Population:
    """Per-customer arrays (index = customer number). ``dropout_t``/``cancel_t`` are filled by
    the purchase and contract generators (``inf`` = not within the simulated period)."""

    n: int
    horizon: float  # model days from start to end
    reg_t: FloatArray
    segment: IntArray  # index into SEGMENTS
    business: BoolArray
    contractual: BoolArray
    plan: IntArray  # index into PLANS (meaningful for contractual customers)
    complaint_prone: BoolArray
    country: IntArray
    city: IntArray
    lam: FloatArray  # purchases per week
    p: FloatArray  # dropout probability after each repeat purchase
    nu: FloatArray  # Gamma-Gamma spend rate
    dropout_t: FloatArray
    cancel_t: FloatArray

    @property
    def inactive_t(self) -> FloatArray:
        """When the customer became inactive: dropout, or cancellation if earlier."""
        return np.where(self.contractual, np.minimum(self.dropout_t, self.cancel_t), self.dropout_t)

    def segment_is(self, name: str) -> BoolArray:
        return self.segment == SEGMENTS.index(name)


def draw_population(
    rng: np.random.Generator, n: int, horizon: float, params: SimulationParams
) -> Population:
    """Draw ``n`` customers over a period of ``horizon`` days."""
    bg, gg = params.bgnbd, params.spend
    reg_t = np.sort(rng.random(n)) * horizon * params.registration_span
    business = rng.random(n) < params.business_share
    p_contract = np.where(
        business, params.contractual_share["business"], params.contractual_share["consumer"]
    )
    contractual = rng.random(n) < p_contract
    plan = choice(rng, n, params.plan_shares)
    lam = rng.gamma(bg.r, 1.0 / bg.alpha, n)
    p = rng.beta(bg.a, bg.b, n)
    nu = rng.gamma(gg.q, 1.0 / gg.v, n)
    # segments from the latents, thresholds at population quantiles of the model distributions
    nu_cut = stats.gamma.ppf(params.premium_share, gg.q, scale=1.0 / gg.v)
    lam_med = stats.gamma.ppf(0.5, bg.r, scale=1.0 / bg.alpha)
    lam_low = stats.gamma.ppf(params.occasional_quantile, bg.r, scale=1.0 / bg.alpha)
    p_med = stats.beta.ppf(0.5, bg.a, bg.b)
    segment = np.full(n, SEGMENTS.index("bargain"), dtype=np.int64)
    segment[lam < lam_low] = SEGMENTS.index("occasional")
    segment[(lam >= lam_med) & (p <= p_med)] = SEGMENTS.index("loyal")
    segment[nu <= nu_cut] = SEGMENTS.index("premium")
    complaint_prone = rng.random(n) < params.complaint_prone_share
    country = fake.draw_countries(rng, n)
    city = fake.draw_cities(rng, country)
    inf = np.full(n, np.inf)
    return Population(
        n=n,
        horizon=horizon,
        reg_t=reg_t,
        segment=segment,
        business=business,
        contractual=contractual,
        plan=plan,
        complaint_prone=complaint_prone,
        country=country,
        city=city,
        lam=lam,
        p=p,
        nu=nu,
        dropout_t=inf.copy(),
        cancel_t=inf.copy(),
    )


def segment_thresholds(params: SimulationParams) -> dict[str, float]:
    """The latent thresholds that define the segments (for the truth)."""
    bg, gg = params.bgnbd, params.spend
    return {
        "premium_nu_at_most": float(stats.gamma.ppf(params.premium_share, gg.q, scale=1 / gg.v)),
        "loyal_lambda_at_least": float(stats.gamma.ppf(0.5, bg.r, scale=1 / bg.alpha)),
        "loyal_p_at_most": float(stats.beta.ppf(0.5, bg.a, bg.b)),
        "occasional_lambda_below": float(
            stats.gamma.ppf(params.occasional_quantile, bg.r, scale=1 / bg.alpha)
        ),
    }
