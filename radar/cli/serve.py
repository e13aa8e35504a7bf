"""``radar serve`` (the HTTP API and dashboard) and ``radar keys`` (API keys of the service)."""

from __future__ import annotations

from typing import Annotated

import typer

from radar.cli.output import Format, console, emit_json, errors, fail, table

keys_app = typer.Typer(help="API keys of `radar serve` (stored hashed in <data>/api_keys.sqlite).")


def _data_dir() -> object:
    from radar.cli.context import state
    from radar.settings import Settings

    return state.data if state.data is not None else Settings().data_dir


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8765,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) and the dashboard (/dashboard/)."""
    import uvicorn

    from radar.cli.context import state
    from radar.service.app import create_app
    from radar.settings import Settings

    settings = Settings()
    if state.data is not None:
        settings = settings.model_copy(update={"data_dir": state.data})
    app = create_app(settings)
    console.print(f"radar serving {settings.data_dir} on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@keys_app.command("create")
def create_key(
    role: Annotated[str, typer.Option(help="appender, marketer, auditor or admin")],
    name: Annotated[str, typer.Option(help="Who or what the key is for")] = "",
) -> None:
    """Create an API key; it is printed once (only its salted hash is stored)."""
    from pathlib import Path

    from radar.service.auth import ROLES, KeyRing

    if role not in {r.value for r in ROLES}:
        fail(f"unknown role {role!r}: use one of {', '.join(r.value for r in ROLES)}")
    data = _data_dir()
    assert isinstance(data, Path)
    ring = KeyRing.in_folder(data)
    try:
        key, info = ring.create(role, name)
    finally:
        ring.close()
    errors.print(f"created {info.role.value} key {info.key_id} (store it now; not shown again):")
    typer.echo(key)


@keys_app.command("list")
def list_keys(output: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """List the API keys (id, role, name, created, revoked) — never the secrets."""
    from pathlib import Path

    from radar.service.auth import KeyRing

    data = _data_dir()
    assert isinstance(data, Path)
    ring = KeyRing.in_folder(data)
    try:
        keys = ring.list()
    finally:
        ring.close()
    if output == Format.json:
        emit_json([k.to_dict() for k in keys])
        return
    table(
        "API keys",
        ["key id", "role", "name", "created", "revoked"],
        [[k.key_id, k.role.value, k.name, k.created_at, "yes" if k.revoked else ""] for k in keys],
    )


@keys_app.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(help="The key id")]) -> None:
    """Revoke an API key."""
    from pathlib import Path

    from radar.service.auth import KeyRing

    data = _data_dir()
    assert isinstance(data, Path)
    ring = KeyRing.in_folder(data)
    try:
        if not ring.revoke(key_id):
            fail(f"no API key {key_id!r}")
    finally:
        ring.close()
    console.print(f"revoked key {key_id}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
