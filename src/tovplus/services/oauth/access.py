"""What sync, actions and the credential check use to call an OAuth2 partner.

A1 (h15-refresh) implements this on top of ``refresh.GrantTokenSource``; the signature is fixed.
"""

from __future__ import annotations

import httpx

from tovplus.runtime import Runtime


def authorized_http(
    rt: Runtime, connection_id: str, base: httpx.Client, *, owner: str
) -> tuple[httpx.Client, str]:
    """``(client, access_token)``: ``base``'s pool with the connection's bearer token on every request
    (refreshed first when it is about to expire, once more after a 401), and the token valid now.

    Raises ``CredentialsRejected`` when the grant is missing or refused (reconnect needed) and
    ``PartnerUnavailable`` when the partner's token endpoint cannot be reached.
    """
    raise NotImplementedError("services/oauth/access.py: written by the refresh branch")
