"""``tovplus oauth set-client`` and ``tovplus oauth clients``: the operator's OAuth clients.

The client secret is read from a hidden prompt or, with ``--client-secret-stdin``, from the first
line of standard input; it is never echoed, printed or logged. ``TOVPLUS_OAUTH_CLIENTS`` sets the
same clients at start, but never over one set here.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tovplus.cli_support import fail, guarded, settings_or_exit

if TYPE_CHECKING:
    from tovplus.runtime import Runtime

oauth_app = typer.Typer(help="OAuth clients of the adapters that connect with OAuth2.", no_args_is_help=True)
MAX_CLIENT_ID = 500


def _runtime() -> Runtime:
    from tovplus.db.migrate import is_usable
    from tovplus.runtime import build_runtime

    settings = settings_or_exit()
    rt = guarded(lambda: build_runtime(settings))
    if not guarded(lambda: is_usable(rt.db.engine)):
        rt.close()
        raise fail("the database schema is not current: run `tovplus db upgrade` first")
    return rt


def _read_secret(from_stdin: bool) -> str:
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = typer.prompt("Client secret", hide_input=True, confirmation_prompt=False, err=True)
    if not secret.strip():
        raise fail("the client secret is empty")
    if len(secret) > 2000 or any(ord(c) < 32 for c in secret):
        raise fail("the client secret must be one line of at most 2000 characters")
    return secret


@oauth_app.command("set-client")
def set_client(
    integration_key: Annotated[str, typer.Argument(help="The oauth2 adapter, e.g. guest_messaging.")],
    client_id: Annotated[str, typer.Option("--client-id", help="The client id the partner issued.")],
    client_secret_stdin: Annotated[
        bool,
        typer.Option("--client-secret-stdin", help="Read the secret from standard input (else a prompt)."),
    ] = False,
) -> None:
    """Store (or replace) an adapter's OAuth client; the secret is sealed like every secret."""
    from tovplus.services import oauth

    client_id = client_id.strip()
    if not client_id or len(client_id) > MAX_CLIENT_ID or any(ord(c) < 32 for c in client_id):
        raise fail(f"--client-id must be one line of 1 to {MAX_CLIENT_ID} characters")
    rt = _runtime()
    try:
        adapter = guarded(lambda: oauth.oauth2_adapter(rt, integration_key))
        secret = _read_secret(client_secret_stdin)

        def store() -> None:
            with rt.db.write() as session:
                oauth.set_client(session, rt.keyring, adapter.integration_key, client_id, secret, actor="cli")

        guarded(store)
    finally:
        rt.close()
    typer.echo(
        f"OAuth client of {adapter.integration_key} set (client id {client_id}); the secret is stored sealed"
    )


@oauth_app.command("clients")
def clients(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every oauth2 adapter and its client id (never a secret), or that none is set."""
    from tovplus.services import oauth

    rt = _runtime()
    try:

        def read() -> dict[str, str]:
            with rt.db.read() as session:
                return oauth.configured_clients(session)

        configured = guarded(read)
        keys = sorted({a.integration_key for a in rt.registry if a.oauth2 is not None} | set(configured))
    finally:
        rt.close()
    if as_json:
        typer.echo(
            json.dumps({"clients": [{"integration_key": k, "client_id": configured.get(k)} for k in keys]})
        )
        return
    if not keys:
        typer.echo("no installed adapter connects with OAuth2")
    for key in keys:
        typer.echo(f"{key}\t{configured.get(key, '(not configured)')}")
