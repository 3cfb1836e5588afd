"""OAuth2 connections: the operator's clients, the connect flow, grants and their refresh.

* ``clients``: the operator's client id and sealed secret per ``oauth2`` adapter;
* ``tokens``: a connection's grant, its tokens sealed at rest, the ``authorization`` view;
* ``refresh``: :class:`GrantTokenSource`, the fenced refresh lease (one refresh at a time across
  every process); ``token_call`` is its Authlib call, ``reconnect`` what a refused grant records,
  ``proactive`` the leader's refresh of grants about to expire;
* ``setup``: the clients of ``TOVPLUS_OAUTH_CLIENTS``, written at start;
* ``states``: starting an authorization (a single-use state, PKCE, the partner's URL);
* ``callback``: finishing it (the code exchanged, the grant stored);
* ``access``: the bearer client sync, actions and checks call an OAuth2 partner with.

How it all fits: docs/oauth.md.
"""

from __future__ import annotations

from tovplus.services.oauth.access import authorized_http
from tovplus.services.oauth.callback import (
    CallbackOutcome,
    CallbackResult,
    OnAuthorized,
    complete_authorization,
)
from tovplus.services.oauth.clients import (
    ClientCredentials,
    client_credentials,
    configured_clients,
    reseal_clients,
    set_client,
)
from tovplus.services.oauth.proactive import expiring_grants, refresh_expiring
from tovplus.services.oauth.reconnect import RECONNECT_REQUIRED_KIND, reconnect_reason
from tovplus.services.oauth.refresh import GrantSnapshot, GrantTokenSource
from tovplus.services.oauth.setup import (
    SETTINGS_ACTOR,
    apply_client_settings,
    client_configured,
    oauth2_adapter,
)
from tovplus.services.oauth.states import (
    CALLBACK_PATH,
    STATE_TTL,
    authorize_origin,
    begin_authorization,
    check_return_to,
    redirect_uri,
)
from tovplus.services.oauth.tokens import (
    TokenSet,
    clear_tokens,
    destroy_grant,
    grant_status,
    grant_view,
    open_access_token,
    reseal_grants,
    seal_tokens,
    store_grant,
)

__all__ = [
    "CALLBACK_PATH",
    "RECONNECT_REQUIRED_KIND",
    "SETTINGS_ACTOR",
    "STATE_TTL",
    "CallbackOutcome",
    "CallbackResult",
    "ClientCredentials",
    "GrantSnapshot",
    "GrantTokenSource",
    "OnAuthorized",
    "TokenSet",
    "apply_client_settings",
    "authorize_origin",
    "authorized_http",
    "begin_authorization",
    "check_return_to",
    "clear_tokens",
    "client_configured",
    "client_credentials",
    "complete_authorization",
    "configured_clients",
    "destroy_grant",
    "expiring_grants",
    "grant_status",
    "grant_view",
    "oauth2_adapter",
    "open_access_token",
    "reconnect_reason",
    "redirect_uri",
    "refresh_expiring",
    "reseal_clients",
    "reseal_grants",
    "seal_tokens",
    "set_client",
    "store_grant",
]
