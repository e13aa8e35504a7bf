"""Aggregates for marketers and the dashboard: phases, KPIs, segments, analyses, survival,
lifecycle transitions, and the rule files (list, check, preview, effect).

No endpoint here returns a customer id or personal data. Reading needs the marketer, auditor or
admin role; checking and previewing rule files, marketer or admin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from radar.projections.kpis import kpis
from radar.service import queries, rules_api
from radar.service.auth import Principal
from radar.service.deps import MARKETER, RULE_WRITER, ServiceDep, require
from radar.service.routes_events import read_body

router = APIRouter(tags=["insight"])
Reader = Annotated[Principal, Depends(require(*MARKETER))]
RuleWriter = Annotated[Principal, Depends(require(*RULE_WRITER))]

MAX_RULES_BYTES = 1024 * 1024
_YAML_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
        "description": "One rule file (YAML); without a body the rules folder is used",
    }
}


@router.get("/phases", summary="The four phases of the radar with live counts")
def get_phases(service: ServiceDep, _: Reader) -> dict[str, Any]:
    log_position = service.engine.store.max_position()
    with service.live.read() as con:
        out = queries.phases(con, log_position)
    out["stored"]["actions"] = service.queue.counts()
    return out


@router.get("/kpis", summary="Radar summary KPIs")
def get_kpis(service: ServiceDep, _: Reader) -> dict[str, Any]:
    with service.live.read() as con:
        return dict(queries.jsonable(kpis(con).to_dict()))


@router.get("/kpis/history", summary="KPIs per month")
def get_kpi_history(
    service: ServiceDep, _: Reader, months: Annotated[int, Query(ge=1, le=600)] = 36
) -> dict[str, Any]:
    with service.live.read() as con:
        return {"months": queries.kpi_history(con, months)}


@router.get("/segments", summary="Segment sizes and profiles")
def get_segments(service: ServiceDep, _: Reader) -> dict[str, Any]:
    with service.live.read() as con:
        return queries.segments(con)


@router.get("/analyses", summary="Analysis runs recorded in the log")
def get_analyses(
    service: ServiceDep, _: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    with service.live.read() as con:
        return {"analyses": queries.analyses(con, limit)}


@router.get("/survival", summary="Survival curves (time to cancellation)")
def get_survival(service: ServiceDep, _: Reader) -> dict[str, Any]:
    with service.live.read() as con:
        return queries.survival(con)


@router.get("/lifecycle/transitions", summary="Lifecycle stage transitions")
def get_transitions(service: ServiceDep, _: Reader) -> dict[str, Any]:
    with service.live.read() as con:
        return queries.lifecycle_transitions(con)


@router.get("/rules", summary="The rules of the rules folder")
def get_rules(service: ServiceDep, _: Reader) -> dict[str, Any]:
    return rules_api.describe(service.engine.settings.rules_dir)


@router.get("/rules/effect", summary="The measured effect of each rule (lift)")
def get_rule_effect(service: ServiceDep, _: Reader) -> dict[str, Any]:
    """Per rule and version: treated vs hold-out success rate, lift and its 95% interval."""
    rule_effect = rules_api.find_function(rules_api.EFFECT)
    with service.live.read() as con:
        if rule_effect is not None:
            table = rule_effect(service.engine)
            return {"valid": True, "errors": [], "rules": queries.jsonable(table.to_dicts())}
        return dict(queries.jsonable(rules_api.effect(con, service.engine.settings.rules_dir)))


@router.post("/analyses/run", summary="Run analyses and record their results")
def run_analyses(
    service: ServiceDep,
    _: RuleWriter,
    names: Annotated[list[str] | None, Query(description="Analyses to run (default all)")] = None,
) -> dict[str, Any]:
    """Run the analyses over the view and record their results as events (radar.analytics)."""
    try:
        from radar.analytics.runner import run_analyses as run
    except ModuleNotFoundError as e:
        raise HTTPException(501, f"analyses need radar.analytics.runner: {e}") from None
    with service.live.read():
        try:
            report = run(service.engine, names, plots=False)
        except KeyError as e:
            raise HTTPException(422, f"unknown analysis: {e}") from None
    return dict(queries.jsonable(report.to_dict()))


async def _sources(request: Request) -> list[tuple[str, bytes]] | None:
    body = await read_body(request, MAX_RULES_BYTES)
    return [("<request>", body)] if body.strip() else None


@router.post("/rules/check", summary="Check rule files", openapi_extra=_YAML_BODY)
async def check_rules(request: Request, service: ServiceDep, _: RuleWriter) -> dict[str, Any]:
    """Check the YAML rule file in the body (or the rules folder): every error, located."""
    sources = await _sources(request)
    return rules_api.check(service.engine.settings.rules_dir, sources)


@router.post("/rules/preview", summary="Preview rule decisions", openapi_extra=_YAML_BODY)
async def preview_rules(
    request: Request,
    service: ServiceDep,
    _: RuleWriter,
    as_of: Annotated[datetime | None, Query(description="Reference moment")] = None,
) -> dict[str, Any]:
    """What the rules in the body (or the rules folder) would decide over the view now:
    counts per rule of planned / suppressed / held-out decisions. Nothing is appended."""
    from radar.rules.loader import RuleSetInvalid

    sources = await _sources(request)
    try:
        ruleset = rules_api.load(service.engine.settings.rules_dir, sources)
    except RuleSetInvalid as e:
        raise HTTPException(422, str(e)) from None
    return await _in_thread(service, ruleset, as_of)


async def _in_thread(service: Any, ruleset: Any, as_of: datetime | None) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    def run() -> dict[str, Any]:
        preview_rules = rules_api.find_function(rules_api.PREVIEW)
        with service.live.read() as con:
            if preview_rules is not None:
                found = preview_rules(service.engine, ruleset, at=as_of).to_dict()
                found.pop("sample", None)  # customer ids: not for marketers
                return dict(queries.jsonable(found))
            position = service.engine.projector.position()
            return rules_api.preview(con, ruleset, position, as_of)

    result: dict[str, Any] = await run_in_threadpool(run)
    return result
