"""FastAPI dependencies shared by the routes: the running service and role checks.

A key is presented as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. No key, or an
unknown or revoked one, is 401; a valid key whose role may not use the endpoint is 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from radar.service.auth import KeyRing, Principal, Role
from radar.service.core import Service

_bearer = HTTPBearer(auto_error=False, description="An API key: `Bearer radar_…`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key: `radar_…`")

APPENDER = (Role.appender, Role.admin)
MARKETER = (Role.marketer, Role.auditor, Role.admin)
RULE_WRITER = (Role.marketer, Role.admin)
AUDITOR = (Role.auditor, Role.admin)
ADMIN = (Role.admin,)
ANY = tuple(Role)


def get_service(request: Request) -> Service:
    """The running service (503 while it starts or stops)."""
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:
        raise HTTPException(503, "the service is starting or stopping")
    return service


async def _service(request: Request) -> Service:
    """:func:`get_service` as a coroutine, so FastAPI calls it on the event loop instead of
    handing it to the thread pool (a thread hop per request costs more than the lookup)."""
    return get_service(request)


ServiceDep = Annotated[Service, Depends(_service)]


async def _verify(keyring: KeyRing, token: str) -> Principal | None:
    """The key's principal: from the key ring's memory on the event loop, or else (a SQLite
    read and a hash) in the thread pool."""
    known = keyring.remembered(token)
    if known is not None:
        return known
    return await run_in_threadpool(keyring.verify, token)


def api_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The API key of a request: the ``X-API-Key`` header, else the credentials of an
    ``Authorization: Bearer …`` header (what the two security schemes below read)."""
    if x_api_key:
        return x_api_key
    scheme, _, credentials = (authorization or "").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else None


async def authorize(service: Service, token: str | None, allowed: frozenset[Role]) -> Principal:
    """The principal of ``token`` when its role is in ``allowed``; 401 without a valid key,
    403 for a role that may not."""
    if not token:
        raise HTTPException(
            401,
            "an API key is required (X-API-Key or Authorization: Bearer)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await _verify(service.keyring, token)
    if principal is None:
        raise HTTPException(
            401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    if principal.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise HTTPException(
            403, f"the role {principal.role.value!r} may not do this (allowed: {names})"
        )
    return principal


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only ``roles`` through (401 without a valid key, else 403)."""
    allowed = frozenset(roles)

    async def check(
        request: Request,
        _bearer_scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        # the two schemes are declared for the OpenAPI document; the key is read by one rule
        token = api_key(header, request.headers.get("authorization"))
        return await authorize(get_service(request), token, allowed)

    return check
