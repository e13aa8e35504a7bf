"""Right to be forgotten by crypto-shredding, in a log that is never rewritten.

:func:`forget_customer` makes a customer's personal data unrecoverable from every file radar wrote:

1. the customer's data key is destroyed (:meth:`KeyStore.forget`: deleted with SQLite
   ``secure_delete`` and the file vacuumed; a tombstone stops a new key being made), so the
   AES-GCM ciphertext of their personal fields in the event log can no longer be read;
2. a ``customer.forgotten`` event is appended (event id ``forgotten:<customer>``, source
   ``radar``: forgetting twice records it once) — the log says what happened and when;
3. the export files radar wrote for the customer (see :mod:`radar.audit.export`) are overwritten
   and deleted;
4. the view is caught up (the customer's row shows ``forgotten``) and checkpointed, so no old
   DuckDB page lingers in a WAL. The view holds no personal fields in the first place: the
   ``events`` table has one column per *non-personal* payload field and ``has_pii`` only.

Non-personal facts stay: purchases, contacts, scores still count in the view and the analyses,
and the log (and therefore ``radar verify``) is unchanged. The key is destroyed before the event
is appended: if the append fails, the data is already unreadable and forgetting again records it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radar.audit.export import drop_recorded_exports, recorded_exports
from radar.audit.history import require_customer
from radar.domain.errors import ConfigurationError, RadarError
from radar.engine import Engine

SOURCE = "radar"


@dataclass(frozen=True)
class ForgetResult:
    """What forgetting did."""

    customer_id: str
    key_destroyed: bool
    recorded: bool
    position: int | None
    personal_events: int
    shredded_exports: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def forget_customer(
    engine: Engine,
    customer_id: str,
    *,
    reason: str | None = None,
    request_id: str | None = None,
) -> ForgetResult:
    """Crypto-shred ``customer_id``'s personal data and record it (see the module docstring)."""
    require_customer(engine, customer_id)
    keys_path = engine.settings.keys_path
    if not keys_path.exists():
        raise ConfigurationError(
            f"the key store {keys_path} is missing: restore it before forgetting, or a restored "
            "copy would still hold the customer's key"
        )
    engine.project()  # take the view now: if another process holds it, nothing has changed yet
    stream = engine.store.read_stream(customer_id)
    personal = sum(1 for s in stream.column("state").to_pylist() if b'"pii":"' in bytes(s))
    destroyed = engine.keys.forget(customer_id)
    data: dict[str, Any] = {}
    if reason:
        data["reason"] = reason
    if request_id:
        data["request_id"] = request_id
    result = engine.append(
        [
            {
                "event_id": f"forgotten:{customer_id}",
                "type": "customer.forgotten",
                "customer_id": customer_id,
                "occurred_at": datetime.now(UTC).isoformat(),
                "source": SOURCE,
                "data": data,
            }
        ]
    )[0]
    if result.status == "rejected":
        raise RadarError(f"customer.forgotten was rejected: {result.field}: {result.reason}")
    shredded = [str(p) for p in recorded_exports(engine, customer_id)]
    for p in shredded:
        shred_file(Path(p))
    drop_recorded_exports(engine, customer_id)
    engine.project()
    rows = engine.view.execute(
        "SELECT min(position) FROM events WHERE type = 'customer.forgotten' AND customer_id = $c",
        {"c": customer_id},
    ).fetchall()
    engine.view.execute("CHECKPOINT")
    position = rows[0][0] if rows else None
    return ForgetResult(
        customer_id=customer_id,
        key_destroyed=destroyed,
        recorded=result.status == "accepted",
        position=position,
        personal_events=personal,
        shredded_exports=shredded,
    )


def shred_file(path: Path) -> None:
    """Overwrite a file with zeros (flushed to disk), then delete it."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.write(b"\0" * size)
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()
