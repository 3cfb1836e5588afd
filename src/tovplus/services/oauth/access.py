"""What sync, actions and the credential check use to call an OAuth2 partner."""

from __future__ import annotations

import httpx

from tovplus.integrations.auth import BearerAuth
from tovplus.integrations.http import with_auth
from tovplus.runtime import Runtime
from tovplus.services.oauth.refresh import GrantTokenSource


def authorized_http(
    rt: Runtime, connection_id: str, base: httpx.Client, *, owner: str
) -> tuple[httpx.Client, str]:
    """``(client, access_token)``: ``base``'s pool with the connection's bearer token on every request
    (refreshed first when it is about to expire, once more after a 401), and the token valid now.

    Raises ``CredentialsRejected`` when the grant is missing or refused (reconnect needed) and
    ``PartnerUnavailable`` when the partner's token endpoint cannot be reached.
    """
    source = GrantTokenSource(rt, connection_id, owner, http=base)
    token = source.access_token()
    return with_auth(base, BearerAuth(source)), token
