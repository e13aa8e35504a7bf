"""Consent audit: was any action planned on a channel without the customer's consent then?

For every ``action.planned`` event on a channel that needs consent
(:data:`~radar.domain.vocabulary.CONSENT_CHANNELS`), the customer's consent at that moment is the
latest ``consent.changed`` for that channel that had occurred at or before the action's business
time (latest by business time, ties by log position — as in the customer view). No such event
(never stated) counts as no consent, as it does for the rules.

Each violation also says whether radar could have known: ``known_when_planned`` is True when the
consent recorded *before* the action (log positions below the action's) also lacked consent, and
False when the withdrawal that makes it a violation arrived late (recorded after the action).
One SQL query over the events table; no loop over actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from radar.audit.history import require_store
from radar.domain.vocabulary import CONSENT_CHANNELS
from radar.engine import Engine
from radar.projections.customers import ORDER_KEY

_CHANNELS = "(" + ", ".join(f"'{c}'" for c in CONSENT_CHANNELS) + ")"
_KEY = ORDER_KEY.replace("occurred_at", "c.occurred_at").replace("position", "c.position")

SQL = f"""
WITH a AS (
    SELECT position, customer_id, occurred_at, recorded_at, channel, action_id, rule_id
    FROM events WHERE type = 'action.planned' AND channel IN {_CHANNELS}
),
c AS (
    SELECT position, customer_id, occurred_at, data_channel, granted
    FROM events WHERE type = 'consent.changed' AND data_channel IN {_CHANNELS}
),
j AS (
    SELECT a.position, a.customer_id, a.occurred_at, a.recorded_at, a.channel, a.action_id,
           a.rule_id,
           arg_max(c.granted, {_KEY}) AS granted,
           arg_max(c.position, {_KEY}) AS consent_position,
           arg_max(c.granted, {_KEY}) FILTER (WHERE c.position < a.position) AS granted_known
    FROM a LEFT JOIN c
      ON c.customer_id = a.customer_id AND c.data_channel = a.channel
     AND c.occurred_at <= a.occurred_at
    GROUP BY ALL
)
SELECT action_id, customer_id, channel, rule_id, occurred_at, recorded_at, position,
       granted, consent_position, granted_known IS NOT TRUE AS known_when_planned,
       count(*) OVER () AS violations
FROM j WHERE granted IS NOT TRUE
ORDER BY position
LIMIT $limit
"""


@dataclass(frozen=True)
class Violation:
    """An action planned on ``channel`` while the customer's consent was not granted."""

    action_id: str
    customer_id: str
    channel: str
    rule_id: str
    occurred_at: Any
    recorded_at: Any
    position: int
    consent: bool | None
    consent_position: int | None
    known_when_planned: bool

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["occurred_at"] = self.occurred_at.isoformat()
        d["recorded_at"] = self.recorded_at.isoformat()
        return d


@dataclass
class ConsentReport:
    """``checked`` planned actions on consent channels; ``violations`` (listed up to a limit)."""

    checked: int
    count: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.count == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "violations": self.count,
            "listed": [v.to_dict() for v in self.violations],
        }


def consent_violations(
    engine: Engine, *, catch_up: bool = True, limit: int = 10_000
) -> ConsentReport:
    """Every planned action without consent on its channel at that moment (see module doc)."""
    require_store(engine)
    if catch_up:
        engine.project()
    con = engine.view
    checked = con.execute(
        f"SELECT count(*) FROM events WHERE type = 'action.planned' AND channel IN {_CHANNELS}"
    ).fetchall()[0][0]
    rows = con.execute(SQL, {"limit": limit}).fetchall()
    violations = [Violation(*r[:-1]) for r in rows]
    return ConsentReport(int(checked), int(rows[0][-1]) if rows else 0, violations)
