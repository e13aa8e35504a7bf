"""The generated history: complete, valid, deterministic, of the documented size and format."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from radar.domain.catalogue import CATALOGUE
from radar.domain.envelope import ENVELOPE_FIELDS, parse_event
from radar.simulate import Simulation, simulate, to_envelopes

OPERATIONAL_TYPES = {n for n, t in CATALOGUE.items() if t.written_by == "operational"}


def test_every_operational_event_type_appears_in_a_1k_simulation(sim1k: Simulation) -> None:
    assert set(sim1k.events["type"].unique()) == OPERATIONAL_TYPES


def test_every_event_of_a_full_simulation_is_valid(sim1k: Simulation) -> None:
    envelopes = to_envelopes(sim1k.events)
    assert len(envelopes) == sim1k.events.height
    for i, env in enumerate(envelopes):
        parse_event(env, where=f"events[{i}]")  # raises InvalidEvent when not valid


def test_payloads_hold_only_catalogue_fields_and_no_nulls(sim1k: Simulation) -> None:
    sample = sim1k.events.group_by("type").head(50)
    for row in sample.iter_rows(named=True):
        data = json.loads(row["data"])
        fields = set(CATALOGUE[row["type"]].payload.model_fields)
        assert set(data) <= fields, row
        assert None not in data.values(), row


def test_events_are_sorted_by_occurrence_and_inside_the_period(sim1k: Simulation) -> None:
    at = sim1k.events["occurred_at"]
    assert at.is_sorted()
    assert str(at.min()) >= "2024-01-01"
    assert str(at.max()) < "2026-01-01"


def test_event_ids_are_unique_per_source(sim1k: Simulation) -> None:
    ev = sim1k.events
    assert ev.select("source", "event_id").is_unique().all()


def test_registration_is_each_customers_first_event(sim1k: Simulation) -> None:
    first = sim1k.events.group_by("customer_id").agg(pl.col("type").first())
    assert first.height == 1000
    assert (first["type"] == "customer.registered").all()


def test_same_seed_gives_the_same_history_and_another_seed_does_not() -> None:
    a, b, c = simulate(200, seed=5), simulate(200, seed=5), simulate(200, seed=6)
    assert a.events.equals(b.events)
    assert a.truth == b.truth
    assert not a.events.equals(c.events)


def test_a_1k_simulation_has_about_fifty_events_per_customer(sim1k: Simulation) -> None:
    assert 40_000 <= sim1k.events.height <= 60_000


@pytest.mark.slow
def test_a_10k_simulation_has_400k_to_600k_events() -> None:
    sim = simulate(10_000, seed=1)
    assert 400_000 <= sim.events.height <= 600_000


def test_jsonl_lines_are_public_envelopes(sim1k: Simulation, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    assert sim1k.write_jsonl(path) == sim1k.events.height
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == sim1k.events.height
    for i in range(0, len(lines), 97):
        obj = json.loads(lines[i])
        assert set(obj) <= set(ENVELOPE_FIELDS)
        assert isinstance(obj["data"], dict)
        assert obj["occurred_at"].endswith("Z")
        event = parse_event(obj, where=f"events.jsonl:{i + 1}")
        row = sim1k.events.row(i, named=True)
        assert event.event_id == row["event_id"]
        assert event.occurred_at == row["occurred_at"]
        assert event.channel == row["channel"]


def test_truth_is_written_as_json(sim1k: Simulation, tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    sim1k.write_truth(path)
    truth = json.loads(path.read_text(encoding="utf-8"))
    assert truth["n_customers"] == 1000
    assert len(truth["customers"]) == 1000
    assert {"r", "alpha", "a", "b"} <= set(truth["bgnbd"])
    assert {"p", "q", "v"} <= set(truth["gamma_gamma"])


def test_personal_fields_look_plausible(sim1k: Simulation) -> None:
    reg = sim1k.events.filter(pl.col("type") == "customer.registered")
    data = reg["data"].str.json_decode()
    emails = data.struct.field("email")
    assert emails.str.contains(r"^[a-z.0-9]+@example\.(com|net|org)$").all()
    consumers = data.filter(data.struct.field("customer_type") == "consumer")
    assert consumers.struct.field("birth_date").is_not_null().all()
    share = data.struct.field("contractual").mean()
    assert share is not None and 0.2 < float(share) < 0.4  # type: ignore[arg-type]
