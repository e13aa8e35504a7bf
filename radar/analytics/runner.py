"""Run one or all analyses over the view as of a moment, and record every run as events.

:func:`run_analyses` is the whole analytical phase of the loop:

1. catch the view up with the log and take a :class:`~radar.analytics.features.Snapshot` — the
   as-of moment (default: the latest operational event) and the view position read;
2. run the requested analyses in :data:`~radar.analytics.analyses.ANALYSES` order, sharing feature
   frames (this run's k-means segments feed the churn model's per-segment curves). An analysis
   with too little data is reported as ``skipped`` with the reason and the others still run;
3. record (unless ``record=False``): per completed analysis an ``analysis.completed`` event and
   the per-customer changes (:mod:`radar.analytics.recording`), all appended in bulk, then
   project once so the customer view shows the new segments, stages and scores.

Every analysis compares against what was recorded up to the same as-of moment, so a run as of a
past T records only what changed as of T. ``run_id`` is deterministic (analysis, version, as-of,
view position, parameters): recording the same run twice stores nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from radar.analytics import features as F
from radar.analytics import recording
from radar.analytics.analyses import ANALYSES, VERSIONS, AnalysisOptions, Context, Outcome, Table
from radar.analytics.models.errors import InsufficientData
from radar.analytics.models.mix import SingularDesign
from radar.domain.errors import RadarError
from radar.domain.suggest import did_you_mean
from radar.engine import Engine

Status = Literal["completed", "skipped"]


@dataclass
class AnalysisRun:
    """One analysis of one run: what it read, what it found, what was recorded."""

    analysis: str
    version: str
    status: Status
    as_of: datetime
    view_position: int
    seconds: float
    run_id: str | None = None
    reason: str | None = None
    outcome: Outcome | None = None
    events: dict[str, int] = field(default_factory=dict)

    @property
    def tables(self) -> list[Table]:
        return self.outcome.tables if self.outcome else []

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape of one analysis (see :mod:`radar.cli.analyze`)."""
        out: dict[str, Any] = {
            "analysis": self.analysis,
            "version": self.version,
            "status": self.status,
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat() + "Z",
            "view_position": self.view_position,
            "seconds": round(self.seconds, 3),
        }
        if self.status == "skipped":
            return out | {"reason": self.reason}
        assert self.outcome is not None
        return out | {
            "parameters": recording.jsonable(self.outcome.parameters),
            "metrics": recording.jsonable(self.outcome.metrics),
            "details": recording.jsonable(self.outcome.details),
            "plots": [str(p) for p in self.outcome.plots],
            "events": dict(self.events),
        }


@dataclass
class AnalysisReport:
    """All analyses of one invocation."""

    as_of: datetime
    view_position: int
    explicit_as_of: bool
    recorded: bool
    runs: list[AnalysisRun]
    appended: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def run(self, name: str) -> AnalysisRun:
        for r in self.runs:
            if r.analysis == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() + "Z",
            "explicit_as_of": self.explicit_as_of,
            "view_position": self.view_position,
            "recorded": self.recorded,
            "appended": dict(self.appended),
            "seconds": round(self.seconds, 3),
            "analyses": [r.to_dict() for r in self.runs],
        }


def analysis_names(names: Sequence[str] | None) -> list[str]:
    """The analyses to run, in run order; a RadarError names an unknown one."""
    if not names:
        return list(ANALYSES)
    for n in names:
        if n not in ANALYSES:
            raise RadarError(
                f"unknown analysis {n!r}{did_you_mean(n, list(ANALYSES))} "
                f"(analyses: {', '.join(ANALYSES)})"
            )
    return [n for n in ANALYSES if n in set(names)]


def plots_dir(engine: Engine, snap: F.Snapshot) -> Path:
    base = engine.settings.data_dir / "plots"
    return base / f"as_of_{snap.as_of:%Y%m%dT%H%M%S}" if snap.explicit else base


def run_analyses(
    engine: Engine,
    names: Sequence[str] | None = None,
    *,
    as_of: datetime | None = None,
    options: AnalysisOptions | None = None,
    record: bool = True,
    plots: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> AnalysisReport:
    """Run the named analyses (default all) as of ``as_of`` (default: the latest event)."""
    started = time.perf_counter()
    wanted = analysis_names(names)
    engine.project()
    con = engine.view
    try:
        snap = F.snapshot(con, as_of)
    except InsufficientData as e:
        now = datetime.now().replace(microsecond=0)
        position = F.view_position(con)
        nothing = [
            AnalysisRun(n, VERSIONS[n], "skipped", now, position, 0.0, reason=f"{n} skipped: {e}")
            for n in wanted
        ]
        return AnalysisReport(now, position, as_of is not None, False, nothing)
    ctx = Context(
        con, snap, options or AnalysisOptions(), plots_dir(engine, snap) if plots else None
    )
    previous = F.recorded_state(con, snap) if record else None
    runs: list[AnalysisRun] = []
    lines: list[pl.Series] = []
    for name in wanted:
        log(f"{name}…")
        t0 = time.perf_counter()
        version = VERSIONS[name]
        try:
            outcome = ANALYSES[name](ctx)
        except (InsufficientData, SingularDesign) as e:
            reason = str(e)
            runs.append(
                AnalysisRun(
                    name,
                    version,
                    "skipped",
                    snap.as_of,
                    snap.view_position,
                    time.perf_counter() - t0,
                    reason=f"{name} skipped: {reason}",
                )
            )
            continue
        run_id = recording.run_id_for(name, version, snap, outcome.parameters)
        run = AnalysisRun(
            name,
            version,
            "completed",
            snap.as_of,
            snap.view_position,
            0.0,
            run_id=run_id,
            outcome=outcome,
        )
        if previous is not None:
            customer_lines, counts = recording.customer_event_lines(
                run_id, snap, outcome.customers, previous
            )
            run_line = recording.run_event_line(
                analysis=name,
                version=version,
                run_id=run_id,
                snap=snap,
                parameters=outcome.parameters,
                metrics=outcome.metrics,
            )
            lines += [customer_lines["raw"], pl.Series("raw", [run_line])]
            run.events = {**counts, "analysis.completed": 1}
        run.seconds = time.perf_counter() - t0
        runs.append(run)
    appended: dict[str, int] = {}
    if previous is not None and lines:
        log("recording…")
        appended = recording.append_lines(engine, lines)
        log("projecting…")
        engine.project()
    return AnalysisReport(
        as_of=snap.as_of,
        view_position=snap.view_position,
        explicit_as_of=snap.explicit,
        recorded=previous is not None,
        runs=runs,
        appended=appended,
        seconds=time.perf_counter() - started,
    )
