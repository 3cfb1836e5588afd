"""OAuth2 connections: the operator's clients, the connect flow, grants and their refresh.

* ``clients``: the operator's client id and sealed secret per ``oauth2`` adapter;
* ``tokens``: a connection's grant, its tokens sealed at rest, the ``authorization`` view;
* ``refresh``: :class:`GrantTokenSource`, the fenced refresh lease (one refresh at a time across
  every process); ``token_call`` is its Authlib call, ``reconnect`` what a refused grant records,
  ``proactive`` the leader's refresh of grants about to expire;
* ``access``: the bearer client sync, actions and checks call an OAuth2 partner with.

How it all fits: docs/oauth.md.
"""

from __future__ import annotations

from tovplus.services.oauth.access import authorized_http
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
    "RECONNECT_REQUIRED_KIND",
    "ClientCredentials",
    "GrantSnapshot",
    "GrantTokenSource",
    "TokenSet",
    "authorized_http",
    "clear_tokens",
    "client_credentials",
    "configured_clients",
    "destroy_grant",
    "expiring_grants",
    "grant_status",
    "grant_view",
    "open_access_token",
    "reconnect_reason",
    "refresh_expiring",
    "reseal_clients",
    "reseal_grants",
    "seal_tokens",
    "set_client",
    "store_grant",
]
