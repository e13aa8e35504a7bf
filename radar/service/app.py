"""The HTTP API and dashboard of ``radar serve`` (FastAPI; OpenAPI at ``/openapi.json``).

:func:`create_app` builds the application from settings or from an engine factory. Nothing is
opened at import time or when the app is created: the engine, key ring, action queue and the
background threads start with the application (its lifespan) and stop with it.

Endpoints and the roles that may use them (see :mod:`radar.service.auth`):

| endpoint                                         | roles                        |
|--------------------------------------------------|------------------------------|
| GET /health, the dashboard's static files        | anyone (no data)             |
| GET /metrics                                     | every role                   |
| POST /events, GET /actions, POST /actions/{id}/outcome | appender, admin        |
| GET /phases, /kpis, /kpis/history, /segments, /analyses, /survival, |             |
|   /lifecycle/transitions, /rules, /rules/effect  | marketer, auditor, admin     |
| POST /rules/check, /rules/preview                | marketer, admin              |
| GET /customers/{id}[/history, /timeline, /view],  |                              |
|   /actions/{id}/explain, POST /verify            | auditor, admin               |
| POST /customers/{id}/forget, GET/POST /keys, DELETE /keys/{id} | admin          |
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from radar.domain.errors import ConfigurationError, NotFound, RadarError
from radar.engine import build_engine
from radar.service.core import EngineFactory, Service, ServiceOptions
from radar.settings import Settings

STATIC = Path(__file__).parent / "static"


def _factory(source: Settings | EngineFactory | None) -> EngineFactory:
    if callable(source):
        return source
    settings = source
    return lambda: build_engine(settings)


def create_app(
    source: Settings | EngineFactory | None = None, *, options: ServiceOptions | None = None
) -> FastAPI:
    """The radar HTTP service over the engine built by ``source`` (settings, a factory, or the
    environment when None)."""
    make_engine = _factory(source)
    service_options = options or ServiceOptions()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(lambda: Service(make_engine(), service_options))
        service.start()
        app.state.service = service
        try:
            yield
        finally:
            app.state.service = None
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="radar",
        version="0.1.0",
        summary="An event-sourced CRM radar engine: append events, pull actions, read the view.",
        description=__doc__,
        lifespan=lifespan,
    )
    _errors(app)
    from radar.service import (
        routes_actions,
        routes_admin,
        routes_customers,
        routes_events,
        routes_insight,
    )

    for module in (routes_events, routes_actions, routes_customers, routes_insight, routes_admin):
        app.include_router(module.router)
    app.add_middleware(routes_events.AppendFastPath)
    app.mount("/dashboard", StaticFiles(directory=STATIC, html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    return app


def _errors(app: FastAPI) -> None:
    """Radar's errors as JSON ``{"detail": message}`` with a fitting status."""

    @app.exception_handler(NotFound)
    async def not_found(_: Request, e: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(ConfigurationError)
    async def misconfigured(_: Request, e: ConfigurationError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=503)

    @app.exception_handler(RadarError)
    async def bad_request(_: Request, e: RadarError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        parts = []
        for err in errors[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            {
                "detail": "; ".join(parts) or "invalid request",
                "errors": [
                    {
                        "loc": list(err.get("loc", ())),
                        "msg": err.get("msg"),
                        "type": err.get("type"),
                    }
                    for err in errors
                ],
            },
            status_code=422,
        )
