"""The engine a command works on, built from the global ``--data`` option and the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from radar.engine import Engine, build_engine


@dataclass
class _State:
    data: Path | None = None


state = _State()


def engine_for() -> Engine:
    """The engine for this invocation (``--data`` overrides RADAR_DATA)."""
    if state.data is not None:
        return build_engine(data_dir=state.data)
    return build_engine()
