"""OAuth2 connections: the operator's clients, the connect flow, grants and their refresh.

* ``clients``: the operator's client id and sealed secret per ``oauth2`` adapter;
* ``tokens``: a connection's grant, its tokens sealed at rest, the ``authorization`` view;
* ``setup``: the clients of ``TOVPLUS_OAUTH_CLIENTS``, written at start;
* ``states``: starting an authorization (a single-use state, PKCE, the partner's URL);
* ``callback``: finishing it (the code exchanged, the grant stored);
* ``access``: the bearer client sync, actions and checks call an OAuth2 partner with.
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
    grant_status,
    grant_view,
    open_access_token,
    reseal_grants,
    seal_tokens,
    store_grant,
)

__all__ = [
    "CALLBACK_PATH",
    "SETTINGS_ACTOR",
    "STATE_TTL",
    "CallbackOutcome",
    "CallbackResult",
    "ClientCredentials",
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
    "grant_status",
    "grant_view",
    "oauth2_adapter",
    "open_access_token",
    "redirect_uri",
    "reseal_clients",
    "reseal_grants",
    "seal_tokens",
    "set_client",
    "store_grant",
]
