"""Request dependencies: the runtime and the authenticated caller.

FastAPI runs a plain ``def`` dependency in the thread pool, one hop per dependency and request;
the ones here that touch no database are ``async def`` so they run on the loop, inline.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tovplus.runtime import Runtime
from tovplus.services.auth import Caller, authenticate_bearer


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def get_bearer_token(request: Request) -> str | None:
    """The request's bearer token, for a route that authenticates it in its own read session."""
    return bearer_token(request)


def get_caller(request: Request, rt: Annotated[Runtime, Depends(get_runtime)]) -> Caller:
    return authenticate_bearer(rt, bearer_token(request))


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CallerDep = Annotated[Caller, Depends(get_caller)]
BearerTokenDep = Annotated[str | None, Depends(get_bearer_token)]
