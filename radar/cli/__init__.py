"""The ``radar`` command line: ``main`` holds the foundation commands; other modules add theirs.

Each module named in :data:`COMMAND_MODULES` has ``register(app: typer.Typer) -> None``.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES: tuple[str, ...] = (
    "radar.cli.demo",
    "radar.cli.analyze",
    "radar.cli.rules",
    "radar.cli.audit",
    "radar.cli.serve",
)


def register(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that feature is not part of this build
                continue
            raise
        module.register(app)
