"""Radar summary KPIs over the view, measured at a reference moment (default: the latest event).

* active customers — a purchase or an inbound contact in the 90 days before the reference;
* retention rate — of the customers active in the 90 days before that window, the share also
  active in the last 90 days; churn rate = 1 − retention;
* revenue — all time and in the last 365 days;
* contact mix — contacts by channel and direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from radar.projections.decode import DECISION_ROWS

WINDOW_DAYS = 90


@dataclass(frozen=True)
class Kpis:
    reference: datetime | None
    customers: int
    events: int  # stored events (a decision of an actions.decided event is not one)
    active_customers: int
    retention_rate: float | None
    churn_rate: float | None
    revenue: float
    revenue_last_365d: float
    contact_mix: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference.isoformat() if self.reference else None,
            "customers": self.customers,
            "events": self.events,
            "active_customers": self.active_customers,
            "retention_rate": self.retention_rate,
            "churn_rate": self.churn_rate,
            "revenue": self.revenue,
            "revenue_last_365d": self.revenue_last_365d,
            "contact_mix": self.contact_mix,
        }


def kpis(con: duckdb.DuckDBPyConnection, reference: datetime | None = None) -> Kpis:
    ref = (
        reference
        or con.execute(
            "SELECT max(occurred_at) FROM events WHERE customer_id IS NOT NULL"
        ).fetchall()[0][0]
    )
    customers, events = con.execute(
        "SELECT (SELECT count(*) FROM customers), "
        f"(SELECT count(*) FILTER (WHERE NOT {DECISION_ROWS}) FROM events)"
    ).fetchall()[0]
    if ref is None:
        return Kpis(None, customers, events, 0, None, None, 0.0, 0.0, [])
    activity = (
        "SELECT customer_id, occurred_at FROM events WHERE occurred_at <= $ref AND "
        "(type = 'purchase' OR (direction = 'inbound' AND type IN ('contact', "
        "'campaign.responded', 'ticket.opened')))"
    )
    row = con.execute(
        f"""
        WITH a AS ({activity}),
        now_active AS (SELECT DISTINCT customer_id FROM a
                       WHERE occurred_at > $ref - INTERVAL {WINDOW_DAYS} DAY),
        before_active AS (SELECT DISTINCT customer_id FROM a
                          WHERE occurred_at > $ref - INTERVAL {2 * WINDOW_DAYS} DAY
                            AND occurred_at <= $ref - INTERVAL {WINDOW_DAYS} DAY)
        SELECT (SELECT count(*) FROM now_active),
               (SELECT count(*) FROM before_active),
               (SELECT count(*) FROM before_active b JOIN now_active n USING (customer_id)),
               (SELECT coalesce(sum(amount), 0) FROM events WHERE type = 'purchase'),
               (SELECT coalesce(sum(amount), 0) FROM events WHERE type = 'purchase'
                  AND occurred_at > $ref - INTERVAL 365 DAY AND occurred_at <= $ref)
        """,
        {"ref": ref},
    ).fetchall()[0]
    active, before, kept, revenue, revenue_365 = row
    retention = kept / before if before else None
    mix = con.execute(
        "SELECT channel, direction, count(*) AS contacts FROM contacts "
        "GROUP BY ALL ORDER BY contacts DESC"
    ).fetchall()
    return Kpis(
        reference=ref,
        customers=int(customers),
        events=int(events),
        active_customers=int(active),
        retention_rate=retention,
        churn_rate=1 - retention if retention is not None else None,
        revenue=float(revenue),
        revenue_last_365d=float(revenue_365),
        contact_mix=[{"channel": c, "direction": d, "contacts": int(n)} for c, d, n in mix],
    )
