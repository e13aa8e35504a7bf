"""``radar analyze`` as a user runs it: all analyses with JSON output and plots, one analysis,
a past moment, and clear messages (not tracebacks) for too little data or a wrong name."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from factories import purchase, run_radar, write_jsonl


def radar(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_radar(*args, cwd=cwd)


@pytest.mark.slow
def test_analyze_runs_every_analysis_records_it_and_writes_plots(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    assert radar("simulate", "--customers", "600", "--seed", "3", "--out", str(history),
                 cwd=tmp_path).returncode == 0  # fmt: skip
    assert radar("ingest", str(history), cwd=tmp_path).returncode == 0
    done = radar("analyze", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"as_of", "explicit_as_of", "view_position", "recorded", "appended", "analyses"} <= set(
        out
    )
    runs = {a["analysis"]: a for a in out["analyses"]}
    assert list(runs) == ["rfm", "segments", "clv", "leads", "churn", "lifecycle", "mix"]
    for name, run in runs.items():
        if run["status"] == "skipped":  # small data: allowed, but it must say why
            assert run["reason"].startswith(f"{name} skipped: ")
            assert run["reason"] in done.stderr
            continue
        assert {"run_id", "parameters", "metrics", "details", "plots", "events"} <= set(run)
        assert run["events"]["analysis.completed"] == 1
        for plot in run["plots"]:
            assert Path(plot).stat().st_size > 1000
    assert runs["clv"]["status"] == "completed"
    assert set(runs["clv"]["metrics"]["bgnbd"]["parameters"]) == {"r", "alpha", "a", "b"}
    assert runs["clv"]["metrics"]["bgnbd"]["time_unit"] == "weeks"
    assert set(runs["clv"]["metrics"]["gamma_gamma"]["parameters"]) == {"p", "q", "v"}
    assert out["appended"]["accepted"] > 600
    status = json.loads(radar("status", "--format", "json", cwd=tmp_path).stdout)
    assert status["customers"] == 600

    past = radar("analyze", "rfm", "--as-of", "2025-01-01", "--no-record", "--format", "json",
                 cwd=tmp_path)  # fmt: skip
    assert past.returncode == 0, past.stderr
    one = json.loads(past.stdout)
    assert one["explicit_as_of"] and one["as_of"] == "2025-01-01T00:00:00Z"
    assert [a["analysis"] for a in one["analyses"]] == ["rfm"]
    assert one["appended"] == {} and not one["recorded"]

    shown = radar("analyze", "mix", "--no-record", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "response rates per channel" in shown.stdout


def test_a_single_analysis_without_enough_data_is_skipped_with_a_clear_message(
    tmp_path: Path,
) -> None:
    path = write_jsonl(
        tmp_path / "events.jsonl", [purchase(i, customer=f"C-{i}") for i in range(5)]
    )
    assert radar("ingest", str(path), cwd=tmp_path).returncode == 0
    done = radar("analyze", "leads", cwd=tmp_path)
    assert done.returncode == 1
    assert "leads skipped" in done.stderr and "no leads" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_analysis_or_moment_is_a_usage_error(tmp_path: Path) -> None:
    done = radar("analyze", "segmnts", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown analysis 'segmnts'" in done.stderr and "segments" in done.stderr
    bad = radar("analyze", "--as-of", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--as-of" in bad.stderr and "Traceback" not in bad.stderr


def test_the_cli_knows_every_analysis_in_run_order() -> None:
    from radar.analytics.analyses import ANALYSES
    from radar.cli.analyze import NAMES

    assert tuple(ANALYSES) == NAMES
