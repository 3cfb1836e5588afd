"""The refresh race across OS processes: three processes all needing the same connection's token.

A tiny token server (a thread here) issues access tokens that expire in 2 s and refresh tokens
that rotate on every use and are refused when used again. Three OS processes ask
``GrantTokenSource.access_token()`` in a loop (refreshing within 1.4 s of expiry) and use every
token at once against the server's API. Over at least 50 expiries:

* the server sees exactly one refresh per expiry: never a reused refresh token, and no refresh
  of a token that was not due yet (the stored token, read as each refresh arrives, was within the
  margin of expiry; two processes refreshing the same expiry would break that);
* no process ever gets a token the server does not accept.

Then the server makes the next token call slow, the process holding the lease for it is SIGKILLed
mid-call, and the next process refreshes once that lease has expired, with nothing left broken.
Runs on SQLite (a WAL file) and PostgreSQL, about 30 to 45 s each.
"""

from __future__ import annotations

import json
import os
import select as selectlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.oauth.support import DUE_SLACK, TokenIssuer, authorized_connection, registry, stored_token_left
from tests.support.sync import env_for
from tovplus.db.models import OAuthGrant
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.runtime import Runtime, build_runtime
from tovplus.settings import Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LIFETIME = 2.0
MARGIN = 1.4
LEASE = 3.0
TOKEN_TIMEOUT = 2.0
EXPIRIES = 50
PROCESSES = 3


class TokenServer:
    """``POST /oauth/token`` (refresh_token grant) and ``GET /api/check`` over a :class:`TokenIssuer`."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer
        self.slow_next = 0.0
        self.slow_started = threading.Event()
        self.abandoned: list[str] = []
        self.lock = threading.Lock()
        #: Set once the connection exists: ``stored_token_left`` for it, read as a refresh arrives.
        self.watch: Callable[[], float | None] | None = None
        self.left: list[float | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                token = self.headers.get("authorization", "").removeprefix("Bearer ")
                self._answer(200 if server.issuer.valid(token) else 401, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                refresh_token = form.get("refresh_token", [""])[0]
                with server.lock:
                    slow, server.slow_next = server.slow_next, 0.0
                if slow and server.wait_while_connected(self.connection, slow):
                    server.abandoned.append(refresh_token)  # the caller died: nothing was issued
                    return
                if server.watch is not None:
                    server.left.append(server.watch())
                status, body = server.issuer.refresh(refresh_token)
                self._answer(status, body)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def wait_while_connected(self, conn: socket.socket, seconds: float) -> bool:
        """Hold a slow call up to ``seconds``; ``True`` as soon as the caller hangs up."""
        self.slow_started.set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            readable, _, _ = selectlib.select([conn], [], [], 0.05)
            if readable:
                try:
                    if conn.recv(1, socket.MSG_PEEK) == b"":
                        return True
                except OSError:
                    return True
        return False

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Racer:
    popen: subprocess.Popen[bytes]
    out: Path
    log: Path

    def result(self) -> dict[str, Any]:
        return dict(json.loads(self.out.read_text()))


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(settings, registry=registry())
    yield runtime
    runtime.close()


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def grant_of(rt: Runtime, connection_id: str) -> OAuthGrant:
    with rt.db.read() as session:
        grant = session.get(OAuthGrant, connection_id)
        assert grant is not None
        session.expunge(grant)
        return grant


def test_one_refresh_per_expiry_across_processes_and_a_killed_holder(rt, settings, tmp_path):
    issuer = TokenIssuer(lifetime=LIFETIME)
    with TokenServer(issuer) as server:
        config = {"api_base_url": f"{server.url}/api", "oauth_base_url": server.url}
        made = authorized_connection(rt, issuer, config=config)
        server.watch = lambda: stored_token_left(rt, made.connection_id)
        env = env_for(
            settings,
            TOVPLUS_OAUTH_REFRESH_MARGIN_SECONDS=str(MARGIN),
            TOVPLUS_OAUTH_REFRESH_LEASE_SECONDS=str(LEASE),
            TOVPLUS_OAUTH_TOKEN_TIMEOUT_SECONDS=str(TOKEN_TIMEOUT),
            TOVPLUS_QUEUE_URL="memory://",
            PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        )
        stop = tmp_path / "stop"
        racers = []
        for i in range(PROCESSES):
            out, log = tmp_path / f"racer{i}.json", tmp_path / f"racer{i}.log"
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.processes.oauth_race_worker",
                    made.connection_id,
                    f"p{i}",
                    f"{server.url}/api",
                    str(stop),
                    str(out),
                ],
                env=env,
                cwd=str(ROOT),
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            racers.append(Racer(popen, out, log))
        try:
            # the race: >= 50 expiries with every process asking all the time
            wait_for(lambda: len(issuer.refreshes) >= EXPIRIES, 75, f"{EXPIRIES} refreshes")
            # a holder killed mid-call: the next process refreshes after its lease ends
            before = len(issuer.refreshes)
            left_in_race = server.left[:before]
            server.slow_next = 10.0
            wait_for(server.slow_started.is_set, 10, "the slow token call")
            holder = grant_of(rt, made.connection_id)
            assert holder.lease_owner is not None
            assert holder.lease_expires_at is not None
            victim = next(r for r in racers if holder.lease_owner.startswith(f"p{racers.index(r)}:"))
            victim.popen.send_signal(signal.SIGKILL)
            victim.popen.wait(10)
            killed_at = time.time()
            wait_for(lambda: len(issuer.refreshes) >= before + 3, 20, "refreshes after the kill")
            stop.touch()
            alive = [r for r in racers if r is not victim]
            for r in alive:
                r.popen.wait(20)
        finally:
            stop.touch()
            for r in racers:
                if r.popen.poll() is None:
                    r.popen.kill()
                    r.popen.wait(10)
        logs = "\n".join(f"--- {r.log.name}\n{r.log.read_text()[-3000:]}" for r in racers)
        results = [r.result() for r in alive]

    refreshes = issuer.refreshes
    print(  # shown with -s: how the work was shared
        f"refreshes={len(refreshes)} abandoned={len(server.abandoned)} "
        f"youngest refreshed={min(r['age'] for r in refreshes):.3f}s "
        + " ".join(f"{r['owner'][:2]}: calls={r['calls']} refreshes={r['refreshes']}" for r in results)
    )
    assert issuer.reused == [], logs
    used = [r["token"] for r in refreshes]
    assert len(used) == len(set(used)), "a refresh token was used twice"
    assert len(left_in_race) == before, left_in_race
    assert None not in left_in_race, left_in_race
    early = [round(t, 3) for t in left_in_race if t is not None and t > MARGIN + DUE_SLACK]
    assert early == [], f"refreshes of tokens not due yet (two refreshes for one expiry): {early}"
    assert len(refreshes) >= EXPIRIES + 3
    for result in results:
        assert result["errors"] == [], logs
        assert result["invalid"] == 0, logs
        assert result["calls"] > 0
    # the processes shared the work: every refresh was made by one of them, counted once
    assert sum(r["refreshes"] for r in results) <= len(refreshes)
    # the killed holder's call issued nothing; the next refresh came after its lease had expired
    assert server.abandoned, "the slow call was not abandoned by its killed caller"
    after_kill = [r for r in refreshes if r["at"] > killed_at]
    assert after_kill
    assert after_kill[0]["token"] == server.abandoned[0]  # the same, never-used refresh token
    assert after_kill[0]["at"] >= holder.lease_expires_at.timestamp() - 0.05
    final = grant_of(rt, made.connection_id)
    assert final.status == AuthorizationStatus.AUTHORIZED
    assert final.lease_owner is None or final.lease_owner != holder.lease_owner
