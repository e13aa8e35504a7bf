"""The auditors' commands as a user runs them: history, view, explain, verify, forget, export."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import purchase, run_radar, write_jsonl

NAME = "Marguerite Vanhoutte-Claes"
EMAIL = "marguerite.claes@example.net"


def radar(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_radar(*args, cwd=cwd)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _radar_event(type_: str, customer: str | None, day: int, **data: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"{type_}-{customer}-{day}",
        "type": type_,
        "occurred_at": f"2026-01-{day:02d}T12:00:00Z",
        "source": "radar",
        "data": data,
    }
    if customer:
        event["customer_id"] = customer
    return event


def _linked(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "data": {**event["data"], "action_id": "A-1"}}


def _events() -> list[Any]:
    registered = {
        "event_id": "reg-1",
        "type": "customer.registered",
        "customer_id": "C-1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "source": "crm",
        "data": {"name": NAME, "email": EMAIL, "city": "Leuven"},
    }
    consent = {
        "event_id": "consent-1",
        "type": "consent.changed",
        "customer_id": "C-1",
        "occurred_at": "2026-01-01T01:00:00Z",
        "source": "web",
        "data": {"channel": "email", "granted": True},
    }
    action = {
        **_radar_event(
            "action.planned",
            "C-1",
            20,
            action_id="A-1",
            rule_id="winback",
            rule_version="1",
            rule_hash="rh-1",
            ruleset_hash="rs-1",
            view_position=8,
            condition_values={"purchases": 5},
        ),
        "channel": "email",
    }
    return [
        registered,
        consent,
        *[purchase(i, "C-1") for i in range(5)],
        _radar_event("ruleset.published", None, 19, ruleset_hash="rs-1", rules=[{"id": "winback"}]),
        action,
        _linked(purchase(400, "C-1")),
        purchase(500, "C-2"),
        '{"type": "purchase", "customer_id": "C-3", "data": {"note": "' + NAME + '"}}',
    ]


def _setup(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    src = write_jsonl(tmp_path / "src" / "events.jsonl", _events())
    done = radar("ingest", str(src), cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # one bad line, rejected
    assert radar("project", cwd=tmp_path).returncode == 0
    return src


@pytest.mark.slow
def test_history_view_explain_and_export_answer_in_json_and_tables(tmp_path: Path) -> None:
    _setup(tmp_path)
    h = _json(radar("history", "C-1", "--format", "json", cwd=tmp_path))
    assert h["total"] == 9 and h["events"][0]["personal"] == {"name": NAME, "email": EMAIL}
    only = _json(
        radar("history", "C-1", "--type", "action.planned", "--format", "json", cwd=tmp_path)
    )
    assert [e["data"]["action_id"] for e in only["events"]] == ["A-1"]
    table = radar("history", "C-1", cwd=tmp_path)
    assert table.returncode == 0 and "action.planned" in table.stdout

    v = _json(
        radar("view", "C-1", "--as-of", "2026-01-01T02:30:00Z", "--format", "json", cwd=tmp_path)
    )
    assert v["row"]["purchases"] == 3 and v["row"]["consent_email"] is True
    assert radar("view", "C-1", cwd=tmp_path).returncode == 0

    x = _json(radar("explain", "A-1", "--format", "json", cwd=tmp_path))
    assert x["rule"]["entry"] == {"id": "winback"}
    assert x["conditions"] == [
        {"column": "purchases", "recorded": 5, "reconstructed": 5, "matches": True}
    ]
    assert [e["data"]["order_id"] for e in x["outcome"]["linked"]] == ["400"]
    explained = radar("explain", "A-1", cwd=tmp_path)
    assert explained.returncode == 0 and "winback" in explained.stdout

    doc = _json(radar("export", "C-1", cwd=tmp_path))
    assert doc["personal_data"] == {"name": NAME, "email": EMAIL}
    assert [a["data"]["action_id"] for a in doc["actions"]] == ["A-1"]


@pytest.mark.slow
def test_verify_passes_on_an_untouched_store_and_fails_on_a_tampered_one(
    tmp_path: Path,
) -> None:
    _setup(tmp_path)
    clean = _json(radar("verify", "--format", "json", cwd=tmp_path))
    assert clean["ok"] and clean["sealed"]["total"] == 11
    assert radar("verify", cwd=tmp_path).returncode == 0
    sealed = radar("verify", "--seal", cwd=tmp_path)
    assert sealed.returncode == 0 and "chain head" in sealed.stdout
    with sqlite3.connect(tmp_path / "data" / "events.sqlite") as conn:
        conn.execute(
            "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), '10.0', "
            "'10.5') AS BLOB) WHERE rowid = 4"
        )
    conn.close()
    tampered = radar("verify", "--format", "json", cwd=tmp_path)
    assert tampered.returncode == 1
    report = json.loads(tampered.stdout)
    assert [(f["kind"], f["position"]) for f in report["chain"]["findings"]] == [("modified", 4)]
    assert not report["replay"]["ok"]
    table = radar("verify", cwd=tmp_path)
    assert table.returncode == 1 and "modified" in table.stdout


@pytest.mark.slow
def test_forget_leaves_no_personal_data_in_any_file_radar_wrote(tmp_path: Path) -> None:
    _setup(tmp_path)
    export = tmp_path / "exports" / "c1.json"
    assert radar("export", "C-1", "--out", str(export), cwd=tmp_path).returncode == 0
    needles = (NAME.encode(), EMAIL.encode())

    def holding() -> list[str]:
        files = [p for p in tmp_path.rglob("*") if p.is_file() and "src" not in p.parts]
        return sorted(str(p) for p in files if any(n in p.read_bytes() for n in needles))

    assert holding() == [str(export)]
    assert (tmp_path / "data" / "rejects" / "events.jsonl.rejects.jsonl").exists()
    done = _json(radar("forget", "C-1", "--yes", "--format", "json", cwd=tmp_path))
    assert done["key_destroyed"] and done["shredded_exports"] == [str(export.resolve())]
    assert holding() == []
    h = _json(radar("history", "C-1", "--format", "json", cwd=tmp_path))
    assert h["forgotten"] and h["events"][0]["personal"] == "[forgotten]"
    v = _json(radar("view", "C-1", "--format", "json", cwd=tmp_path))
    assert (v["row"]["purchases"], v["row"]["forgotten"]) == (6, True)
    assert radar("verify", cwd=tmp_path).returncode == 0


RULES = """
rules:
  - id: thank-buyers
    description: Thank every customer who bought by e-mail
    owner: auditors
    when: purchases >= 1
    action: {channel: email, campaign_id: THANKS-1}
"""


@pytest.mark.slow
def test_history_explain_and_verify_cover_the_decisions_of_applied_rules(tmp_path: Path) -> None:
    _setup(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "buyers.yaml").write_text(RULES, encoding="utf-8")
    applied = _json(radar("rules", "apply", "--format", "json", cwd=tmp_path))
    assert (applied["planned"], applied["suppressed"]) == (1, 1)  # C-2 gave no consent
    h = _json(radar("history", "C-1", "--type", "action.planned", "--format", "json", cwd=tmp_path))
    old, new = h["events"]  # the hand-written action, then the rule's decision
    assert old["data"]["action_id"] == "A-1"
    assert new["event_id"] == new["data"]["action_id"]
    assert (new["stream"], new["source"], new["channel"]) == (
        "radar/actions.decided",
        "radar.rules",
        "email",
    )
    assert (new["data"]["rule_id"], new["data"]["campaign_id"]) == ("thank-buyers", "THANKS-1")
    x = _json(radar("explain", new["event_id"], "--format", "json", cwd=tmp_path))
    assert x["consistent"] and x["action"]["customer_id"] == "C-1"
    doc = _json(radar("export", "C-2", cwd=tmp_path))
    assert [a["type"] for a in doc["actions"]] == ["action.suppressed"]
    assert radar("verify", cwd=tmp_path).returncode == 0


BAD_INPUT = [
    (("history", "C-404"), "unknown customer 'C-404'"),
    (("view", "C-404"), "unknown customer 'C-404'"),
    (("export", "C-404"), "unknown customer 'C-404'"),
    (("forget", "C-404", "--yes"), "unknown customer 'C-404'"),
    (("view", "C-1", "--as-of", "next tuesday"), "cannot read 'next tuesday'"),
    (("history", "C-1", "--type", "purchse"), "did you mean 'purchase'"),
    (("explain", "A-404"), "no action 'A-404'"),
]


@pytest.mark.slow
def test_bad_input_is_one_clear_error_line(tmp_path: Path) -> None:
    _setup(tmp_path)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    cases = [*BAD_INPUT, (("view", "C-1", "--known-at", tomorrow), "in the future")]
    for args, message in cases:
        done = radar(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "error:" in done.stderr and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""
    (tmp_path / "data" / "keys.sqlite").unlink()
    done = radar("history", "C-1", cwd=tmp_path)
    assert done.returncode == 2 and "key store" in done.stderr and "missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_audit_commands_on_an_empty_data_folder_say_so(tmp_path: Path) -> None:
    done = radar("--data", str(tmp_path / "nothing"), "verify", cwd=tmp_path)
    assert done.returncode == 2 and "no event store" in done.stderr
    assert not (tmp_path / "nothing" / "events.sqlite").exists()
