"""Right of access: everything radar holds about one customer, as one JSON document.

:func:`export_customer` gathers the customer's live view row (with the relative columns measured
now), their current personal data (the decrypted profile fields, latest value of each, while the
key exists), the full history read from the event store (personal fields decrypted, or
``"[forgotten]"``), the groups and scores analytics recorded (current values and every event), the
consent per channel, and every action decision with its provenance (each decision of the rules'
``actions.decided`` events as its own ``action.*`` entry, see :mod:`radar.audit.history`).

:func:`write_export` writes that document to a file and records the file in
``<data>/audit/exports.jsonl`` (customer id, path, time — no personal data), so that forgetting the
customer later can shred every export radar wrote (:func:`recorded_exports`,
:func:`drop_recorded_exports`).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radar.audit.asof import customer_view
from radar.audit.explain import ACTION_TYPES, DERIVED_TYPES
from radar.audit.history import FORGOTTEN, read_history
from radar.domain.vocabulary import CONSENT_CHANNELS
from radar.engine import Engine

FORMAT = "radar-export-v1"
ANALYTIC_COLUMNS = (
    "segment",
    "rfm_group",
    "lifecycle_stage",
    "lead_score",
    "churn_risk",
    "clv",
    "p_alive",
)


def export_customer(engine: Engine, customer_id: str) -> dict[str, Any]:
    """Everything radar holds about ``customer_id`` (NotFound for an unknown customer).

    The view is caught up first, so that the history finds the customer's decisions through
    it rather than by scanning the log after it.
    """
    view = customer_view(engine, customer_id)
    history = read_history(engine, customer_id)
    events = [e.to_dict() for e in history.events]
    profile: dict[str, Any] = {}
    for e in history.events:
        if isinstance(e.personal, dict) and e.type.startswith("customer."):
            profile.update(e.personal)
    personal: dict[str, Any] | str = FORGOTTEN if history.forgotten else profile
    return {
        "format": FORMAT,
        "customer_id": customer_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "forgotten": history.forgotten,
        "personal_data": personal,
        "view": {**view.row, **view.relative},
        "consent": {ch: view.row[f"consent_{ch}"] for ch in CONSENT_CHANNELS},
        "analytics": {
            "current": {c: view.row[c] for c in ANALYTIC_COLUMNS},
            "events": [e for e in events if e["type"] in DERIVED_TYPES],
        },
        "actions": [e for e in events if e["type"] in ACTION_TYPES],
        "history": events,
    }


def _default(o: object) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    return str(o)


def exports_log(engine: Engine) -> Path:
    """Where radar records the export files it wrote."""
    return engine.settings.data_dir / "audit" / "exports.jsonl"


def write_export(engine: Engine, customer_id: str, path: Path) -> dict[str, Any]:
    """Write the export of ``customer_id`` to ``path`` and record the file; returns the export."""
    doc = export_customer(engine, customer_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, default=_default, ensure_ascii=False, indent=2) + "\n")
    log = exports_log(engine)
    log.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "customer_id": customer_id,
        "path": str(path.resolve()),
        "written_at": datetime.now(UTC).isoformat(),
    }
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    return doc


def recorded_exports(engine: Engine, customer_id: str) -> list[Path]:
    """The export files radar wrote for ``customer_id`` (that still exist)."""
    log = exports_log(engine)
    if not log.exists():
        return []
    paths = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            if entry.get("customer_id") == customer_id and Path(entry["path"]).exists():
                paths.append(Path(entry["path"]))
    return sorted(set(paths))


def drop_recorded_exports(engine: Engine, customer_id: str) -> None:
    """Remove ``customer_id``'s entries from the exports log (rewritten atomically)."""
    log = exports_log(engine)
    if not log.exists():
        return
    keep = [
        line
        for line in log.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("customer_id") != customer_id
    ]
    tmp = log.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
    os.replace(tmp, log)
