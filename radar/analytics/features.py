"""Feature frames out of the DuckDB view, as of a moment T (DuckDB SQL → polars frames).

Contract
--------
Every function takes the view connection and a :class:`Snapshot` and sees ONLY the events with
``occurred_at <= snapshot.as_of`` (business time); ages, recency and tenure are measured up to
``as_of``. So an analysis run "as of T" is leakage-free: nothing that happened after T can enter
its features, and running it again as of T on the same log reproduces it.

* The default ``as_of`` is the business time of the latest operational event in the view (as the
  KPIs do), not the wall clock — a history loaded today is analysed as of its own end.
* Datetimes in the returned frames are naive UTC (``pl.Datetime("us")``); ``Snapshot.as_of`` is a
  naive UTC ``datetime`` too, so frames and moments compare without time-zone casts.
* :func:`customer_frame` is the integral customer view AS OF T: the projection's own definition
  (:func:`radar.projections.customers.customer_rows_sql`) run over the events up to T, plus the
  relative columns (``days_since_…``, ``tenure_days``) measured at T. When no event in the view
  is later than T it reads the live ``customers`` table instead (same rows, much faster).
* :func:`recorded_state` is what radar itself has recorded per customer up to T (segments, RFM
  group, lifecycle stage, latest scores): the baseline against which a run's changes are found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

from radar.analytics.models.errors import InsufficientData
from radar.projections.customers import OPERATIONAL, ORDER_KEY, customer_rows_sql, radar_sql
from radar.projections.projector import NAME as VIEW_PROJECTION

#: Score names radar records per customer (``score.changed`` ``score_name``).
SCORE_NAMES: tuple[str, ...] = ("lead_score", "churn_risk", "clv", "p_alive")
#: Groupings radar records per customer (``segment.entered/left`` ``segmentation``).
SEGMENTATIONS: tuple[str, ...] = ("kmeans", "rfm")

_OPERATIONAL_IN = "(" + ", ".join(f"'{t}'" for t in OPERATIONAL) + ")"


@dataclass(frozen=True)
class Snapshot:
    """The moment an analysis looks from: ``as_of`` (naive UTC) and the view position it read."""

    as_of: datetime
    view_position: int
    explicit: bool  # the as-of moment was asked for (a backtest / reproduction)

    @property
    def as_of_utc(self) -> datetime:
        """``as_of`` as an aware UTC datetime (for SQL parameters and envelopes)."""
        return self.as_of.replace(tzinfo=UTC)

    def iso(self) -> str:
        return self.as_of_utc.isoformat().replace("+00:00", "Z")


def naive_utc(ts: datetime) -> datetime:
    """``ts`` in UTC without tzinfo (naive input is taken as UTC)."""
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def view_position(con: duckdb.DuckDBPyConnection) -> int:
    rows = con.execute(
        "SELECT position FROM radar_position WHERE projection = ?", [VIEW_PROJECTION]
    ).fetchall()
    return int(rows[0][0]) if rows else 0


def snapshot(con: duckdb.DuckDBPyConnection, as_of: datetime | None = None) -> Snapshot:
    """The snapshot for ``as_of`` (default: the latest operational event in the view)."""
    position = view_position(con)
    if as_of is not None:
        return Snapshot(naive_utc(as_of), position, True)
    latest = con.execute(
        f"SELECT max(occurred_at) FROM events WHERE type IN {_OPERATIONAL_IN}"
    ).fetchall()[0][0]
    if latest is None:
        raise InsufficientData("the view holds no operational events (ingest and project first)")
    return Snapshot(naive_utc(latest), position, False)


def _pl(con: duckdb.DuckDBPyConnection, sql: str, snap: Snapshot) -> pl.DataFrame:
    """Run ``sql`` with ``$as_of`` bound; datetimes come back naive UTC."""
    frame = con.sql(sql, params={"as_of": snap.as_of_utc}).pl()
    fixes = [
        pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        for c, t in frame.schema.items()
        if isinstance(t, pl.Datetime) and t.time_zone is not None
    ]
    return frame.with_columns(fixes) if fixes else frame


def _live_table_is_as_of(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> bool:
    latest = con.execute("SELECT max(occurred_at) FROM events").fetchall()[0][0]
    return latest is None or naive_utc(latest) <= snap.as_of


def customer_frame(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> pl.DataFrame:
    """The integral customer view as of T, one row per customer first seen by T.

    Columns: every ``customers`` column (``radar.domain.columns``), the relative columns measured
    at T, and ``last_activity`` (latest purchase or inbound contact), ``usage_product`` (product
    of the latest usage measurement, e.g. the plan in use).
    """
    if _live_table_is_as_of(con, snap):
        base = "customers"
    else:
        base = f"({customer_rows_sql(where='occurred_at <= $as_of')})"
    sql = f"""
        WITH c AS ({radar_sql(base, "$as_of::TIMESTAMPTZ")}),
        u AS (SELECT customer_id, arg_max(product, {ORDER_KEY}) AS usage_product FROM events
              WHERE type = 'usage' AND occurred_at <= $as_of GROUP BY customer_id)
        SELECT c.*, greatest(c.last_purchase_at, c.last_inbound_at) AS last_activity,
               u.usage_product
        FROM c LEFT JOIN u USING (customer_id)
        WHERE c.first_seen IS NOT NULL AND c.first_seen <= $as_of
        ORDER BY c.customer_id
    """
    return _pl(con, sql, snap)


def purchase_frame(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> pl.DataFrame:
    """``customer_id, occurred_at, purchase_day, amount``: one row per purchase up to T, in a
    fixed order (so sums, and the fits built on them, are reproducible to the last bit)."""
    return _pl(
        con,
        "SELECT customer_id, occurred_at, CAST(timezone('UTC', occurred_at) AS DATE) "
        "AS purchase_day, amount FROM events WHERE type = 'purchase' AND occurred_at <= $as_of "
        "AND customer_id IS NOT NULL ORDER BY customer_id, occurred_at, position",
        snap,
    )


def lead_frame(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> pl.DataFrame:
    """One row per lead created by T, its outcome as known at T, and features at decision time.

    ``outcome``: 1 won, 0 lost (a ``deal.won``/``deal.lost`` carrying the lead id, by T), null
    while open. Features are measured up to the close for closed leads and up to T for open ones
    (what was known when the outcome was decided / when the score is used): ``origin``,
    ``product``, ``value``, ``customer_type``, ``qualified``, ``sales_contacts`` (outbound
    contacts with reason ``sales`` since the lead was created), ``inbound_contacts`` in that
    window, ``purchases_before`` and ``tenure_days`` at creation.
    """
    sql = """
        WITH leads AS (
            SELECT lead_id, arg_min(customer_id, occurred_at) AS customer_id,
                   min(occurred_at) AS created_at, arg_min(origin, occurred_at) AS origin,
                   arg_min(product, occurred_at) AS product, arg_min(value, occurred_at) AS value
            FROM events WHERE type = 'lead.created' AND occurred_at <= $as_of
            GROUP BY lead_id),
        closed AS (
            SELECT lead_id, arg_min(type = 'deal.won', occurred_at) AS won,
                   min(occurred_at) AS closed_at
            FROM events WHERE type IN ('deal.won', 'deal.lost') AND occurred_at <= $as_of
              AND lead_id IS NOT NULL GROUP BY lead_id),
        qual AS (SELECT DISTINCT lead_id FROM events
                 WHERE type = 'lead.qualified' AND occurred_at <= $as_of),
        l AS (SELECT leads.*, closed.won, coalesce(closed.closed_at, $as_of) AS until,
                     qual.lead_id IS NOT NULL AS qualified
              FROM leads LEFT JOIN closed USING (lead_id) LEFT JOIN qual USING (lead_id)),
        acts AS (
            SELECT l.lead_id,
                   count(*) FILTER (WHERE e.type = 'contact' AND e.direction = 'outbound'
                       AND e.reason = 'sales' AND e.occurred_at >= l.created_at
                       AND e.occurred_at <= l.until) AS sales_contacts,
                   count(*) FILTER (WHERE e.direction = 'inbound' AND e.type <> 'purchase'
                       AND e.occurred_at >= l.created_at AND e.occurred_at <= l.until)
                       AS inbound_contacts,
                   count(*) FILTER (WHERE e.type = 'purchase' AND e.occurred_at < l.created_at)
                       AS purchases_before,
                   min(e.occurred_at) AS first_seen,
                   arg_max(e.customer_type, e.occurred_at) FILTER (
                       WHERE e.customer_type IS NOT NULL AND e.occurred_at <= l.until)
                       AS customer_type
            FROM l JOIN events e ON e.customer_id = l.customer_id
            WHERE e.occurred_at <= $as_of
            GROUP BY l.lead_id)
        SELECT l.lead_id, l.customer_id, l.created_at,
               CASE WHEN l.won IS NULL THEN NULL WHEN l.won THEN 1 ELSE 0 END AS outcome,
               l.origin, l.product, l.value, a.customer_type, l.qualified,
               coalesce(a.sales_contacts, 0) AS sales_contacts,
               coalesce(a.inbound_contacts, 0) AS inbound_contacts,
               coalesce(a.purchases_before, 0) AS purchases_before,
               (epoch(l.created_at) - epoch(a.first_seen)) / 86400.0 AS tenure_days
        FROM l LEFT JOIN acts a USING (lead_id)
        ORDER BY l.created_at, l.lead_id
    """
    return _pl(con, sql, snap)


def touch_frame(
    con: duckdb.DuckDBPyConnection,
    snap: Snapshot,
    *,
    by: str = "channel",
    types: tuple[str, ...] = ("campaign.sent",),
) -> pl.DataFrame:
    """Outbound touches per week: ``period, <by>, touches`` for complete weeks that ended by T.

    ``by`` is ``channel``, ``campaign_id`` or ``offer``; ``types`` the outbound event types that
    count as a touch (default campaign sends; add ``contact`` for outbound contacts).
    """
    if by not in ("channel", "campaign_id", "offer"):
        raise ValueError(f"touches by {by!r}: use channel, campaign_id or offer")
    kinds = ", ".join("'" + t.replace("'", "''") + "'" for t in types)
    return _pl(
        con,
        f"""SELECT date_trunc('week', timezone('UTC', occurred_at)) AS period,
                   coalesce({by}, 'none') AS {by}, count(*) AS touches
            FROM events WHERE occurred_at <= $as_of AND direction = 'outbound'
              AND type IN ({kinds})
              AND date_trunc('week', timezone('UTC', occurred_at)) + INTERVAL 7 DAY
                  <= timezone('UTC', $as_of)
            GROUP BY ALL ORDER BY ALL""",
        snap,
    )


def outcome_frame(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> pl.DataFrame:
    """Per complete week by T: ``period, conversions`` (campaign responses ``converted``) and
    ``revenue`` (sum of purchase amounts); every week from the first event is present."""
    return _pl(
        con,
        """WITH w AS (
              SELECT date_trunc('week', timezone('UTC', occurred_at)) AS period,
                     count(*) FILTER (WHERE type = 'campaign.responded'
                         AND response = 'converted') AS conversions,
                     coalesce(sum(amount) FILTER (WHERE type = 'purchase'), 0) AS revenue
              FROM events WHERE occurred_at <= $as_of AND customer_id IS NOT NULL
              GROUP BY 1),
            g AS (SELECT unnest(generate_series((SELECT min(period) FROM w),
                         (SELECT max(period) FROM w), INTERVAL 7 DAY)) AS period)
           SELECT g.period, coalesce(w.conversions, 0) AS conversions,
                  coalesce(w.revenue, 0.0) AS revenue
           FROM g LEFT JOIN w USING (period)
           WHERE g.period + INTERVAL 7 DAY <= timezone('UTC', $as_of)
           ORDER BY g.period""",
        snap,
    )


def response_frame(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> pl.DataFrame:
    """Campaign sends by T per ``channel, offer``: ``sent, responded, converted`` — a send counts
    as responded when the customer answered that campaign (opened, clicked or converted) by T,
    and as converted when one of the answers was a conversion."""
    return _pl(
        con,
        """WITH s AS (SELECT customer_id, campaign_id, channel, offer FROM events
                      WHERE type = 'campaign.sent' AND occurred_at <= $as_of),
                r AS (SELECT customer_id, campaign_id,
                             bool_or(response IN ('opened', 'clicked', 'converted')) AS responded,
                             bool_or(response = 'converted') AS converted
                      FROM events WHERE type = 'campaign.responded' AND occurred_at <= $as_of
                      GROUP BY ALL)
           SELECT s.channel, coalesce(s.offer, 'none') AS offer, count(*) AS sent,
                  count(*) FILTER (WHERE r.responded) AS responded,
                  count(*) FILTER (WHERE r.converted) AS converted
           FROM s LEFT JOIN r USING (customer_id, campaign_id)
           GROUP BY ALL ORDER BY ALL""",
        snap,
    )


def recorded_state(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> pl.DataFrame:
    """What radar recorded per customer up to T (latest by business time, ties by position).

    Columns: ``customer_id``, ``segment_<segmentation>`` (null after a ``segment.left``),
    ``lifecycle_stage`` and one column per score name (latest recorded value).
    """
    cols = [
        f"arg_max_null(CASE WHEN type = 'segment.entered' THEN segment END, {ORDER_KEY}) "
        f"FILTER (WHERE type IN ('segment.entered', 'segment.left') "
        f"AND segmentation = '{s}') AS segment_{s}"
        for s in SEGMENTATIONS
    ]
    cols.append(
        f"arg_max(stage, {ORDER_KEY}) FILTER (WHERE type = 'lifecycle.stage_changed') "
        "AS lifecycle_stage"
    )
    cols += [
        f"arg_max(value, {ORDER_KEY}) FILTER (WHERE type = 'score.changed' "
        f"AND score_name = '{n}') AS {n}"
        for n in SCORE_NAMES
    ]
    sql = (
        f"SELECT customer_id, {', '.join(cols)} FROM events WHERE occurred_at <= $as_of "
        "AND type IN ('segment.entered', 'segment.left', 'lifecycle.stage_changed', "
        "'score.changed') AND customer_id IS NOT NULL GROUP BY customer_id"
    )
    frame = _pl(con, sql, snap)
    schema: dict[str, pl.DataType] = {"customer_id": pl.String()}
    schema |= {f"segment_{s}": pl.String() for s in SEGMENTATIONS}
    schema |= {"lifecycle_stage": pl.String()} | {n: pl.Float64() for n in SCORE_NAMES}
    return frame.cast(pl.Schema(schema)) if frame.height else pl.DataFrame(schema=schema)


def previous_run(
    con: duckdb.DuckDBPyConnection, analysis: str, snap: Snapshot
) -> dict[str, Any] | None:
    """The latest recorded ``analysis.completed`` of ``analysis`` as of T (by business time,
    then position): ``run_id``, ``as_of``, ``parameters``, ``metrics`` (JSON decoded)."""
    import json

    rows = con.execute(
        f"SELECT run_id, as_of, parameters, metrics FROM events "
        f"WHERE type = 'analysis.completed' AND analysis = $name AND occurred_at <= $as_of "
        f"ORDER BY {ORDER_KEY} DESC LIMIT 1",
        {"name": analysis, "as_of": snap.as_of_utc},
    ).fetchall()
    if not rows:
        return None
    run_id, as_of, parameters, metrics = rows[0]
    return {
        "run_id": run_id,
        "as_of": as_of,
        "parameters": json.loads(parameters) if isinstance(parameters, str) else parameters or {},
        "metrics": json.loads(metrics) if isinstance(metrics, str) else metrics or {},
    }
