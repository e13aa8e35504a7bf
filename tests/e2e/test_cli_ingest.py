"""The ``radar`` command as a user runs it: a file with bad lines, its summary and reject file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from factories import purchase, run_radar, write_jsonl


def radar(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_radar(*args, cwd=cwd)


def test_ingesting_a_file_with_bad_lines_writes_rejects_and_a_summary(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "events.jsonl",
        [purchase(1), "{oops", {**purchase(3), "type": "purchse"}, purchase(4)],
    )
    done = radar("ingest", str(path), "--format", "json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)[0]
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (2, 0, 2)
    rejects = [json.loads(line) for line in Path(summary["rejects_file"]).read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rejects] == [(2, "event"), (3, "type")]
    again = radar("ingest", str(path), "--format", "json", cwd=tmp_path)
    assert json.loads(again.stdout)[0]["duplicates"] == 2


def test_a_missing_file_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    done = radar("ingest", str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert done.returncode == 2
    assert "no such file" in done.stderr
    assert "Traceback" not in done.stderr


def test_schema_prints_the_json_schema_of_every_event_type(tmp_path: Path) -> None:
    done = radar("schema", cwd=tmp_path)
    assert done.returncode == 0
    schemas = json.loads(done.stdout)
    assert "purchase" in schemas and "customer.forgotten" in schemas
    one = json.loads(radar("schema", "purchase", cwd=tmp_path).stdout)
    assert one["properties"]["type"]["const"] == "purchase"


def test_project_then_status_reports_the_view(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", [purchase(i, f"C-{i % 3}") for i in range(30)])
    assert radar("ingest", str(path), cwd=tmp_path).returncode == 0
    assert "applied 30 events" in radar("project", cwd=tmp_path).stdout
    status = json.loads(radar("status", "--format", "json", cwd=tmp_path).stdout)
    assert status["customers"] == 3 and status["events"] == 30
