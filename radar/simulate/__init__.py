"""Synthetic CRM history with ground truth (``radar simulate``, ``radar demo``).

:func:`simulate` generates a realistic event history for a population of customers (registrations,
consents, purchases, contacts, campaigns, tickets, ratings, payments, usage, leads and deals,
cancellations) together with the *truth* that produced it: every customer's latent segment, BG/NBD
purchase rate and dropout probability, dropout time, spend parameter and cancellation time, and the
population parameters of each documented generative model (BG/NBD, Gamma-Gamma spend,
proportional-hazards cancellation, marketing-mix channel effects, logistic deal wins). Analytics
tests check that radar recovers that truth.

:func:`simulate_outcomes` closes the loop of the demo: given the actions radar planned, it produces
what the operational systems would report back (the executed contact or campaign send, and a
conversion with a base rate plus a known per-rule uplift; held-out customers get the base rate).

Generation is vectorised (numpy/polars, loops only over event kinds and weeks), so 10k customers
take seconds and 100k customers well under a minute. The model definitions live in
:mod:`radar.simulate.params` (every parameter is echoed in the truth).
"""

from radar.simulate.envelopes import to_envelopes, write_events_jsonl
from radar.simulate.outcomes import simulate_outcomes
from radar.simulate.params import SimulationParams
from radar.simulate.simulation import Simulation, simulate

__all__ = [
    "Simulation",
    "SimulationParams",
    "simulate",
    "simulate_outcomes",
    "to_envelopes",
    "write_events_jsonl",
]
