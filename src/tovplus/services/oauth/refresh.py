"""The fenced refresh lease: at most one refresh of a grant at a time, across every process.

:class:`GrantTokenSource` is the database side of :class:`~tovplus.integrations.auth.TokenSource`.
A refresh takes the grant's lease in one short transaction (a conditional ``UPDATE`` on the
``token_version`` it saw, when nobody holds an unexpired lease; ``lease_fence`` goes up by one),
calls the token endpoint outside any transaction, then writes the new tokens in one transaction
only while ``lease_owner`` and ``lease_fence`` are still its own. So:

* a process that finds the lease taken waits for the version to move (and uses that token) or
  for the lease to expire (a killed holder) and takes it then;
* a slow refresher whose lease expired and was taken over writes nothing: its answer is dropped;
* the rotated refresh token is committed before the new access token is handed out.

See docs/oauth.md.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, update

from tovplus.db.models import Connection, OAuthGrant
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.errors import CredentialsRejected, PartnerUnavailable
from tovplus.integrations.auth import AuthorizationStatus, same_token
from tovplus.integrations.redaction import scrubber
from tovplus.runtime import Runtime
from tovplus.runtime.partner_http import partner_http_client
from tovplus.services.oauth.clients import client_credentials
from tovplus.services.oauth.reconnect import mark_reconnect_required, reconnect_reason
from tovplus.services.oauth.token_call import GrantRefused, refresh_tokens
from tovplus.services.oauth.tokens import (
    ACCESS_FIELD,
    REFRESH_FIELD,
    TokenSet,
    open_access_token,
    open_refresh_token,
    token_aad,
)

log = logging.getLogger(__name__)

_NOT_GRANTED = "This connection has not been granted access yet: connect it first."
#: Seconds between looks at a grant whose lease another process holds.
POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class GrantSnapshot:
    """A grant as one read saw it (the access token opened; never the refresh token)."""

    status: AuthorizationStatus
    access_token: str | None = field(repr=False)
    expires_at: datetime | None
    version: int
    lease_owner: str | None
    lease_expires_at: datetime | None

    def usable(self, now: datetime, margin: float = 0.0) -> bool:
        """An access token that is still valid ``margin`` seconds from ``now``."""
        if self.status != AuthorizationStatus.AUTHORIZED or self.access_token is None:
            return False
        return self.expires_at is None or self.expires_at > now + timedelta(seconds=margin)


@dataclass(frozen=True, slots=True)
class _Partner:
    name: str
    integration_key: str
    token_url: str


class GrantTokenSource:
    """A connection's access token, refreshed under the fenced lease (``integrations.auth.TokenSource``).

    ``owner`` names the process or worker (a random suffix keeps two sources of one process
    apart); ``http`` is the partner client the token calls go over (default: the process's).
    """

    def __init__(
        self,
        rt: Runtime,
        connection_id: str,
        owner: str,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.rt = rt
        self.connection_id = connection_id
        self.owner = f"{owner[:67]}:{uuid.uuid4().hex[:12]}"
        self._http = http
        self._clock = clock
        self._partner: _Partner | None = None
        #: How many refreshes this source made (the token endpoint answered and we stored it).
        self.refreshes = 0

    # --- TokenSource --------------------------------------------------------------------------

    def access_token(self) -> str:
        """The stored token while it is valid past the margin; else a refreshed one."""
        snap = self._read()
        if snap.usable(self._clock(), self.rt.settings.oauth_refresh_margin_seconds):
            return self._handed_out(snap)
        return self._refresh(snap, rejected=None)

    def refresh_after_rejection(self, rejected: str) -> str:
        """A token other than ``rejected``: one another process stored meanwhile, or a refreshed one."""
        snap = self._read()
        if snap.usable(self._clock()) and not same_token(snap.access_token, rejected):
            return self._handed_out(snap)
        return self._refresh(snap, rejected=rejected)

    # --- the lease ----------------------------------------------------------------------------

    def _refresh(self, snap: GrantSnapshot, *, rejected: str | None) -> str:
        settings = self.rt.settings
        deadline = time.monotonic() + 2 * settings.oauth_refresh_lease_seconds + 1
        while True:
            self._require_authorized(snap)
            fence, refresh_token = self._take_lease(snap.version)
            if fence is not None:
                token = self._refresh_holding(fence, refresh_token)
                if token is not None:
                    return token
                snap = self._read()  # our answer was dropped: use whatever won
                if snap.usable(self._clock()):
                    return self._handed_out(snap)
                continue
            moved = self._read()
            replaced = rejected is None or not same_token(moved.access_token, rejected)
            if moved.version != snap.version and moved.usable(self._clock()) and replaced:
                return self._handed_out(moved)  # another process refreshed: use its token
            if moved.version != snap.version:
                snap = moved
                continue
            if time.monotonic() > deadline:
                raise PartnerUnavailable(
                    "Another process has been refreshing this connection's access for too long."
                )
            time.sleep(POLL_SECONDS * (0.5 + random.random()))  # jitter, not secrecy
            snap = moved

    def _take_lease(self, seen_version: int) -> tuple[int | None, str | None]:
        """Take the lease if nobody holds it and the tokens are still ``seen_version``.

        Returns ``(fence, refresh token)``, or ``(None, None)`` when not taken.
        """
        now = self._clock()
        until = now + timedelta(seconds=self.rt.settings.oauth_refresh_lease_seconds)
        with locked_write(self.rt.db) as session:
            fence = session.scalar(
                update(OAuthGrant)
                .where(
                    OAuthGrant.connection_id == self.connection_id,
                    OAuthGrant.token_version == seen_version,
                    OAuthGrant.status == AuthorizationStatus.AUTHORIZED.value,
                    or_(OAuthGrant.lease_owner.is_(None), OAuthGrant.lease_expires_at < now),
                )
                .values(
                    lease_owner=self.owner, lease_expires_at=until, lease_fence=OAuthGrant.lease_fence + 1
                )
                .returning(OAuthGrant.lease_fence)
                .execution_options(synchronize_session=False)
            )
            if fence is None:
                return None, None
            grant = session.get(OAuthGrant, self.connection_id, populate_existing=True)
            refresh_token = open_refresh_token(grant, self.rt.keyring) if grant is not None else None
        return int(fence), refresh_token

    def _refresh_holding(self, fence: int, refresh_token: str | None) -> str | None:
        """Call the token endpoint under lease ``fence`` and store the answer; ``None`` if fenced out."""
        partner = self._partner_info()
        started = self._clock()
        try:
            if refresh_token is None:
                raise GrantRefused("no_refresh_token")
            with self.rt.db.read() as session:
                client = client_credentials(session, self.rt.keyring, partner.integration_key)
            if client is None:
                raise CredentialsRejected(
                    f"No OAuth client is configured for {partner.name}: an operator must run "
                    f"`tovplus oauth set-client {partner.integration_key} <client-id>` (or set "
                    "TOVPLUS_OAUTH_CLIENTS) before its connections can refresh their access."
                )
            tokens = refresh_tokens(
                self._http or partner_http_client(self.rt.settings),
                partner.token_url,
                client,
                refresh_token,
                timeout=self.rt.settings.oauth_token_timeout_seconds,
                partner=partner.name,
                now=started,
            )
        except GrantRefused as refused:
            if self._grant_gone(fence, partner, refused.error):
                raise CredentialsRejected(reconnect_reason(partner.name)) from None
            return None  # fenced out: whoever took over decides (re-read)
        except BaseException:
            self._release(fence)
            raise
        if not self._store(fence, tokens):
            log.warning(
                "the refresh lease of connection %s was taken over while its refresh ran; "
                "that refresh's answer was discarded",
                self.connection_id,
                extra={"connection_id": self.connection_id},
            )
            return None
        self.refreshes += 1
        return tokens.access_token

    def _grant_gone(self, fence: int, partner: _Partner, error: str) -> bool:
        """Record ``reconnect_required`` if the lease is still ours; ``False`` when fenced out."""
        written = mark_reconnect_required(
            self.rt,
            self.connection_id,
            owner=self.owner,
            fence=fence,
            partner=partner.name,
            error=error,
            now=self._clock(),
        )
        if not written:
            log.warning(
                "connection %s: the partner refused a refresh whose lease had been taken over; "
                "the newer holder's tokens stand",
                self.connection_id,
            )
        return written

    def _store(self, fence: int, tokens: TokenSet) -> bool:
        """The fenced write: the new tokens, one version on, the lease cleared; ``False`` if fenced out."""
        now = self._clock()
        values: dict[str, Any] = _sealed(self.rt, self.connection_id, tokens)
        values.update(
            token_version=OAuthGrant.token_version + 1,
            lease_owner=None,
            lease_expires_at=None,
            refreshed_at=now,
            updated_at=now,
            last_error=None,
        )
        with locked_write(self.rt.db) as session:
            written = session.execute(
                update(OAuthGrant)
                .where(
                    OAuthGrant.connection_id == self.connection_id,
                    OAuthGrant.lease_owner == self.owner,
                    OAuthGrant.lease_fence == fence,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(written.rowcount == 1)  # type: ignore[attr-defined]

    def _release(self, fence: int) -> None:
        """Give the lease back after a failed call (if it is still ours), so the next try need not wait."""
        try:
            with locked_write(self.rt.db) as session:
                session.execute(
                    update(OAuthGrant)
                    .where(
                        OAuthGrant.connection_id == self.connection_id,
                        OAuthGrant.lease_owner == self.owner,
                        OAuthGrant.lease_fence == fence,
                    )
                    .values(lease_owner=None, lease_expires_at=None)
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # the lease expires anyway
            log.exception("releasing the refresh lease of connection %s failed", self.connection_id)

    # --- reads --------------------------------------------------------------------------------

    def _read(self) -> GrantSnapshot:
        with self.rt.db.read() as session:
            grant = session.get(OAuthGrant, self.connection_id)
            if grant is None:
                raise CredentialsRejected(_NOT_GRANTED)
            return GrantSnapshot(
                status=AuthorizationStatus(grant.status),
                access_token=open_access_token(grant, self.rt.keyring),
                expires_at=grant.expires_at,
                version=grant.token_version,
                lease_owner=grant.lease_owner,
                lease_expires_at=grant.lease_expires_at,
            )

    def _require_authorized(self, snap: GrantSnapshot) -> None:
        if snap.status == AuthorizationStatus.RECONNECT_REQUIRED:
            raise CredentialsRejected(reconnect_reason(self._partner_info().name))
        if snap.status != AuthorizationStatus.AUTHORIZED:
            raise CredentialsRejected(_NOT_GRANTED)

    def _partner_info(self) -> _Partner:
        if self._partner is None:
            with self.rt.db.read() as session:
                conn = session.get(Connection, self.connection_id)
                if conn is None:
                    raise CredentialsRejected("This connection does not exist any more.")
                key, config = conn.integration_key, dict(conn.config)
            adapter = self.rt.registry.find(key)
            if adapter is None or adapter.oauth2 is None:
                raise CredentialsRejected(f"The integration {key} does not use OAuth2 (or is not installed).")
            self._partner = _Partner(adapter.name, key, adapter.oauth2.urls(config)[1])
        return self._partner

    @staticmethod
    def _handed_out(snap: GrantSnapshot) -> str:
        assert snap.access_token is not None
        return snap.access_token


def _sealed(rt: Runtime, connection_id: str, tokens: TokenSet) -> dict[str, Any]:
    """The sealed token columns of ``tokens`` (a refresh token only when the partner rotated it)."""
    scrubber.remember(tokens.access_token)
    access = rt.keyring.seal(tokens.access_token, token_aad(connection_id, ACCESS_FIELD))
    values: dict[str, Any] = {
        "access_key_id": access.key_id,
        "access_nonce": access.nonce,
        "access_ciphertext": access.ciphertext,
        "expires_at": tokens.expires_at,
    }
    if tokens.refresh_token is not None:
        scrubber.remember(tokens.refresh_token)
        refresh = rt.keyring.seal(tokens.refresh_token, token_aad(connection_id, REFRESH_FIELD))
        values.update(
            refresh_key_id=refresh.key_id, refresh_nonce=refresh.nonce, refresh_ciphertext=refresh.ciphertext
        )
    if tokens.scopes:
        values["scopes"] = list(tokens.scopes)
    return values
