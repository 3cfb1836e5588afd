"""The ``tovplus`` command line."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from tovplus.cli_adapters import adapters_app
from tovplus.cli_db import add_db_commands
from tovplus.cli_oauth import oauth_app
from tovplus.cli_support import fail, guarded, settings_or_exit
from tovplus.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")
app = typer.Typer(help="TOV Plus integrations.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their tokens.", no_args_is_help=True)
secrets_app = typer.Typer(help="Encryption keys for stored secrets.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(secrets_app, name="secrets")
app.add_typer(adapters_app, name="adapters")
app.add_typer(oauth_app, name="oauth")
add_db_commands(db_app)  # db prune, db backup


def prepared_runtime(settings: Settings):  # type: ignore[no-untyped-def]
    """Runtime with the schema migrated (embedded start) and stored health refreshed."""
    from tovplus.db.migrate import upgrade
    from tovplus.runtime import build_runtime
    from tovplus.services.connections import refresh_health
    from tovplus.services.oauth import apply_client_settings

    rt = guarded(lambda: build_runtime(settings))
    guarded(lambda: upgrade(rt.db.engine))
    guarded(lambda: refresh_health(rt))
    guarded(lambda: apply_client_settings(rt))  # TOVPLUS_OAUTH_CLIENTS, sealed
    return rt


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """API, pages, worker and scheduler in one process; migrates the database first."""
    settings = settings_or_exit()
    rt = prepared_runtime(settings)
    from tovplus.worker import BackgroundWorker, install_dispatcher

    if settings.run_worker_in_serve:
        _run_http(rt, host, port, background=guarded(lambda: BackgroundWorker(rt)))
    else:
        guarded(lambda: install_dispatcher(rt))
        _run_http(rt, host, port)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Only the HTTP API and pages (scale-out role); run ``tovplus db upgrade`` first."""
    settings = settings_or_exit()
    from tovplus.runtime import build_runtime
    from tovplus.services.oauth import apply_client_settings
    from tovplus.worker import install_dispatcher

    rt = guarded(lambda: build_runtime(settings))
    guarded(lambda: apply_client_settings(rt))  # TOVPLUS_OAUTH_CLIENTS, sealed
    guarded(lambda: install_dispatcher(rt))  # "sync now" goes to the workers' queue
    _run_http(rt, host, port)


def server_stack() -> dict[str, Any]:
    """uvicorn's event loop and HTTP parser: uvloop and httptools (``uvicorn[standard]``, what
    production runs), named explicitly; asyncio and h11 when either is not installed."""
    from importlib.util import find_spec

    return {
        "loop": "uvloop" if find_spec("uvloop") else "asyncio",
        "http": "httptools" if find_spec("httptools") else "h11",
    }


def _run_http(rt, host: str, port: int, *, background=None) -> None:  # type: ignore[no-untyped-def]
    """Serve the app; ``background`` (an embedded worker) starts and stops with it, inside the
    server's lifespan, so SIGTERM/SIGINT (handled by uvicorn) stop it cleanly first."""
    import uvicorn

    from tovplus.app import create_app
    from tovplus.web.clients import uvicorn_proxy_options

    app = create_app(rt)
    if background is not None:
        import asyncio
        from contextlib import asynccontextmanager

        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a):  # type: ignore[no-untyped-def]
            background.start()
            try:
                async with inner(a) as state:
                    yield state
            finally:
                await asyncio.to_thread(background.stop)

        app.router.lifespan_context = lifespan
    # forwarded headers only from TOVPLUS_TRUSTED_PROXIES (uvicorn's default believes 127.0.0.1)
    proxies = uvicorn_proxy_options(rt.settings)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, **proxies, **server_stack())


@app.command()
def worker(
    threads: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker threads (default TOVPLUS_WORKER_THREADS).")
    ] = None,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Take part in electing the scheduler.")
    ] = True,
) -> None:
    """Run queued syncs and webhook deliveries (scale-out role); run ``tovplus db upgrade`` first.

    SIGTERM finishes running tasks (up to 10 s) and exits; SIGINT exits at once. Either way,
    nothing is lost: runs a stopped worker held are taken back when their lease expires."""
    settings = settings_or_exit()
    from tovplus.db.migrate import is_usable
    from tovplus.runtime import build_runtime
    from tovplus.worker import BackgroundWorker

    rt = guarded(lambda: build_runtime(settings))
    if not is_usable(rt.db.engine):  # current, or migrated ahead by a newer release rolling out
        raise fail("the database schema is not current: run `tovplus db upgrade` first")
    from tovplus.services.oauth import apply_client_settings

    guarded(lambda: apply_client_settings(rt))  # TOVPLUS_OAUTH_CLIENTS, sealed
    guarded(lambda: BackgroundWorker(rt, threads=threads, scheduler=scheduler)).run_forever()


@app.command("partner-sim")
def partner_sim(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    step_seconds: Annotated[
        float, typer.Option(min=0.1, help="Seconds between an order's status changes.")
    ] = 60.0,
) -> None:
    """Serve simulated partners: the printer (demo accounts, moving orders) and, under /messaging, the
    messaging partner (OAuth2, RSVPs, messages); both with fault switches."""
    import uvicorn

    from tovplus.logs import configure_logging
    from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY, SimState, create_app

    configure_logging("INFO")
    typer.echo(
        f"partner simulator on http://{host}:{port} (account {DEMO_ACCOUNT_ID}, key {DEMO_API_KEY}); "
        f'switch faults with POST /_control {{"mode": "error500"}}; the messaging partner (OAuth2 client '
        f"tovplus-demo) under http://{host}:{port}/messaging",
        err=True,
    )
    sim = create_app(SimState(step_seconds=step_seconds))
    uvicorn.run(sim, host=host, port=port, log_config=None, access_log=False, **server_stack())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = settings_or_exit()
    from tovplus.db.migrate import current_revision, upgrade
    from tovplus.db.session import Database

    db = guarded(lambda: Database(settings.resolved_database_url))
    guarded(lambda: upgrade(db.engine))
    typer.echo(f"database at revision {guarded(lambda: current_revision(db.engine))}")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="The user's email address.")],
    role: Annotated[str, typer.Option(help="planner or admin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    password: Annotated[
        str | None,
        typer.Option(help="A password for signing in to the pages; '-' reads it from standard input."),
    ] = None,
) -> None:
    """Create a user and print a bearer token for them."""
    settings = settings_or_exit()
    from tovplus.services.auth import ROLES, create_user, issue_user_token, normalise_email

    if role not in ROLES:  # checked before the database is touched: bad input changes nothing
        raise fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    guarded(lambda: normalise_email(email))
    password_hash = None
    if password is not None:
        from tovplus.services.auth import hash_password

        reads_stdin = password == "-"  # noqa: S105 - the "read it from stdin" marker
        secret = sys.stdin.readline().rstrip("\r\n") if reads_stdin else password
        password_hash = guarded(lambda: hash_password(secret))
    rt = prepared_runtime(settings)

    def create() -> tuple[str, str, str, str]:
        with rt.db.write() as session:
            user = create_user(session, email, role, password_hash=password_hash)
            token = issue_user_token(session, user)
            return user.id, user.email, user.role, token

    user_id, user_email, user_role, token = guarded(create)
    if as_json:
        typer.echo(json.dumps({"user_id": user_id, "email": user_email, "role": user_role, "token": token}))
    else:
        typer.echo(f"created {user_role} {user_email} ({user_id})\ntoken: {token}")
        if password_hash is not None:
            typer.echo(f"sign in to the pages at {settings.public_base_url}/sign-in")


@app.command()
def demo() -> None:
    """Seed a demo occasion, users and connections, and print how to sign in."""
    settings = settings_or_exit()
    rt = prepared_runtime(settings)
    from tovplus.services.demo import seed_demo

    typer.echo(guarded(lambda: seed_demo(rt)))


@secrets_app.command("add-key")
def secrets_add_key() -> None:
    """Add a new newest key to the data dir's key file (then run ``reencrypt``)."""
    settings = settings_or_exit()
    if settings.secret_keys:
        raise fail("TOVPLUS_SECRET_KEYS is set: add the new key there (see `tovplus secrets generate-key`).")
    from tovplus.runtime.keyring import add_key_to_file

    typer.echo(f"new primary key {add_key_to_file(settings.data_dir)}")


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key entry for TOVPLUS_SECRET_KEYS."""
    from tovplus.runtime.keyring import generate_key

    typer.echo(generate_key())


@secrets_app.command("reencrypt")
def secrets_reencrypt() -> None:
    """Re-encrypt every stored secret under the newest key."""
    settings = settings_or_exit()
    rt = prepared_runtime(settings)
    from tovplus.services import oauth
    from tovplus.services.callbacks import reencrypt_signing_secrets
    from tovplus.services.credentials import reencrypt_all

    def reencrypt(session: Session) -> dict[str, int]:
        counts = reencrypt_all(session, rt.keyring) | reencrypt_signing_secrets(session, rt.keyring)
        counts["oauth_grants"] = oauth.reseal_grants(session, rt.keyring)
        counts["oauth_clients"] = oauth.reseal_clients(session, rt.keyring)
        return counts

    with rt.db.write() as session:
        counts = guarded(lambda: reencrypt(session))
    typer.echo(
        f"re-encrypted under {rt.keyring.primary_id}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
