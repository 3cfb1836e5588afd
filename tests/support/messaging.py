"""The messaging partner simulator in-process, for the guest_messaging adapter's tests: a
``TestClient`` over the simulator app, a clock the tests move, and a tiny :class:`TokenSource`
that gets its tokens from the simulator (``/_control/grants``, then ``/oauth/token``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from starlette.testclient import TestClient

from tovplus.errors import CredentialsRejected
from tovplus.integrations.auth import BearerAuth
from tovplus.integrations.http import with_auth
from tovplus.partner_sim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, MessagingState, SimState, create_app

BASE = "http://sim.test/messaging"
CONFIG = {"sender_name": "Olena & Taras", "api_base_url": BASE, "oauth_base_url": BASE}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class SimTokens:
    """A connection's tokens as the framework would hold them, minted at the simulator."""

    def __init__(self, raw: httpx.Client) -> None:
        self.raw = raw
        minted = raw.post(f"{BASE}/_control/grants", json={"client_id": DEMO_CLIENT_ID})
        assert minted.status_code == 200, minted.text
        self.access, self.refresh = minted.json()["access_token"], minted.json()["refresh_token"]
        self.refreshes = 0

    def access_token(self) -> str:
        return self.access

    def refresh_after_rejection(self, rejected: str) -> str:
        if rejected != self.access:
            return self.access
        answer = self.raw.post(
            f"{BASE}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.refresh,
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        )
        if answer.status_code != 200:
            raise CredentialsRejected("The messaging partner refused the grant.")
        self.refreshes += 1
        self.access, self.refresh = answer.json()["access_token"], answer.json()["refresh_token"]
        return self.access


@dataclass
class MessagingSim:
    raw: httpx.Client
    state: MessagingState
    clock: Clock
    tokens: SimTokens
    #: What the framework hands an adapter as ``ctx.http``: the bearer on every request.
    http: httpx.Client

    def control(self, **switches: object) -> None:
        answer = self.raw.post(f"{BASE}/_control", json=switches)
        assert answer.status_code == 200, answer.text

    def rsvps(self, *items: tuple[str, str]) -> None:
        body = {"rsvps": [{"guest_id": g, "response": r} for g, r in items]}
        assert self.raw.post(f"{BASE}/_control/rsvps", json=body).status_code == 200

    def stats(self) -> dict[str, object]:
        return dict(self.raw.get(f"{BASE}/_control/stats").json())


@contextmanager
def messaging_sim() -> Iterator[MessagingSim]:
    clock = Clock()
    state = MessagingState(clock=clock)
    app = create_app(SimState(demo=False), state)
    with TestClient(app, base_url="http://sim.test", follow_redirects=False) as raw:
        tokens = SimTokens(raw)
        yield MessagingSim(raw, state, clock, tokens, with_auth(raw, BearerAuth(tokens)))
