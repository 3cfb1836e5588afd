"""Save PNGs of the planner's and the admin's pages, with demo data, into docs/screenshots/.

Usage: ``make screenshots`` (or ``.venv/bin/python scripts/screenshots.py [--out DIR]``).
It seeds a throwaway SQLite database with the demo data plus a few more occasions in
various states, serves the pages on a free loopback port and drives Debian's Chromium
(``/usr/bin/chromium``, or ``$TOVPLUS_CHROMIUM``) with Playwright at laptop and phone widths.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, update  # noqa: E402
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE, PageServer  # noqa: E402

from tovplus.db.ids import new_id  # noqa: E402
from tovplus.db.migrate import upgrade  # noqa: E402
from tovplus.db.models import Connection, SyncedRecord, SyncRun, User  # noqa: E402
from tovplus.runtime import Runtime, build_runtime  # noqa: E402
from tovplus.runtime.keyring import generate_key  # noqa: E402
from tovplus.services import activity, occasions  # noqa: E402
from tovplus.services.auth import UserCaller, create_user  # noqa: E402
from tovplus.services.auth.web_sessions import set_password  # noqa: E402
from tovplus.services.connections import (  # noqa: E402
    ConnectionCreate,
    ConnectionPatch,
    create_connection,
    update_connection,
)
from tovplus.services.demo import ADMIN_EMAIL, DEMO_PASSWORD, PLANNER_EMAIL, seed_demo  # noqa: E402
from tovplus.services.demo_handoff import DEMO_LABELS  # noqa: E402
from tovplus.settings import Settings  # noqa: E402


def _caller(rt: Runtime, email: str) -> UserCaller:
    with rt.db.read() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        return UserCaller(user.id, user.email, user.role)


def _set_health(rt: Runtime, connection_id: str, health: str, reasons: list[str], *, failed: bool) -> None:
    now = datetime.now(UTC)
    with rt.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(
                health=health,
                health_reasons=reasons,
                sync_health=health,
                sync_health_reasons=reasons,
                last_sync_at=now - timedelta(minutes=7),
                last_sync_status="failed" if failed else "succeeded",
            )
        )


def seed(rt: Runtime) -> str:
    """The demo data, plus records, runs, activity and other occasions in every state."""
    seed_demo(rt)
    planner = _caller(rt, PLANNER_EMAIL)
    now = datetime.now(UTC)
    with rt.db.read() as session:
        demo_occasion = occasions.list_planned_occasions(session, planner.user_id)[0]
        printing = session.scalar(
            select(Connection).where(
                Connection.occasion_id == demo_occasion.id, Connection.integration_key == "printing_partner"
            )
        )
        assert printing is not None
        printing_id = printing.id
    with rt.db.write() as session:
        statuses = [
            ("ORD-1042", "proof_ready", None),
            ("ORD-1043", "printing", None),
            ("ORD-1044", "shipped", "UA-77310045"),
            ("ORD-1045", "delivered", "UA-77310046"),
        ]
        for i, (order_id, status, tracking) in enumerate(statuses):
            at = now - timedelta(hours=5 - i)
            session.add(
                SyncedRecord(
                    id=new_id("rec"),
                    connection_id=printing_id,
                    kind="print_order",
                    external_id=order_id,
                    data={"order_id": order_id, "status": status, "tracking_number": tracking},
                    source_updated_at=at,
                    updated_at=at,
                )
            )
        session.add(
            SyncRun(
                id=new_id("run"),
                connection_id=printing_id,
                state="succeeded",
                trigger="schedule",
                requested_by="system",
                attempt=1,
                records_written=4,
                created_at=now - timedelta(minutes=12),
                started_at=now - timedelta(minutes=12),
                finished_at=now - timedelta(minutes=11),
            )
        )
        for kind, summary in (
            ("sync.started", "Printing partner sync started"),
            ("sync.completed", "Printing partner sync completed: 4 orders"),
            ("callback.received", "Order ORD-1044 is now shipped"),
        ):
            activity.record(
                session,
                kind=kind,
                actor="system" if kind.startswith("sync") else f"integration:{printing_id}",
                summary=summary,
                occasion_id=demo_occasion.id,
                connection_id=printing_id,
                integration_key="printing_partner",
                details={"records": 4} if kind == "sync.completed" else {},
            )
    with rt.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.id == printing_id)
            .values(
                health="healthy",
                sync_health="healthy",
                last_sync_at=now - timedelta(minutes=11),
                last_sync_status="succeeded",
            )
        )

    # Another planner's occasions, for the admin's view.
    with rt.db.write() as session:
        other = create_user(session, "mariia@studio-svitlo.test", "planner")
        set_password(session, other, DEMO_PASSWORD)
        other_caller = UserCaller(other.id, other.email, other.role)
        summit = occasions.create_occasion(session, other_caller, "Kyiv Product Summit", date(2027, 9, 23))
        gala = occasions.create_occasion(session, other_caller, "Charity gala — Lviv", date(2027, 11, 5))
        session.flush()
        summit_id, gala_id = summit.id, gala.id
    base = "http://127.0.0.1:8100"
    failing = create_connection(
        rt,
        other_caller,
        summit_id,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": "summit-badges", "api_base_url": base},
            secrets={"api_key": "sk_summit_badges_0000_9f3a"},
            state="enabled",
        ),
    ).connection
    _set_health(
        rt,
        failing["id"],
        "failing",
        ["The printer refused our API key (HTTP 401). Ask the printer for a new key and save it here."],
        failed=True,
    )
    degraded = create_connection(
        rt,
        other_caller,
        gala_id,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": "gala-invites", "api_base_url": base},
            secrets={"api_key": "sk_gala_invites_0000_77c1"},
            state="enabled",
        ),
    ).connection
    _set_health(
        rt,
        degraded["id"],
        "degraded",
        ["The printer account is suspended, not active: contact the printer to reactivate it."],
        failed=False,
    )
    venue = create_connection(
        rt,
        other_caller,
        summit_id,
        ConnectionCreate(
            "venue_ops", config={"venue_id": "arena-hall-2"}, secrets={"api_token": "vt_0000_arena"}
        ),
    ).connection
    update_connection(rt, other_caller, summit_id, venue["id"], ConnectionPatch(state="enabled"))
    _set_health(rt, venue["id"], "healthy", [], failed=False)
    old = create_connection(
        rt,
        other_caller,
        gala_id,
        ConnectionCreate(
            "venue_ops", config={"venue_id": "opera-foyer"}, secrets={"api_token": "vt_0000_opera"}
        ),
    ).connection
    update_connection(rt, other_caller, gala_id, old["id"], ConnectionPatch(state="revoked"))
    return demo_occasion.id


def sign_in(page, url: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def shoot(browser, url: str, out: Path, occasion_id: str) -> list[Path]:  # type: ignore[no-untyped-def]
    saved: list[Path] = []

    def save(page, name: str) -> None:  # type: ignore[no-untyped-def]
        path = out / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)

    for label, viewport in (("", LAPTOP), ("-phone", PHONE)):
        context = browser.new_context(viewport=viewport, device_scale_factor=1, timezone_id="UTC")
        page = context.new_page()
        if not label:
            page.goto(f"{url}/sign-in")
            save(page, "sign-in")
        sign_in(page, url, PLANNER_EMAIL)
        page.goto(f"{url}/occasions/{occasion_id}/integrations")
        save(page, f"planner-integrations{label}")
        page.get_by_role("link", name=DEMO_LABELS["printing_partner"], exact=True).first.click()
        page.get_by_text("Rotate key…").click()
        page.get_by_role("button", name="Rotate the key").click()
        page.wait_for_load_state("networkidle")
        save(page, f"connection-detail{label}")
        if not label:
            page.goto(f"{url}/occasions/{occasion_id}/integrations/new/printing_partner")
            page.get_by_label("API base URL").fill("https://api.printer.example/v1")
            page.get_by_role("button", name="Connect and enable").click()
            page.wait_for_load_state("networkidle")
            save(page, "connection-create-errors")
        context.close()

        context = browser.new_context(viewport=viewport, device_scale_factor=1, timezone_id="UTC")
        page = context.new_page()
        sign_in(page, url, ADMIN_EMAIL)
        save(page, f"admin-integrations{label}")
        if not label:
            page.get_by_label("Health").select_option("failing")
            page.get_by_role("button", name="Apply filters").click()
            page.wait_for_load_state("networkidle")
            save(page, "admin-failing")
        context.close()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"screenshots: {CHROMIUM} is missing; run `make browser` first", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tovplus-shots-") as tmp:
        settings = Settings(
            environment="development",
            data_dir=Path(tmp),
            database_url=f"sqlite:///{tmp}/demo.db",
            queue_url="memory://",
            secret_keys=generate_key(),
            allow_private_urls=True,
        )
        rt = build_runtime(settings)
        upgrade(rt.db.engine)
        occasion_id = seed(rt)
        try:
            with PageServer(rt) as server, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    saved = shoot(browser, server.url, args.out, occasion_id)
                finally:
                    browser.close()
        finally:
            rt.close()
    for path in saved:
        print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
