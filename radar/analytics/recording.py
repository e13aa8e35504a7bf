"""Recording analysis runs as events: the run itself, and the per-customer outcomes rules need.

What is recorded
----------------
* One ``analysis.completed`` per run (not for a skipped analysis): analysis, version, run_id,
  as_of, the view position the run read, its parameters and compact fit metrics. Its stream is
  radar's own (no customer).
* Per customer, only CHANGES against what radar had recorded for that customer up to the run's
  as-of moment (:func:`radar.analytics.features.recorded_state`):

  - ``segment.left`` (old group) then ``segment.entered`` (new group), ``segmentation`` ``kmeans``
    or ``rfm``, when the group differs; a customer who had a group but is absent from the new
    assignment gets ``segment.left`` only;
  - ``lifecycle.stage_changed`` (``stage``, ``previous_stage``) when the stage differs;
  - ``score.changed`` (``score_name``, ``value``, ``previous``) when there is no recorded value yet
    or the value moved by at least the score's threshold (:data:`THRESHOLDS`).

Score thresholds (the choice)
-----------------------------
A score is re-recorded only when it moved materially, so repeated runs do not flood the log with
noise-level changes, while every change a rule could act on is kept:

=============  ================================  =============================================
score          recorded when                     why
=============  ================================  =============================================
churn_risk     |new − last| ≥ 0.05 (absolute)    probabilities: 5 points is below any rule's
p_alive        |new − last| ≥ 0.05 (absolute)    useful resolution (rules use 0.5, 0.7, …)
lead_score     |new − last| ≥ 5 points           0–100 score; same 5 % resolution
clv            |new − last| ≥ 10 % of max(|last|, 1)  money is relative; the floor of 1 currency
                                                 unit keeps near-zero values from flapping
=============  ================================  =============================================

Values are rounded before comparing and storing (probabilities to 4 decimals, CLV to cents,
lead score to whole points).

How it is recorded
------------------
BULK: the events are built as a polars frame of JSON envelopes, one line each, and appended through
:meth:`radar.ingest.pipeline.Ingestor.ingest_raw` in batches of ``settings.batch_size`` lines — the
same validated, set-based path as a file import, never one append per customer. Each event's
``event_id`` is ``<run_id>/<kind>/<customer_id>`` (the run's own event: ``<run_id>``), so
recording the same run twice stores nothing new. ``occurred_at`` is the run's as-of moment and
``source`` is ``radar.analytics``. Within one customer a ``segment.left`` precedes the matching
``segment.entered`` in the log, so "latest by business time, then position" is the new group.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from radar.analytics.features import SCORE_NAMES, Snapshot
from radar.domain.envelope import MAX_EVENT_BYTES
from radar.domain.errors import RadarError
from radar.engine import Engine
from radar.ingest.pipeline import append_radar_lines

SOURCE = "radar.analytics"


@dataclass(frozen=True)
class Threshold:
    """A score is re-recorded when ``|new − last| ≥ absolute`` or, for a relative threshold,
    ``≥ relative · max(|last|, floor)``."""

    absolute: float | None = None
    relative: float | None = None
    floor: float = 1.0
    decimals: int = 4

    def to_dict(self) -> dict[str, Any]:
        return {
            "absolute": self.absolute,
            "relative": self.relative,
            "floor": self.floor,
            "decimals": self.decimals,
        }


THRESHOLDS: dict[str, Threshold] = {
    "churn_risk": Threshold(absolute=0.05, decimals=4),
    "p_alive": Threshold(absolute=0.05, decimals=4),
    "lead_score": Threshold(absolute=5.0, decimals=0),
    "clv": Threshold(relative=0.10, floor=1.0, decimals=2),
}
assert set(THRESHOLDS) == set(SCORE_NAMES)


@dataclass
class CustomerOutcomes:
    """What one run says per customer: groups per segmentation, scores, lifecycle stage."""

    memberships: dict[str, pl.DataFrame] = field(default_factory=dict)  # customer_id, segment
    scores: dict[str, pl.DataFrame] = field(default_factory=dict)  # customer_id, value
    stages: pl.DataFrame | None = None  # customer_id, stage


def run_id_for(analysis: str, version: str, snap: Snapshot, parameters: Mapping[str, Any]) -> str:
    """Deterministic run id: the same analysis, version, as-of, view position and parameters give
    the same id (so re-recording a run is idempotent)."""
    key = json.dumps(
        [analysis, version, snap.iso(), snap.view_position, jsonable(parameters)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return f"{analysis}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as null, tuples as lists and datetimes as ISO text."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "item"):  # numpy scalars
        return jsonable(obj.item())
    return obj


# ---- changes against the recorded state ------------------------------------------------------


def membership_changes(
    new: pl.DataFrame, previous: pl.DataFrame, segmentation: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(left, entered) frames of ``customer_id, segment`` for one segmentation.

    ``previous`` is :func:`~radar.analytics.features.recorded_state` (``segment_<segmentation>``).
    """
    old = previous.select("customer_id", pl.col(f"segment_{segmentation}").alias("old")).drop_nulls(
        "old"
    )
    joined = new.select("customer_id", pl.col("segment").cast(pl.String)).join(
        old, on="customer_id", how="full", coalesce=True
    )
    moved = joined.filter(pl.col("segment").is_null() | (pl.col("segment") != pl.col("old")))
    left = moved.filter(pl.col("old").is_not_null()).select(
        "customer_id", pl.col("old").alias("segment")
    )
    entered = joined.filter(
        pl.col("segment").is_not_null()
        & (pl.col("old").is_null() | (pl.col("segment") != pl.col("old")))
    ).select("customer_id", "segment")
    return left, entered


def score_changes(new: pl.DataFrame, previous: pl.DataFrame, name: str) -> pl.DataFrame:
    """``customer_id, value, previous`` for the customers whose ``name`` score must be recorded."""
    t = THRESHOLDS[name]
    value = pl.col("value").cast(pl.Float64).round(t.decimals)
    fresh = new.select("customer_id", value.alias("value")).filter(pl.col("value").is_finite())
    joined = fresh.join(
        previous.select("customer_id", pl.col(name).alias("previous")), on="customer_id", how="left"
    )
    delta = (pl.col("value") - pl.col("previous")).abs()
    moved = pl.lit(False)
    if t.absolute is not None:
        moved = moved | (delta >= t.absolute - 1e-12)
    if t.relative is not None:
        base = pl.max_horizontal(pl.col("previous").abs(), pl.lit(t.floor))
        moved = moved | (delta >= t.relative * base - 1e-12)
    out = joined.filter(pl.col("previous").is_null() | moved)
    if t.decimals == 0:
        out = out.with_columns(pl.col("value").cast(pl.Int64), pl.col("previous").cast(pl.Int64))
    return out


def stage_changes(new: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """``customer_id, stage, previous_stage`` for customers whose lifecycle stage changed."""
    joined = new.select("customer_id", pl.col("stage").cast(pl.String)).join(
        previous.select("customer_id", pl.col("lifecycle_stage").alias("previous_stage")),
        on="customer_id",
        how="left",
    )
    return joined.filter(
        pl.col("stage").is_not_null()
        & (pl.col("previous_stage").is_null() | (pl.col("stage") != pl.col("previous_stage")))
    )


# ---- envelopes ---------------------------------------------------------------------------------


def _lines(
    frame: pl.DataFrame, type_: str, kind: str, run_id: str, snap: Snapshot, data: list[pl.Expr]
) -> pl.DataFrame:
    """JSON envelope lines (column ``raw``) and the order key (``_order``) for ``frame``."""
    event_id = pl.concat_str(pl.lit(f"{run_id}/{kind}/"), pl.col("customer_id"))
    envelope = pl.struct(
        event_id.alias("event_id"),
        pl.lit(type_).alias("type"),
        pl.col("customer_id"),
        pl.lit(snap.iso()).alias("occurred_at"),
        pl.lit(SOURCE).alias("source"),
        pl.struct([*data, pl.lit(run_id).alias("run_id")]).alias("data"),
    )
    return frame.select(pl.col("customer_id"), envelope.struct.json_encode().alias("raw"))


def customer_event_lines(
    run_id: str, snap: Snapshot, outcomes: CustomerOutcomes, previous: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Envelope lines (``customer_id, raw``, log order) of the changes, and counts per type."""
    parts: list[pl.DataFrame] = []
    counts: dict[str, int] = {}

    def add(frame: pl.DataFrame, type_: str, kind: str, data: list[pl.Expr]) -> None:
        if frame.height:
            parts.append(_lines(frame, type_, kind, run_id, snap, data))
            counts[type_] = counts.get(type_, 0) + frame.height

    for segmentation, new in outcomes.memberships.items():
        left, entered = membership_changes(new, previous, segmentation)
        data = [pl.lit(segmentation).alias("segmentation"), pl.col("segment")]
        add(left, "segment.left", f"segment.left.{segmentation}", data)
        add(entered, "segment.entered", f"segment.entered.{segmentation}", data)
    for name, new in outcomes.scores.items():
        changed = score_changes(new, previous, name)
        data = [pl.lit(name).alias("score_name"), pl.col("value"), pl.col("previous")]
        add(changed, "score.changed", f"score.{name}", data)
    if outcomes.stages is not None:
        changed = stage_changes(outcomes.stages, previous)
        data = [pl.col("stage"), pl.col("previous_stage")]
        add(changed, "lifecycle.stage_changed", "lifecycle", data)
    if not parts:
        return pl.DataFrame(schema={"customer_id": pl.String, "raw": pl.String}), counts
    # a customer's events stay in the order above (left before entered): stable sort by customer
    return pl.concat(parts).sort("customer_id", maintain_order=True), counts


def run_event_line(
    *,
    analysis: str,
    version: str,
    run_id: str,
    snap: Snapshot,
    parameters: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> str:
    """The ``analysis.completed`` envelope of one run, as one JSON line."""
    envelope = {
        "event_id": run_id,
        "type": "analysis.completed",
        "occurred_at": snap.iso(),
        "source": SOURCE,
        "data": {
            "analysis": analysis,
            "version": version,
            "run_id": run_id,
            "as_of": snap.iso(),
            "view_position": snap.view_position,
            "parameters": jsonable(parameters),
            "metrics": jsonable(metrics),
        },
    }
    line = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if len(line.encode()) > MAX_EVENT_BYTES:
        raise RadarError(
            f"{analysis}: the run's metrics are {len(line.encode()):,} bytes as JSON, more than "
            f"an event may hold ({MAX_EVENT_BYTES:,}); record a summary instead"
        )
    return line


def append_lines(engine: Engine, lines: Sequence[pl.Series]) -> dict[str, int]:
    """Append envelope lines in batches through the bulk ingest path; ``accepted``/``duplicates``.

    Batches of ``settings.batch_size`` lines, each atomic; the next batch is validated while the
    previous one is written (as a file import does). A rejected line is a bug in radar (it built
    the envelope): the error names the first one.
    """
    raw = pl.concat([s.rename("raw") for s in lines]) if lines else pl.Series("raw", [], pl.String)
    size = max(1, engine.settings.batch_size)
    result = append_radar_lines(engine.ingestor, raw, size, "radar.analytics")
    return {"accepted": result.accepted, "duplicates": result.duplicates}
