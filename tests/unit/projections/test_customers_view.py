"""The customers aggregation on hand-made event rows: empty groups, NULLs and "latest" ties."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from radar.projections.customers import customer_rows_sql
from radar.projections.projector import connect_view, create_schema

T0 = "2026-01-01 00:00:00+00"
T1 = "2026-01-02 00:00:00+00"

ROWS: list[dict[str, Any]] = [
    # C-1: a payment without days_late or dates, a profile change without a city,
    # two consent events at the same moment (the later position wins), a segment left.
    {"customer_id": "C-1", "type": "customer.registered", "occurred_at": T0, "city": "Utrecht"},
    {"customer_id": "C-1", "type": "customer.profile_changed", "occurred_at": T1, "city": None},
    {"customer_id": "C-1", "type": "payment", "occurred_at": T0, "amount": 5.0},
    {
        "customer_id": "C-1",
        "type": "consent.changed",
        "occurred_at": T1,
        "data_channel": "email",
        "granted": True,
    },
    {
        "customer_id": "C-1",
        "type": "consent.changed",
        "occurred_at": T1,
        "data_channel": "email",
        "granted": False,
    },
    {
        "customer_id": "C-1",
        "type": "segment.entered",
        "occurred_at": T0,
        "segmentation": "rfm",
        "segment": "champions",
    },
    {
        "customer_id": "C-1",
        "type": "segment.left",
        "occurred_at": T1,
        "segmentation": "rfm",
        "segment": "champions",
    },
    # C-2: purchases on one day, an inbound e-mail contact and a ticket opened and resolved.
    {"customer_id": "C-2", "type": "purchase", "occurred_at": T0, "amount": 0.1},
    {"customer_id": "C-2", "type": "purchase", "occurred_at": T0, "amount": 0.2},
    {
        "customer_id": "C-2",
        "type": "contact",
        "occurred_at": T1,
        "direction": "inbound",
        "channel": "email",
        "reason": "complaint",
    },
    {"customer_id": "C-2", "type": "ticket.opened", "occurred_at": T0, "ticket_id": "T-1"},
    {"customer_id": "C-2", "type": "ticket.resolved", "occurred_at": T1, "ticket_id": "T-1"},
]


@pytest.fixture(scope="module")
def customers() -> dict[str, dict[str, Any]]:
    con: duckdb.DuckDBPyConnection = connect_view(None)
    create_schema(con)
    for position, row in enumerate(ROWS, start=1):
        cols = ["position", "stream", *row]
        marks = ", ".join("?" for _ in cols)
        quoted = ", ".join(f'"{c}"' for c in cols)
        values = [position, row["customer_id"], *row.values()]
        con.execute(f"INSERT INTO events ({quoted}) VALUES ({marks})", values)
    result = con.execute(customer_rows_sql())
    names = [d[0] for d in result.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in result.fetchall()}


def test_counts_are_zero_and_sums_zero_or_null_without_matching_rows(
    customers: dict[str, dict[str, Any]],
) -> None:
    c1 = customers["C-1"]
    assert (c1["purchases"], c1["purchase_days"], c1["revenue"]) == (0, 0, 0.0)
    assert c1["avg_order_value"] is None and c1["first_purchase_at"] is None
    assert (c1["payments"], c1["late_payments"], c1["avg_days_late"]) == (1, 0, None)
    assert (c1["complaints"], c1["inbound_contacts"], c1["inbound_email"]) == (0, 0, 0)
    assert c1["open_tickets"] == 0 and c1["last_complaint_at"] is None


def test_latest_values_skip_nulls_and_break_ties_by_position(
    customers: dict[str, dict[str, Any]],
) -> None:
    c1 = customers["C-1"]
    assert c1["city"] == "Utrecht"  # the later profile change has no city
    assert c1["consent_email"] is False  # same moment: the later position wins
    assert c1["rfm_group"] is None  # left after entering
    assert c1["position"] == 7


def test_sums_are_exact_and_distinct_counts_skip_other_types(
    customers: dict[str, dict[str, Any]],
) -> None:
    c2 = customers["C-2"]
    assert (c2["purchases"], c2["purchase_days"]) == (2, 1)
    assert c2["revenue"] == 0.3 and c2["avg_order_value"] == 0.15
    assert (c2["complaints"], c2["inbound_contacts"], c2["inbound_email"]) == (1, 1, 1)
    assert (c2["tickets_opened"], c2["open_tickets"]) == (1, 0)
