"""Request dependencies: the runtime and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tovplus.runtime import Runtime
from tovplus.services.auth import Caller, authenticate_bearer


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def get_caller(request: Request, rt: Annotated[Runtime, Depends(get_runtime)]) -> Caller:
    return authenticate_bearer(rt, bearer_token(request))


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CallerDep = Annotated[Caller, Depends(get_caller)]
