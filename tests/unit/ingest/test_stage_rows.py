"""The ``append`` API stages a few events row by row; the staged rows must be exactly those of
the Arrow staging that bulk batches use (repeats dropped, personal fields encrypted, a forgotten
customer's personal data dropped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import radar.ingest.pipeline as pipeline
from radar.domain.envelope import parse_event
from radar.ingest.pipeline import STAGE_INPUT, Ingestor
from radar.ingest.py_codec import encode_event
from radar.privacy.keystore import KeyStore
from radar.store.sqlite_store import SQLiteEventStore


def _registered(customer: str, event_id: str, name: str | None) -> dict[str, Any]:
    data = {"country": "NL"} | ({"name": name} if name else {})
    return {
        "event_id": event_id,
        "type": "customer.registered",
        "customer_id": customer,
        "occurred_at": "2026-02-03T04:05:06Z",
        "source": "crm",
        "data": data,
    }


@pytest.fixture()
def ingestor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ingestor:
    # encryption is randomised: a deterministic stand-in makes the two stagings comparable
    monkeypatch.setattr(pipeline, "encrypt", lambda key, cid, text: f"sealed({cid}:{text})")
    keys = KeyStore(tmp_path / "keys.sqlite")
    keys.keys_for(["C-2"])
    keys.forget("C-2")
    return Ingestor(SQLiteEventStore(tmp_path / "events.sqlite"), keys, workers=1)


def test_staging_row_by_row_gives_the_rows_of_the_arrow_staging(ingestor: Ingestor) -> None:
    raw = [
        _registered("C-1", "e-1", "Zoë"),
        _registered("C-2", "e-2", "Forgotten Person"),
        _registered("C-3", "e-3", None),
        _registered("C-1", "e-1", "Zoë again"),  # a repeat of e-1's key: the first line wins
        {**_registered("C-4", "e-4", "Ann"), "source": "shop"},
    ]
    rows = [{"line_no": i, **encode_event(parse_event(r))} for i, r in enumerate(raw)]

    by_rows = ingestor._stage_rows(rows)
    by_arrow = ingestor._stage(pa.Table.from_pylist(rows, schema=STAGE_INPUT), [])

    assert by_rows.staged is not None and by_arrow.staged is not None
    assert by_rows.staged.equals(by_arrow.staged)
    assert by_rows.in_batch_duplicates == by_arrow.in_batch_duplicates == [3]
    bodies = by_rows.staged.column("body").to_pylist()
    assert '"pii":"sealed(C-1:' in bodies[0]
    assert '"pii"' not in bodies[1]  # forgotten: no key, the personal data is dropped
    assert '"pii"' not in bodies[2]  # nothing personal
