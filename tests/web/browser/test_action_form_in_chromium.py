"""An action's form in real Chromium: invalid input shows each field's error next to it and keeps
what was typed; corrected, it queues the run with that input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.actions.support import action_runs
from tests.support.web import person
from tests.web.browser.kit import chromium, page_runtime, sign_in
from tests.web.browser.server import PageServer
from tovplus.integrations.actions import ActionContext, ActionResult, ActionSpec
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime

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
    registry = AdapterRegistry()
    registry.register(NotePrinter)
    with page_runtime(tmp_path, registry) as runtime:
        yield runtime


def test_invalid_action_input_keeps_what_was_typed_with_errors_next_to_the_fields(rt: Runtime) -> None:
    planner = person(rt)
    occasion_id = factories.occasion(rt, planner)
    made = factories.connection(rt, planner, occasion_id, integration_key="note_printer")
    connection_id = made.connection["id"]
    errors: list[str] = []

    def refused(m: Any) -> bool:
        """The refused form's page itself answers 422: Chromium notes that, and only that is fine."""
        return bool(
            m.text.startswith("Failed to load resource")
            and m.location.get("url", "").endswith("/actions/print_note")
        )

    with PageServer(rt) as server, chromium(errors, allow_console=refused) as page:
        sign_in(page, server.url, planner)
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
    assert errors == []
