"""Contexts for an OAuth2 adapter's hooks, built as the framework builds them, over a fake server.

    server = FakeAuthorizationServer({"GET /v1/me": {"account": "Acme"}})
    ctx = oauth_context("check", server, config=CONFIG)
    result = MyOAuthAdapter().check(ctx)          # ctx.http sends the token; ctx.access_token is set

``kind`` is ``"sync"``, ``"check"`` or ``"action"``; the other keyword arguments go to
:func:`~tovplus.testing.sync_context`, :func:`~tovplus.testing.hooks.check_context` or
:func:`~tovplus.testing.action_context`. Close ``ctx.http`` when done (it borrows the server's pool).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, overload

from tovplus.integrations.actions import ActionContext
from tovplus.integrations.auth import TokenSource
from tovplus.integrations.contract import CheckContext, SyncContext
from tovplus.testing.actions import action_context
from tovplus.testing.hooks import check_context, sync_context
from tovplus.testing.oauth import FakeAuthorizationServer, oauth_http


@overload
def oauth_context(
    kind: Literal["sync"],
    server: FakeAuthorizationServer,
    *,
    config: Mapping[str, Any],
    source: TokenSource | None = ...,
    **options: Any,
) -> SyncContext: ...
@overload
def oauth_context(
    kind: Literal["check"],
    server: FakeAuthorizationServer,
    *,
    config: Mapping[str, Any],
    source: TokenSource | None = ...,
    **options: Any,
) -> CheckContext: ...
@overload
def oauth_context(
    kind: Literal["action"],
    server: FakeAuthorizationServer,
    *,
    config: Mapping[str, Any],
    source: TokenSource | None = ...,
    **options: Any,
) -> ActionContext: ...
def oauth_context(
    kind: str,
    server: FakeAuthorizationServer,
    *,
    config: Mapping[str, Any],
    source: TokenSource | None = None,
    **options: Any,
) -> SyncContext | CheckContext | ActionContext:
    """A context of ``kind`` whose ``http`` is ``with_auth(client, BearerAuth(source))`` and whose
    ``access_token`` is the source's current token (``source``: the server's own grant by default)."""
    source = source or server.token_source()
    http = oauth_http(server, source)
    token = source.access_token()
    if kind == "sync":
        return sync_context(config=config, secrets={}, http=http, access_token=token, **options)
    if kind == "check":
        return check_context(config=config, secrets={}, http=http, access_token=token, **options)
    if kind == "action":
        return action_context(config=config, secrets={}, http=http, access_token=token, **options)
    http.close()
    raise ValueError(f"kind must be 'sync', 'check' or 'action', not {kind!r}")


__all__ = ["oauth_context"]
