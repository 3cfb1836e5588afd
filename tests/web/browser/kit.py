"""What the real-browser tests share: a page server's runtime, Chromium with a console watch, the
sign-in, and a thread that stands in for ``tovplus worker`` (the page server runs none)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from tests.support.web import PASSWORD, Person
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP
from tovplus.db.migrate import upgrade
from tovplus.db.models import ActionRun, SyncRun
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import actions, sync
from tovplus.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page


@contextmanager
def page_runtime(tmp_path: Path, registry: AdapterRegistry | None = None) -> Iterator[Runtime]:
    """A runtime over its own migrated SQLite file, private URLs allowed (the simulator is on loopback)."""
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'pages.db'}",
        queue_url="memory://",
        secret_keys=generate_key(),
        allow_private_urls=True,
    )
    runtime = build_runtime(settings, **({"registry": registry} if registry is not None else {}))
    upgrade(runtime.db.engine)
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def chromium(
    errors: list[str],
    *,
    timezone_id: str = "UTC",
    viewport: dict[str, int] = LAPTOP,
    allow_console: Callable[[ConsoleMessage], bool] | None = None,
) -> Iterator[Page]:
    """A page in Debian's Chromium whose console errors and page errors land in ``errors``
    (``allow_console`` lets a test accept the ones it causes on purpose)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and not (allow_console and allow_console(message)):
            errors.append(message.text)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=viewport, timezone_id=timezone_id).new_page()
            page.set_default_timeout(10_000)
            page.on("console", console)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
        finally:
            browser.close()


def sign_in(page: Page, base_url: str, who: Person) -> None:
    """Sign ``who`` in on the sign-in page, as a person would."""
    page.goto(base_url + "/sign-in")
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


class StandInWorker:
    """Runs queued sync and action runs every 0.3 s until the block ends (what ``tovplus worker`` does)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stand-in-worker", daemon=True)

    def __enter__(self) -> StandInWorker:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            with self.rt.db.read() as session:
                syncs = list(session.scalars(select(SyncRun.id).where(SyncRun.state == "queued")))
                acts = list(session.scalars(select(ActionRun.id).where(ActionRun.state == "queued")))
            for run_id in syncs:
                sync.execute_run(self.rt, run_id, worker_id="stand-in")
            for run_id in acts:
                actions.execute_action_run(self.rt, run_id, worker_id="stand-in")
