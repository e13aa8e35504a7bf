"""Benchmark of the rules planner: N synthetic customers × M rules through one decision query.

Prints figures (no asserts). Usage: ``python bench/bench_rules.py [customers] [rules]``
(default 1,000,000 × 50; target < 10 s on 2 cores).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

import duckdb

from radar.domain.columns import CUSTOMER_COLUMNS
from radar.rules.loader import load_rule_text
from radar.rules.planner import plan_actions

SQL_TYPES = {
    "string": "VARCHAR",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}
STAGES = ["prospect", "new", "developing", "retained", "at_risk", "lapsed", "won_back"]
RFM = ["champions", "loyal", "potential", "new", "at_risk", "cant_lose", "hibernating", "lost"]
CHANNELS = ["email", "phone", "sms", "letter", "app"]
REFERENCE = datetime(2026, 3, 1, tzinfo=UTC)


def make_customers(con: duckdb.DuckDBPyConnection, n: int) -> None:
    """A ``customers`` table with every catalogue column, filled with hash-based values."""
    cols = ", ".join(f'"{c.name}" {SQL_TYPES[c.type]}' for c in CUSTOMER_COLUMNS.values())
    con.execute(f"CREATE OR REPLACE TABLE customers ({cols})")
    stages = "[" + ", ".join(f"'{s}'" for s in STAGES) + "]"
    rfm = "[" + ", ".join(f"'{s}'" for s in RFM) + "]"
    consents = ", ".join(
        f"CASE WHEN hash(i, {20 + k}) % 5 = 0 THEN NULL ELSE hash(i, {20 + k}) % 5 > 1 END "
        f"AS consent_{ch}"
        for k, ch in enumerate(CHANNELS)
    )
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
            CAST(hash(i, 7) % 720 AS DOUBLE) AS days_since_last_purchase,
            CAST(hash(i, 8) % 1500 AS DOUBLE) AS days_since_registration,
            CAST(hash(i, 9) % 200 AS DOUBLE) AS days_since_last_outbound,
            CAST(hash(i, 10) % 1000 AS DOUBLE) / 1000 AS churn_risk,
            CAST(hash(i, 11) % 100 AS DOUBLE) AS lead_score,
            CAST(hash(i, 12) % 4 AS BIGINT) AS complaints,
            CAST(hash(i, 13) % 60 AS DOUBLE) AS days_since_last_complaint,
            CAST(hash(i, 14) % 3 AS BIGINT) AS open_tickets,
            CAST(hash(i, 15) % 200 AS DOUBLE) AS avg_order_value,
            (['NL', 'BE', 'DE'])[1 + CAST(hash(i, 16) % 3 AS INTEGER)] AS country,
            false AS forgotten,
            {consents}
        FROM range({n}) AS t(i)
        """
    )


def make_rules(m: int) -> str:
    """``m`` rules with varied conditions (roughly 2–15 % of customers each) and a policy."""
    templates = [
        "lifecycle_stage == '{stage}' and clv >= {k}",
        "rfm_group in ['{rfm}', 'loyal'] and days_since_last_purchase > {d}",
        "churn_risk >= 0.{r} and (lifecycle_stage == '{stage}' or segment == 'seg-{s}')",
        "lead_score between {k2} and {k3} and consent_{ch} and not forgotten",
        "complaints >= 1 and days_since_last_complaint < {d2} and country != 'DE'",
    ]
    lines = ["policy:", "  max_outbound: 2", "  per_days: 30", "rules:"]
    for i in range(m):
        t = templates[i % len(templates)]
        when = t.format(
            stage=STAGES[i % len(STAGES)],
            rfm=RFM[i % len(RFM)],
            k=200 + 37 * i % 1500,
            d=100 + 11 * i % 500,
            r=5 + i % 4,
            s=i % 6,
            k2=i % 60,
            k3=i % 60 + 10,
            ch=CHANNELS[i % len(CHANNELS)],
            d2=5 + i % 20,
        )
        lines += [
            f"  - id: bench-rule-{i:02d}",
            f"    description: Benchmark rule {i}",
            "    owner: bench",
            f'    when: "{when}"',
            f"    action: {{channel: {CHANNELS[i % len(CHANNELS)]}, campaign_id: BENCH-{i}, "
            f"priority: {(i * 7) % 100}}}",
            f"    limit: {{once_per_days: {7 + i % 30}}}",
            f"    holdout: {5 + i % 10}",
            "    success: {event: purchase, within_days: 30}",
        ]
    return "\n".join(lines) + "\n"


def make_history(con: duckdb.DuckDBPyConnection, n: int, m: int) -> None:
    """About one earlier decision per customer in the last 60 days."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE action_history AS
        SELECT 'C-' || lpad(CAST(i AS VARCHAR), 8, '0') AS customer_id,
            'bench-rule-' || lpad(CAST(hash(i, 30) % {m} AS VARCHAR), 2, '0') AS rule_id,
            'email' AS channel,
            TIMESTAMPTZ '{(REFERENCE - timedelta(days=60)).isoformat()}'
                + to_seconds(CAST(hash(i, 31) % (60 * 86400) AS BIGINT)) AS occurred_at,
            CASE WHEN hash(i, 32) % 10 = 0 THEN 'held_out' ELSE 'planned' END AS status
        FROM range({n}) AS t(i)
        """
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    con = duckdb.connect()
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    threads = con.execute("SELECT current_setting('threads')").fetchone()
    print(f"duckdb {duckdb.__version__}, threads {threads[0] if threads else '?'}")
    t0 = time.perf_counter()
    make_customers(con, n)
    make_history(con, n, m)
    t1 = time.perf_counter()
    print(f"fixture: {n:,} customers, {n:,} history rows in {t1 - t0:.2f} s")
    ruleset = load_rule_text(make_rules(m), "bench.yaml")
    t2 = time.perf_counter()
    print(f"load + type-check {m} rules: {(t2 - t1) * 1000:.1f} ms")
    for run in (1, 2):
        t3, c3 = time.perf_counter(), time.process_time()
        frame = plan_actions(con, ruleset, reference=REFERENCE, position=123_456)
        t4, c4 = time.perf_counter(), time.process_time()
        print(
            f"plan run {run}: {n:,} customers × {m} rules → {frame.height:,} decisions "
            f"in {t4 - t3:.2f} s wall, {c4 - c3:.2f} s CPU "
            f"({frame.height / (t4 - t3):,.0f} decisions/s)"
        )
    counts = frame.group_by("status", "reason").len().sort("status", "reason")
    for row in counts.iter_rows():
        print(f"  {row[0]:<10} {row[1] or '':<10} {row[2]:>10,}")


if __name__ == "__main__":
    main()
