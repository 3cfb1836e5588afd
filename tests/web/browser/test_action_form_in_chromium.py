"""An action's form in real Chromium: invalid input shows each field's error next to it and keeps
what was typed; corrected, it queues the run with that input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.actions.support import action_runs
from tests.support.web import PASSWORD, person
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PageServer
from tovplus.db.migrate import upgrade
from tovplus.integrations.actions import ActionContext, ActionResult, ActionSpec
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


class NotePrinter(PrintingPartnerAdapter):
    """A printer with an action that takes input: a note (at most 20 characters) and copies."""

    integration_key = "note_printer"
    name = "Note printer"
    actions = (
        ActionSpec(
            "print_note",
            "Print a note",
            "Prints a short note for the guests.",
            input_fields=(
                Field("note", "Note", required=True, max_length=20),
                Field("copies", "Copies", type=FieldType.INTEGER, minimum=1, maximum=10),
            ),
        ),
    )

    def perform(self, action_key: str, input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult(summary=f"printed {input['note']}")


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'pages.db'}",
        queue_url="memory://",
        secret_keys=generate_key(),
    )
    registry = AdapterRegistry()
    registry.register(NotePrinter)
    runtime = build_runtime(settings, registry=registry)
    upgrade(runtime.db.engine)
    yield runtime
    runtime.close()


def test_invalid_action_input_keeps_what_was_typed_with_errors_next_to_the_fields(rt: Runtime) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    planner = person(rt)
    occasion_id = factories.occasion(rt, planner)
    made = factories.connection(rt, planner, occasion_id, integration_key="note_printer")
    connection_id = made.connection["id"]
    errors: list[str] = []
    with PageServer(rt) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=LAPTOP, timezone_id="UTC").new_page()
            page.set_default_timeout(10_000)
            # the refused form's page itself answers 422: Chromium notes that, and only that is fine
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error"
                    and not (
                        m.text.startswith("Failed to load resource")
                        and m.location.get("url", "").endswith("/actions/print_note")
                    )
                    else None
                ),
            )
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/sign-in")
            page.get_by_label("Email").fill(planner.email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            page.goto(f"{server.url}/occasions/{occasion_id}/integrations/connections/{connection_id}")

            card = page.locator('[data-action="print_note"]')
            too_long = "Welcome, dear guests of ours!"
            card.get_by_label("Note").fill(too_long)
            card.get_by_label("Copies").fill("lots")
            with page.expect_response(lambda r: r.request.method == "POST") as answer:
                card.get_by_role("button", name="Print a note").click()
            assert answer.value.status == 422
            page.wait_for_load_state()

            card = page.locator('[data-action="print_note"]')
            assert card.get_by_role("alert").inner_text().strip().endswith("Nothing was sent.")
            note, copies = card.get_by_label("Note"), card.get_by_label("Copies")
            assert note.input_value() == too_long  # what was typed is back in the inputs
            assert copies.input_value() == "lots"
            assert note.get_attribute("aria-invalid") == "true"
            assert copies.get_attribute("aria-invalid") == "true"
            note_field = card.locator(".field", has=page.locator("#f-input-note"))
            copies_field = card.locator(".field", has=page.locator("#f-input-copies"))
            assert "20" in note_field.locator(".field__errors").inner_text()
            assert copies_field.locator(".field__errors").count() == 1
            assert action_runs(rt, connection_id) == []  # nothing was queued

            note.fill("Welcome!")
            copies.fill("3")
            card.get_by_role("button", name="Print a note").click()
            page.wait_for_load_state()
            assert "queued" in page.locator("body").inner_text()
            assert page.locator('[data-action="print_note"] .field--invalid').count() == 0
            (run,) = action_runs(rt, connection_id)
            assert run.input == {"note": "Welcome!", "copies": 3}
        finally:
            browser.close()
    assert errors == []
