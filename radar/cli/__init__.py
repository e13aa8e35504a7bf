"""The ``radar`` command line: ``main`` holds the foundation commands; other modules add theirs."""

from __future__ import annotations

import importlib

import typer

#: Modules that add commands to the app (each has ``register(app)``), added as features land.
COMMAND_MODULES: tuple[str, ...] = ("radar.cli.demo",)


def register(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
