"""The operator's OAuth clients from ``TOVPLUS_OAUTH_CLIENTS``, written (sealed) at start.

A client set with ``tovplus oauth set-client`` wins: settings fill in an adapter that has none, and
keep up to date one they wrote themselves (``updated_by = "settings"``), never one the CLI wrote.
"""

from __future__ import annotations

import hmac
import logging

from sqlalchemy.exc import IntegrityError

from tovplus.db.models import OAuthClient
from tovplus.errors import InvalidInput
from tovplus.integrations.contract import Adapter
from tovplus.runtime import Runtime
from tovplus.services.oauth.clients import client_credentials, set_client

#: ``updated_by`` of a client that came from the settings.
SETTINGS_ACTOR = "settings"
log = logging.getLogger(__name__)


def oauth2_adapter(rt: Runtime, integration_key: str) -> Adapter:
    """The installed ``oauth2`` adapter ``integration_key`` (422 for an unknown or api-key adapter)."""
    adapter = rt.registry.find(integration_key)
    if adapter is None:
        raise InvalidInput(f"There is no integration called {integration_key[:64]!r}.")
    if adapter.oauth2 is None:
        raise InvalidInput(
            f"{adapter.name} ({integration_key}) authenticates with typed API keys, not OAuth2: "
            "it has no OAuth client."
        )
    return adapter


def apply_client_settings(rt: Runtime) -> list[str]:
    """Store the clients ``TOVPLUS_OAUTH_CLIENTS`` gives (see the module docstring); returns the
    integration keys written. Adapters not installed, or not ``oauth2``, are skipped with a warning."""
    written = []
    for key, given in sorted(rt.settings.oauth_clients.items()):
        try:
            oauth2_adapter(rt, key)
        except InvalidInput as exc:
            log.warning("TOVPLUS_OAUTH_CLIENTS: %s Skipped.", exc.message)
            continue
        try:
            with rt.db.write() as session:
                row = session.get(OAuthClient, key)
                if row is not None and row.updated_by != SETTINGS_ACTOR:
                    continue  # set with the CLI: it wins over the settings
                current = client_credentials(session, rt.keyring, key) if row is not None else None
                if (
                    current is not None
                    and _same(current.client_id, given.client_id)
                    and _same(current.client_secret, given.client_secret)
                ):
                    continue
                set_client(
                    session, rt.keyring, key, given.client_id, given.client_secret, actor=SETTINGS_ACTOR
                )
        except IntegrityError:  # another process starting at the same moment wrote it
            continue
        written.append(key)
    return written


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def client_configured(rt: Runtime, integration_key: str) -> bool:
    """Whether the operator has set the adapter's OAuth client (the page says so plainly if not)."""
    with rt.db.read() as session:
        return session.get(OAuthClient, integration_key) is not None
