"""The ``radar`` command line. Each command is a thin shell over the engine (radar.engine)."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from radar.cli.context import engine_for, state
from radar.cli.output import Format, console, emit_json, fail, table
from radar.domain.errors import RadarError
from radar.engine import Engine
from radar.ingest.pipeline import BatchResult

app = typer.Typer(
    help="radar — an event-sourced CRM radar engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Data folder (env RADAR_DATA, default ./radar-data)"),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


@app.callback()
def _main(data: DataOpt = None) -> None:
    state.data = data


@app.command()
def schema(
    what: Annotated[str, typer.Argument(help="events (default), rules, or one event type")] = (
        "events"
    ),
) -> None:
    """Print the JSON Schema of every event type (or of the rule-file format)."""
    from radar.domain.envelope import json_schemas

    if what == "rules":
        from radar.rules.schema import rules_json_schema

        emit_json(rules_json_schema())
        return
    schemas = json_schemas()
    if what == "events":
        emit_json(schemas)
    elif what in schemas:
        emit_json(schemas[what])
    else:
        from radar.domain.suggest import did_you_mean

        fail(f"unknown schema {what!r}{did_you_mean(what, [*schemas, 'events', 'rules'])}")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="JSONL, CSV or Parquet files")],
    rejects: Annotated[
        Path | None,
        typer.Option(help="Reject file (default: <data>/rejects/<file>.rejects.jsonl)"),
    ] = None,
    output: FormatOpt = Format.table,
) -> None:
    """Import events from files: validated, idempotent, atomic per batch."""
    from radar.ingest.files import write_rejects

    with engine_for() as engine:
        summaries = []
        exit_code = 0
        for path in files:
            started = time.perf_counter()
            result: BatchResult = _ingest_with_progress(engine, path)
            seconds = time.perf_counter() - started
            reject_path = None
            if result.rejected:
                exit_code = 1
                reject_path = rejects or (
                    engine.settings.data_dir / "rejects" / f"{path.name}.rejects.jsonl"
                )
                write_rejects(reject_path, path, result.rejections)
            summaries.append(
                {
                    "file": str(path),
                    **result.to_dict(),
                    "seconds": round(seconds, 3),
                    "events_per_second": round(
                        (result.accepted + result.duplicates) / seconds if seconds else 0
                    ),
                    "rejects_file": str(reject_path) if reject_path else None,
                }
            )
        if output == Format.json:
            emit_json(summaries)
        else:
            table(
                "ingest summary",
                ["file", "accepted", "duplicates", "rejected", "seconds", "events/s", "rejects"],
                [
                    [
                        s["file"],
                        s["accepted"],
                        s["duplicates"],
                        s["rejected"],
                        s["seconds"],
                        s["events_per_second"],
                        s["rejects_file"] or "",
                    ]
                    for s in summaries
                ],
            )
        if exit_code:
            raise typer.Exit(exit_code)


def _ingest_with_progress(engine: Engine, path: Path) -> BatchResult:
    from radar.ingest.files import file_format

    file_format(path)
    if not path.exists():
        fail(f"{path}: no such file")
    if not sys.stderr.isatty():
        return engine.ingest_file(path)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    total = _count_lines(path)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"ingest {path.name}", total=total)
        return engine.ingest_file(path, progress=lambda n: bar.advance(task, n))


def _count_lines(path: Path) -> int | None:
    if path.suffix.lower() not in (".jsonl", ".ndjson", ".json", ".csv"):
        return None
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 24), b""))


@app.command()
def project(
    follow: Annotated[bool, typer.Option("--follow", help="Keep following new events")] = False,
    interval: Annotated[float, typer.Option(help="Polling interval with --follow (s)")] = 0.5,
) -> None:
    """Catch the DuckDB view up with the event log (exactly once)."""
    with engine_for() as engine:
        result = engine.project()
        console.print(
            f"applied {result.events:,} events in {result.seconds:.2f} s; "
            f"view at position {result.position:,}"
        )
        if follow:
            stop = threading.Event()
            console.print("following the log (Ctrl-C to stop)…")
            try:
                engine.projector.follow(
                    stop,
                    interval,
                    on_batch=lambda r: console.print(
                        f"applied {r.events:,} events; view at position {r.position:,}"
                    ),
                )
            except KeyboardInterrupt:
                stop.set()


@app.command()
def rebuild() -> None:
    """Rebuild the DuckDB view from the event log."""
    with engine_for() as engine:
        result = engine.rebuild()
        console.print(
            f"rebuilt the view from {result.events:,} events in {result.seconds:.2f} s "
            f"({result.rate:,.0f} events/s); view at position {result.position:,}"
        )


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write")],
    customers: Annotated[int, typer.Option(help="Number of customers")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
    truth: Annotated[Path | None, typer.Option(help="Write the ground truth here")] = None,
) -> None:
    """Write a realistic synthetic CRM history (and its ground truth)."""
    from radar.simulate import simulate as run

    started = time.perf_counter()
    sim = run(customers=customers, seed=seed)
    sim.write_jsonl(out)
    truth_path = truth or out.with_suffix(".truth.json")
    sim.write_truth(truth_path)
    console.print(
        f"wrote {sim.events.height:,} events of {customers:,} customers to {out} "
        f"(truth: {truth_path}) in {time.perf_counter() - started:.1f} s"
    )


@app.command()
def status(output: FormatOpt = Format.table) -> None:
    """The radar at a glance: events, customers and KPIs of the view."""
    from radar.projections.kpis import kpis

    with engine_for() as engine:
        engine.project()
        k = kpis(engine.view)
        _print_kpis(k.to_dict(), output)


def _print_kpis(k: dict[str, object], output: Format) -> None:
    if output == Format.json:
        emit_json(k)
        return
    table(
        "radar summary",
        ["measure", "value"],
        [
            [name, k[name]]
            for name in (
                "reference",
                "customers",
                "events",
                "active_customers",
                "retention_rate",
                "churn_rate",
                "revenue",
                "revenue_last_365d",
            )
        ],
    )
    mix = k["contact_mix"]
    assert isinstance(mix, list)
    table(
        "contact mix",
        ["channel", "direction", "contacts"],
        [[m["channel"], m["direction"], m["contacts"]] for m in mix],
    )


_registered = False


def build_app() -> typer.Typer:
    """The app with every command module's commands added (idempotent)."""
    global _registered
    if not _registered:
        from radar.cli import register

        register(app)
        _registered = True
    return app


def main() -> None:
    """Entry point: run the app, turning radar's own errors into a message and exit code 2."""
    build_app()
    try:
        app()
    except RadarError as e:
        fail(str(e))
    except json.JSONDecodeError as e:
        fail(f"malformed JSON: {e}")
