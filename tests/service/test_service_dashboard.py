"""A real server over a simulated radar (history, analyses, rules): the read endpoints and the
dashboard in a headless browser (Debian's ``chromium``; skipped when it is absent)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from service_support import RULES, service_settings

from radar.engine import build_engine
from radar.service.app import create_app
from radar.service.auth import KeyRing

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Served:
    url: str
    keys: dict[str, str]
    customer: str
    action_id: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(data: Path) -> tuple[str, str]:
    from radar.analytics.runner import run_analyses
    from radar.rules.apply import apply_rules, load_rules
    from radar.simulate import simulate

    sim = simulate(customers=300, seed=3)
    path = data.parent / "sim.jsonl"
    sim.write_jsonl(path)
    settings = service_settings(data)
    with build_engine(settings) as engine:
        engine.ingest_file(path)
        engine.project()
        run_analyses(engine, plots=False)
        apply_rules(engine, load_rules(RULES))
        engine.project()
        customer, action_id = engine.view.execute(
            "SELECT customer_id, action_id FROM events WHERE type = 'action.planned' "
            "ORDER BY position LIMIT 1"
        ).fetchall()[0]
    return str(customer), str(action_id)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("served") / "data"
    customer, action_id = _seed(data)
    ring = KeyRing.in_folder(data)
    keys = {role: ring.create(role)[0] for role in ("marketer", "auditor", "admin")}
    ring.close()
    port = _free_port()
    config = uvicorn.Config(
        create_app(service_settings(data)), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield Served(f"http://127.0.0.1:{port}", keys, customer, action_id)
    server.should_exit = True
    thread.join(timeout=30)


def get(served: Served, path: str, role: str = "admin") -> httpx.Response:
    return httpx.get(served.url + path, headers={"X-API-Key": served.keys[role]}, timeout=30)


def test_the_phases_count_every_part_of_the_loop(served: Served) -> None:
    p = get(served, "/phases", "marketer").json()
    assert p["operational"]["events"] > 1000
    assert p["stored"]["customers"] == 300
    assert p["stored"]["lag"] == 0
    assert p["analytical"]["analyses"] > 0
    assert p["rules"]["planned"] > 0
    assert p["stored"]["actions"]["open"] == p["rules"]["planned"]


def test_marketer_aggregates_hold_no_customer_ids(served: Served) -> None:
    for path in (
        "/segments",
        "/kpis/history",
        "/survival",
        "/lifecycle/transitions",
        "/rules/effect",
        "/phases",
        "/analyses",
    ):
        r = get(served, path, "marketer")
        assert r.status_code == 200, path
        assert served.customer not in r.text, path
    segments = get(served, "/segments", "marketer").json()["segments"]
    assert sum(s["customers"] for s in segments) == 300


def test_an_auditor_sees_a_customer_history_view_and_explanation(served: Served) -> None:
    cid = served.customer
    row = get(served, f"/customers/{cid}", "auditor").json()
    history = get(served, f"/customers/{cid}/history", "auditor").json()
    assert history["total"] == len(history["events"]) > 0
    assert row["actions_planned"] >= 1
    early = get(served, f"/customers/{cid}/view?as_of=2000-01-01T00:00:00Z", "auditor")
    assert early.status_code == 404
    late = get(served, f"/customers/{cid}/view", "auditor").json()
    assert late["row"]["purchases"] == row["purchases"]
    explained = get(served, f"/actions/{served.action_id}/explain", "auditor").json()
    assert explained["action"]["customer_id"] == cid
    assert get(served, "/customers/nobody", "auditor").status_code == 404
    assert get(served, "/actions/nothing/explain", "auditor").status_code == 404


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=20000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_dashboard_loads_without_errors_and_draws_every_chart(
    served: Served, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page = f"{served.url}/dashboard/#key={served.keys['admin']}&customer={served.customer}"
    run = _chromium("--enable-logging=stderr", "--v=0", "--dump-dom", page)
    dom = run.stdout
    assert 'data-ready="1"' in dom, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if re.search(r"error|uncaught|failed", line, re.I)]
    assert "data-failed" not in dom
    charts = re.findall(r'data-chart="(\w+)"[^>]*data-drawn="1"', dom)
    assert sorted(charts) == sorted(
        ["phases", "kpis", "segments", "profiles", "survival", "lifecycle", "effect", "customer"]
    )
    assert dom.count('class="series"') >= 3  # KPI lines and survival curves
    assert 'class="bar"' in dom and 'class="cell"' in dom and 'class="point"' in dom
    assert 'id="asof"' in dom
    artefacts = Path(os.environ.get("RADAR_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "dashboard.png"
    _chromium("--window-size=1280,2600", f"--screenshot={shot}", page)
    assert shot.exists() and shot.stat().st_size > 20_000
    print(f"dashboard screenshot: {shot}")
