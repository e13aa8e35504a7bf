"""Event factories for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def purchase(i: int, customer: str = "C-1", amount: float = 10.0, **extra: Any) -> dict[str, Any]:
    """A valid purchase envelope."""
    ts = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return {
        "event_id": f"order-{i}",
        "type": "purchase",
        "customer_id": customer,
        "occurred_at": ts.isoformat().replace("+00:00", "Z"),
        "source": "webshop",
        "channel": "web",
        "direction": "inbound",
        "data": {"order_id": str(i), "amount": amount, "product": "SKU-1"},
        **extra,
    }


def write_jsonl(path: Path, events: list[Any]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for e in events:
            fh.write((e if isinstance(e, str) else json.dumps(e)) + "\n")
    return path


def run_radar(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m radar ARGS`` as a user would, with ``RADAR_DATA=<cwd>/data`` (plus
    ``env``) and the embedded SQLite store."""
    environ = {**os.environ, "RADAR_DATA": str(cwd / "data"), "COLUMNS": "250", **env}
    environ.pop("RADAR_EVENT_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "radar", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
