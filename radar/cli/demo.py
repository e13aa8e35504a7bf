"""``radar demo``: the whole loop on synthetic data in a fresh folder, then a radar summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radar.cli.output import Format, console, emit_json, table


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        customers: Annotated[int, typer.Option(help="Number of simulated customers")] = 10_000,
        seed: Annotated[int, typer.Option(help="Random seed")] = 42,
        folder: Annotated[
            Path, typer.Option("--folder", help="Fresh data folder for the demo (emptied)")
        ] = Path("radar-demo"),
        output: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Simulate a history, ingest it, project the view and print the radar summary."""
        from radar.cli.main import _print_kpis
        from radar.demo import run_demo

        report = run_demo(
            folder, customers=customers, seed=seed, log=lambda m: console.print(f"[dim]{m}[/]")
        )
        if output == Format.json:
            emit_json(
                {"data_dir": str(report.data_dir), "steps": report.steps, "kpis": report.kpis}
            )
            return
        table(
            "demo steps",
            ["step", "seconds", "details"],
            [
                [
                    s["step"],
                    s["seconds"],
                    ", ".join(f"{k}={v}" for k, v in s.items() if k not in ("step", "seconds")),
                ]
                for s in report.steps
            ],
        )
        _print_kpis(report.kpis, output)
        console.print(f"data folder: {report.data_dir}")
