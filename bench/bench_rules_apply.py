"""Benchmark of ``radar rules apply`` end to end: N customers × M rules planned in the engine's
DuckDB view and every decision appended to the SQLite event store as an action event.

Prints figures (no asserts). Usage::

    python bench/bench_rules_apply.py [customers] [rules] [--folder DIR]

(default 1,000,000 × 50; target < 10 s on 2 cores). The fixture writes the ``customers`` table of
a fresh engine's view directly (filled with hash-based values, like ``bench_rules.py``), so only
the apply path is timed: read the decision point → publish → plan → build the JSON lines →
validate and append in atomic batches. A second apply at the same view position is timed too
(everything is a duplicate: nothing new is stored). Then, outside the target, the catch-up that
gives every decision its own row in the view (the fixture's customers have no events, so their
rows are recomputed from the decisions alone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))

from bench_rules import CHANNELS, RFM, STAGES, make_rules

from radar.engine import build_engine
from radar.rules.apply import apply_rules
from radar.rules.loader import load_rule_text

REFERENCE = datetime(2026, 3, 1, tzinfo=UTC)


def fill_customers(con: duckdb.DuckDBPyConnection, n: int) -> None:
    """Fill the view's ``customers`` table (stored columns; relative ones come from times)."""
    ref = f"TIMESTAMPTZ '{REFERENCE.isoformat()}'"
    stages = "[" + ", ".join(f"'{s}'" for s in STAGES) + "]"
    rfm = "[" + ", ".join(f"'{s}'" for s in RFM) + "]"
    consents = ", ".join(
        f"CASE WHEN hash(i, {20 + k}) % 5 = 0 THEN NULL ELSE hash(i, {20 + k}) % 5 > 1 END "
        f"AS consent_{ch}"
        for k, ch in enumerate(CHANNELS)
    )

    def ago(seed: int, days: int) -> str:
        return f"{ref} - to_seconds(CAST(hash(i, {seed}) % {days * 86400} AS BIGINT))"

    con.execute("DELETE FROM customers")
    con.execute(
        f"""
        INSERT INTO customers BY NAME
        SELECT 'C-' || lpad(CAST(i AS VARCHAR), 8, '0') AS customer_id,
            {stages}[1 + CAST(hash(i, 1) % {len(STAGES)} AS INTEGER)] AS lifecycle_stage,
            {rfm}[1 + CAST(hash(i, 2) % {len(RFM)} AS INTEGER)] AS rfm_group,
            'seg-' || CAST(hash(i, 3) % 6 AS VARCHAR) AS segment,
            CAST(hash(i, 4) % 2000 AS DOUBLE) AS clv,
            CAST(hash(i, 5) % 5000 AS DOUBLE) / 10 AS revenue,
            CAST(hash(i, 6) % 20 AS BIGINT) AS purchases,
            {ago(7, 720)} AS last_purchase_at,
            {ago(8, 1500)} AS registered_at,
            {ago(8, 1500)} AS first_seen,
            {ago(9, 200)} AS last_outbound_at,
            CAST(hash(i, 10) % 1000 AS DOUBLE) / 1000 AS churn_risk,
            CAST(hash(i, 11) % 100 AS DOUBLE) AS lead_score,
            CAST(hash(i, 12) % 4 AS BIGINT) AS complaints,
            {ago(13, 60)} AS last_complaint_at,
            CAST(hash(i, 14) % 3 AS BIGINT) AS open_tickets,
            CAST(hash(i, 15) % 200 AS DOUBLE) AS avg_order_value,
            (['NL', 'BE', 'DE'])[1 + CAST(hash(i, 16) % 3 AS INTEGER)] AS country,
            false AS forgotten,
            {consents}
        FROM range({n}) AS t(i)
        """
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("customers", nargs="?", type=int, default=1_000_000)
    parser.add_argument("rules", nargs="?", type=int, default=50)
    parser.add_argument("--folder", type=Path, default=None, help="data folder (default: temp)")
    args = parser.parse_args()
    n, m = args.customers, args.rules
    folder = args.folder or Path(tempfile.mkdtemp(prefix="radar-bench-rules-"))
    if folder.exists():
        shutil.rmtree(folder)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"cpus: {os.cpu_count()}, duckdb {duckdb.__version__}, polars {pl.__version__}")
    try:
        with build_engine(data_dir=folder, event_store=None) as engine:
            engine.projector  # noqa: B018 - creates the view's schema
            t0 = time.perf_counter()
            fill_customers(engine.view, n)
            print(f"fixture: {n:,} customers in {time.perf_counter() - t0:.2f} s")
            ruleset = load_rule_text(make_rules(m), "bench.yaml")
            for run in (1, 2):
                t1, c1 = time.perf_counter(), time.process_time()
                result = apply_rules(engine, ruleset, at=REFERENCE, project=False)
                wall, cpu = time.perf_counter() - t1, time.process_time() - c1
                decisions = result.planned + result.suppressed + result.held_out
                print(
                    f"apply run {run}: {n:,} customers × {m} rules → {decisions:,} decisions "
                    f"(planned {result.planned:,}, suppressed {result.suppressed:,}, held out "
                    f"{result.held_out:,}); stored {result.appended:,}, duplicates "
                    f"{result.duplicates:,} in {wall:.2f} s wall, {cpu:.2f} s CPU "
                    f"({decisions / wall:,.0f} decisions/s)"
                )
                print("  steps (s): " + ", ".join(f"{k} {v}" for k, v in result.seconds.items()))
            t1 = time.perf_counter()
            caught = engine.project()
            rows = engine.view.execute(
                "SELECT count(*) FROM events WHERE type LIKE 'action.%'"
            ).fetchone()
            print(
                f"projection of the decision events afterwards (not part of the target): "
                f"{caught.events:,} events → {rows[0] if rows else 0:,} decision rows in the "
                f"view in {time.perf_counter() - t1:.2f} s"
            )
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
