"""The integral customer view as it was: as of business time T, as known at recorded time T2.

The as-of view is the ONE definition of a customer's row (:func:`customer_rows_sql`) run over the
customer's rows of the ``events`` fact table with ``occurred_at <= T AND recorded_at <= T2``.
Because the live ``customers`` row is that same function over all the customer's events, the view
"as of now, as known at the moment M" is exactly the live row a reader saw at M (when the view
had caught up with everything recorded by M), ``position`` included. Late events — recorded after
they occurred — are what make ``--as-of`` and ``--known-at`` differ.

``known_at`` defaults to "everything recorded"; ``as_of`` defaults to "everything that occurred".
Relative columns (``days_since_…``, ``tenure_days``) are measured at T (or now).

:func:`parse_moment` turns a user's time (ISO 8601, a date, or ``now``; naive means UTC) into an
aware UTC datetime and refuses unparsable times and times in the future.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from radar.audit.history import require_store
from radar.domain.columns import CUSTOMER_COLUMNS
from radar.domain.errors import NotFound, RadarError
from radar.engine import Engine
from radar.projections.customers import STORED_COLUMNS, customer_rows_sql, radar_sql

RELATIVE_COLUMNS = tuple(c.name for c in CUSTOMER_COLUMNS.values() if c.relative)


def parse_moment(text: str, option: str = "time", *, now: datetime | None = None) -> datetime:
    """``text`` as an aware UTC datetime; RadarError when unparsable or in the future."""
    current = now or datetime.now(UTC)
    raw = text.strip()
    if raw.lower() == "now":
        return current
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise RadarError(
            f"{option}: cannot read {text!r} as a time (use ISO 8601, e.g. 2026-03-01 or "
            "2026-03-01T10:15:00Z, or 'now')"
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > current:
        raise RadarError(
            f"{option}: {moment.isoformat()} is in the future (now is {current.isoformat()}); "
            "radar cannot know what it will know"
        )
    return moment


@dataclass(frozen=True)
class CustomerView:
    """One customer's row of the integral view as of ``as_of``, as known at ``known_at``."""

    customer_id: str
    as_of: datetime | None
    known_at: datetime | None
    row: dict[str, Any]
    relative: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "known_at": self.known_at.isoformat() if self.known_at else None,
            "row": self.row,
            "relative": self.relative,
        }


def _rows(
    con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], reference: str
) -> list[dict[str, Any]]:
    sql = radar_sql(f"({customer_rows_sql('events', where)})", reference)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def customer_filter(
    customer_id: str,
    *,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
    upto_position: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (and its parameters) selecting one customer's events as of a moment."""
    where = ["customer_id = $cid"]
    params: dict[str, Any] = {"cid": customer_id}
    if as_of is not None:
        where.append("occurred_at <= $as_of")
        params["as_of"] = as_of
    if known_at is not None:
        where.append("recorded_at <= $known_at")
        params["known_at"] = known_at
    if upto_position is not None:
        where.append("position <= $upto")
        params["upto"] = upto_position
    return " AND ".join(where), params


def view_row(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    *,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
    upto_position: int | None = None,
    reference: datetime | None = None,
    extra: tuple[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(stored columns, relative columns) of the customer's row, or None when it had no events.

    ``extra`` is a further SQL condition with its parameters, ANDed to the filter.
    """
    where, params = customer_filter(
        customer_id, as_of=as_of, known_at=known_at, upto_position=upto_position
    )
    if extra is not None:
        where = f"{where} AND ({extra[0]})"
        params.update(extra[1])
    params["ref"] = reference or as_of or datetime.now(UTC)
    rows = _rows(con, where, params, "CAST($ref AS TIMESTAMPTZ)")
    if not rows:
        return None
    row = rows[0]
    return (
        {c: row[c] for c in STORED_COLUMNS},
        {c: row[c] for c in RELATIVE_COLUMNS},
    )


def customer_view(
    engine: Engine,
    customer_id: str,
    *,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
    catch_up: bool = True,
) -> CustomerView:
    """The customer's row as of business time ``as_of`` with what was recorded by ``known_at``.

    The view is first caught up with the log (``catch_up``), so "known at now" means everything
    recorded. Raises NotFound for an unknown customer, and for a customer of whom nothing had
    occurred by ``as_of`` and been recorded by ``known_at``.
    """
    require_store(engine)
    if catch_up:
        engine.project()
    con = engine.view
    found = view_row(con, customer_id, as_of=as_of, known_at=known_at)
    if found is None:
        known = con.execute(
            "SELECT min(occurred_at), min(recorded_at) FROM events WHERE customer_id = $cid",
            {"cid": customer_id},
        ).fetchall()[0]
        if known[0] is None:
            raise NotFound(
                f"unknown customer {customer_id!r}: the event log holds no event of theirs"
            )
        raise NotFound(
            f"customer {customer_id!r} had no events that occurred by "
            f"{as_of.isoformat() if as_of else 'now'} and were recorded by "
            f"{known_at.isoformat() if known_at else 'now'} (their first event occurred at "
            f"{known[0].isoformat()}, the first was recorded at {known[1].isoformat()})"
        )
    row, relative = found
    return CustomerView(customer_id, as_of, known_at, row, relative)


def live_row(engine: Engine, customer_id: str) -> dict[str, Any] | None:
    """The customer's row of the live ``customers`` table (stored columns), or None."""
    cols = ", ".join(f'"{c}"' for c in STORED_COLUMNS)
    cur = engine.view.execute(
        f"SELECT {cols} FROM customers WHERE customer_id = $cid", {"cid": customer_id}
    )
    rows = cur.fetchall()
    return dict(zip(STORED_COLUMNS, rows[0], strict=True)) if rows else None
