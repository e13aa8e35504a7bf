"""On the simulated demo history, the incrementally caught-up view equals a rebuild."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from radar.engine import build_engine
from radar.simulate import simulate


def test_incremental_catch_up_on_demo_data_equals_a_rebuild(tmp_path: Path) -> None:
    sim = simulate(customers=300, seed=7)
    events = sim.events
    chunks = 6
    size = events.height // chunks + 1
    with build_engine(data_dir=tmp_path / "live") as live:
        for k in range(chunks):
            part = tmp_path / f"part{k}.jsonl"
            from radar.simulate import write_events_jsonl

            write_events_jsonl(events.slice(k * size, size), part)
            live.ingest_file(part)
            live.project()  # incremental, batch by batch
        live_customers = live.view.sql("SELECT * FROM customers ORDER BY customer_id").pl()
        live_events = live.view.sql(
            "SELECT count(*) AS n, sum(position) AS s FROM events"
        ).fetchall()
        assert live_events[0][0] == events.height
        live.rebuild()
        rebuilt = live.view.sql("SELECT * FROM customers ORDER BY customer_id").pl()
    assert live_customers.height == 300
    assert live_customers.equals(rebuilt)
    assert rebuilt.filter(pl.col("purchases") > 0).height > 200
