"""Read-side queries of the HTTP service, over the DuckDB view (and, for history, the log).

Each function takes the view connection (held under the service's view lock) and returns plain
JSON-ready values: aggregates for marketers (no customer ids, no personal data) and per-customer
views for auditors. Every query is one SQL statement or a few; nothing loops over rows in Python
except the shaping of small results.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np

from radar.domain.catalogue import CATALOGUE
from radar.ingest.sql_codec import lit
from radar.privacy.cipher import decrypt
from radar.privacy.keystore import KeyStore
from radar.projections.customers import customer_rows_sql, radar_sql
from radar.store.base import EventStore

OPERATIONAL_TYPES = tuple(n for n, t in CATALOGUE.items() if t.written_by == "operational")


def jsonable(value: Any) -> Any:
    """A DuckDB value as JSON: datetimes ISO 8601, NaN as null, JSON columns parsed."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def records(
    con: duckdb.DuckDBPyConnection, sql: str, params: Any = None, json_columns: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Rows of a query as JSON-ready dicts."""
    cur = con.execute(sql, params) if params is not None else con.execute(sql)
    names = [d[0] for d in cur.description or []]
    out = []
    for row in cur.fetchall():
        rec = {n: jsonable(v) for n, v in zip(names, row, strict=True)}
        for c in json_columns:
            if isinstance(rec.get(c), str):
                rec[c] = json.loads(rec[c])
        out.append(rec)
    return out


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


# -- per customer (auditors) --------------------------------------------------------------------


def customer(con: duckdb.DuckDBPyConnection, customer_id: str) -> dict[str, Any] | None:
    """The integral customer view row, with the relative columns measured now."""
    rows = records(
        con,
        f"SELECT * FROM ({radar_sql('customers', 'now()')}) WHERE customer_id = ?",
        [customer_id],
    )
    return rows[0] if rows else None


def customer_as_of(
    con: duckdb.DuckDBPyConnection, customer_id: str, as_of: datetime, known_at: datetime
) -> dict[str, Any] | None:
    """The customer's row as it was at business time ``as_of``, as known at ``known_at``.

    The same aggregation as the live ``customers`` table, over the events that had occurred by
    ``as_of`` and been recorded by ``known_at`` — the view a rule would have seen then."""
    where = "customer_id = $cid AND occurred_at <= $as_of AND recorded_at <= $known_at"
    inner = f"({customer_rows_sql('events', where)}) AS c"
    rows = records(
        con,
        radar_sql(inner, "$as_of"),
        {"cid": customer_id, "as_of": as_of, "known_at": known_at},
    )
    return rows[0] if rows else None


def timeline(con: duckdb.DuckDBPyConnection, customer_id: str, limit: int) -> list[dict[str, Any]]:
    """The customer's events as the view holds them (facts only), latest first; ``data`` holds
    the fact columns that are set."""
    envelope = ("position", "type", "occurred_at", "recorded_at", "source", "channel", "direction")
    rows = records(
        con,
        f"SELECT {', '.join(envelope)}, * EXCLUDE ({', '.join(envelope)}, stream, "
        "stream_version, customer_id, has_pii) FROM events WHERE customer_id = ? "
        "ORDER BY occurred_at DESC, position DESC LIMIT ?",
        [customer_id, limit],
    )
    out = []
    for row in rows:
        head = {k: row.pop(k) for k in (*envelope, "event_id")}
        head["data"] = {k: v for k, v in row.items() if v is not None}
        out.append(head)
    return out


def action_explanation(con: duckdb.DuckDBPyConnection, action_id: str) -> dict[str, Any] | None:
    """Why an action was taken: its decision event with its provenance, and what followed."""
    decision = records(
        con,
        "SELECT position, type AS decision, customer_id, occurred_at AS decided_at, "
        "recorded_at, channel, rule_id, rule_version, rule_hash, ruleset_hash, view_position, "
        "campaign_id, offer, template, priority, reason, condition_values, run_id "
        "FROM events WHERE action_id = ? AND type LIKE 'action.%' ORDER BY position LIMIT 1",
        [action_id],
        json_columns=("condition_values",),
    )
    if not decision:
        return None
    d = decision[0]
    published = records(
        con,
        "SELECT position, occurred_at, recorded_at, changes FROM events "
        "WHERE type = 'ruleset.published' AND ruleset_hash = ? ORDER BY position LIMIT 1",
        [d["ruleset_hash"]],
        json_columns=("changes",),
    )
    d["ruleset"] = published[0] if published else None
    d["outcomes"] = records(
        con,
        "SELECT position, type, occurred_at, channel, outcome, response FROM events "
        "WHERE action_id = ? AND type NOT LIKE 'action.%' ORDER BY position",
        [action_id],
    )
    return d


# -- aggregates (marketers) ---------------------------------------------------------------------


def phases(con: duckdb.DuckDBPyConnection, log_position: int) -> dict[str, Any]:
    """The radar at a glance: live counts of the four phases."""
    row = con.execute(
        f"""
        SELECT
          count(*) FILTER (WHERE type IN {_in(OPERATIONAL_TYPES)}),
          count(*) FILTER (WHERE direction = 'inbound'),
          count(*) FILTER (WHERE direction = 'outbound' AND type NOT LIKE 'action.%'),
          (SELECT count(*) FROM customers),
          (SELECT coalesce(max(position), 0) FROM radar_position),
          count(*) FILTER (WHERE type = 'analysis.completed'),
          count(*) FILTER (WHERE type IN ('segment.entered', 'segment.left', 'score.changed',
                                          'lifecycle.stage_changed')),
          count(*) FILTER (WHERE type = 'action.planned'),
          count(*) FILTER (WHERE type = 'action.suppressed'),
          count(*) FILTER (WHERE type = 'action.held_out'),
          count(*) FILTER (WHERE type = 'ruleset.published'),
          count(*) FILTER (WHERE action_id IS NOT NULL AND type NOT LIKE 'action.%')
        FROM events
        """
    ).fetchall()[0]
    view_position = int(row[4])
    return {
        "operational": {"events": row[0], "inbound": row[1], "outbound": row[2]},
        "stored": {
            "customers": row[3],
            "view_position": view_position,
            "log_position": log_position,
            "lag": max(0, log_position - view_position),
        },
        "analytical": {"analyses": row[5], "results": row[6]},
        "rules": {
            "planned": row[7],
            "suppressed": row[8],
            "held_out": row[9],
            "rulesets": row[10],
            "outcomes": row[11],
        },
    }


def kpi_history(con: duckdb.DuckDBPyConnection, months: int) -> list[dict[str, Any]]:
    """Per month: events, new and active customers, purchases, revenue, inbound/outbound."""
    return records(
        con,
        f"""
        WITH e AS (
          SELECT date_trunc('month', occurred_at) AS month, customer_id, type, direction, amount
          FROM events WHERE customer_id IS NOT NULL AND type IN {_in(OPERATIONAL_TYPES)}),
        firsts AS (SELECT date_trunc('month', first_seen) AS month, count(*) AS new_customers
                   FROM customers WHERE first_seen IS NOT NULL GROUP BY ALL),
        m AS (
          SELECT month, count(*) AS events,
                 count(DISTINCT customer_id) FILTER (WHERE type = 'purchase'
                     OR direction = 'inbound') AS active_customers,
                 count(*) FILTER (WHERE type = 'purchase') AS purchases,
                 coalesce(sum(amount) FILTER (WHERE type = 'purchase'), 0) AS revenue,
                 count(*) FILTER (WHERE direction = 'inbound') AS inbound,
                 count(*) FILTER (WHERE direction = 'outbound') AS outbound
          FROM e GROUP BY month ORDER BY month DESC LIMIT ?)
        SELECT strftime(m.month, '%Y-%m') AS month, m.events, m.active_customers,
               coalesce(f.new_customers, 0) AS new_customers, m.purchases, m.revenue,
               m.inbound, m.outbound
        FROM m LEFT JOIN firsts f USING (month) ORDER BY m.month
        """,
        [months],
    )


def segments(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Segment sizes and profiles; RFM groups and lifecycle stages by size."""

    def profile(column: str) -> list[dict[str, Any]]:
        return records(
            con,
            f"""
            SELECT coalesce({column}, '(none)') AS name, count(*) AS customers,
                   avg(revenue) AS avg_revenue, avg(purchases) AS avg_purchases,
                   avg(avg_order_value) AS avg_order_value,
                   avg(inbound_contacts) AS avg_inbound, avg(complaints) AS avg_complaints,
                   avg(churn_risk) AS avg_churn_risk, avg(clv) AS avg_clv,
                   avg(lead_score) AS avg_lead_score,
                   avg(CAST(cancelled_at IS NOT NULL AS INT)) AS cancelled_share
            FROM customers GROUP BY ALL ORDER BY customers DESC
            """,
        )

    return {
        "segments": profile("segment"),
        "rfm_groups": profile("rfm_group"),
        "lifecycle_stages": profile("lifecycle_stage"),
    }


def analyses(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """The analysis runs recorded in the log (latest first)."""
    return records(
        con,
        "SELECT position, analysis, version, run_id, as_of, view_position, occurred_at, "
        "recorded_at, parameters, metrics FROM events WHERE type = 'analysis.completed' "
        "ORDER BY position DESC LIMIT ?",
        [limit],
        json_columns=("parameters", "metrics"),
    )


def lifecycle_transitions(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts of lifecycle stage transitions (from → to), for a heatmap."""
    rows = con.execute(
        "SELECT coalesce(previous_stage, '(new)') AS src, stage AS dst, count(*) AS n "
        "FROM events WHERE type = 'lifecycle.stage_changed' AND stage IS NOT NULL "
        "GROUP BY ALL ORDER BY src, dst"
    ).fetchall()
    stages = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {s: i for i, s in enumerate(stages)}
    matrix = [[0 for _ in stages] for _ in stages]
    for src, dst, n in rows:
        matrix[index[src]][index[dst]] = int(n)
    return {"stages": stages, "counts": matrix}


def survival(con: duckdb.DuckDBPyConnection, points: int = 60) -> dict[str, Any]:
    """Kaplan–Meier curves of time to cancellation for contractual customers, per customer type.

    Duration: first seen → cancellation (event) or → the latest event in the view (censored)."""
    rows = con.execute(
        """
        WITH ref AS (SELECT max(occurred_at) AS t FROM events WHERE customer_id IS NOT NULL)
        SELECT coalesce(customer_type, 'all'),
               greatest(0, (epoch(coalesce(cancelled_at, ref.t)) - epoch(first_seen)) / 86400.0),
               cancelled_at IS NOT NULL
        FROM customers, ref
        WHERE first_seen IS NOT NULL AND (contractual OR cancelled_at IS NOT NULL)
        """
    ).fetchnumpy()
    groups: list[dict[str, Any]] = []
    if len(rows) == 0:
        return {"groups": groups}
    names, durations, observed = (list(rows.values())[i] for i in range(3))
    names = np.asarray(names, dtype=object)
    durations = np.asarray(durations, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    for name in sorted(set(names.tolist())):
        mask = names == name
        t, s = kaplan_meier(durations[mask], observed[mask])
        if len(t) > points:
            keep = np.unique(np.linspace(0, len(t) - 1, points).round().astype(int))
            t, s = t[keep], s[keep]
        groups.append(
            {
                "name": str(name),
                "customers": int(mask.sum()),
                "events": int(observed[mask].sum()),
                "days": [round(float(x), 2) for x in t],
                "survival": [round(float(x), 5) for x in s],
            }
        )
    return {"groups": groups}


def kaplan_meier(durations: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan–Meier estimate S(t) at 0 and at each distinct event time (vectorised)."""
    if durations.size == 0:
        return np.array([0.0]), np.array([1.0])
    order = np.argsort(durations, kind="stable")
    d, e = durations[order], observed[order]
    times, first = np.unique(d, return_index=True)
    at_risk = d.size - first
    deaths = np.add.reduceat(e.astype(float), first)
    factors = 1.0 - deaths / at_risk
    surv = np.cumprod(factors)
    has_event = deaths > 0
    return (
        np.concatenate([[0.0], times[has_event]]),
        np.concatenate([[1.0], surv[has_event]]),
    )


# -- from the log (auditors) --------------------------------------------------------------------


def log_history(store: EventStore, keys: KeyStore, customer_id: str) -> list[dict[str, Any]]:
    """Every stored event of the customer, from the log itself, oldest first, with its personal
    data decrypted (or marked ``forgotten`` when the customer's key was destroyed)."""
    table = store.read_stream(customer_id)
    if table.num_rows == 0:
        return []
    key = keys.keys_for([customer_id], create=False).get(customer_id)
    out = []
    for row in table.to_pylist():
        raw = row["state"]
        state = json.loads(raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw)
        event: dict[str, Any] = {
            "position": row["position"],
            "version": row["stream_version"],
            "type": state.get("type"),
            "event_id": state.get("event_id"),
            "occurred_at": _library_time(state.get("occurred_at")),
            "recorded_at": _library_time(state.get("timestamp")),
            "source": state.get("source"),
            "channel": state.get("channel"),
            "direction": state.get("direction"),
            "data": state.get("data") or {},
        }
        token = state.get("pii")
        if token:
            if key is None:
                event["personal"] = "forgotten"
            else:
                event["personal"] = json.loads(decrypt(key, customer_id, token))
        out.append(event)
    return out


def _library_time(value: Any) -> Any:
    if isinstance(value, dict) and "_data_" in value:
        return str(value["_data_"])
    return value
