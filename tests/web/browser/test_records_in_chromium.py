"""Deleted records and "Sync everything again" on the connection page, in real Chromium."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.web.browser.test_pages_in_chromium import Site, browser, site, tab_factory  # noqa: F401
from tovplus.integrations.contract import RecordUpsert
from tovplus.integrations.sync_state import RecordDelete
from tovplus.services import connections, records
from tovplus.services.connections import ConnectionCreate

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


def _connection_with_a_deleted_record(where: Site) -> str:
    made = connections.create_connection(
        where.rt,
        where.planner.caller,
        where.occasion_id,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": "records-browser", "api_base_url": "https://printer.example.com/api"},
            secrets={"api_key": "sk_records_browser_0001"},
            state="enabled",
        ),
    ).connection["id"]
    stamp = datetime(2026, 11, 25, 19, 40, tzinfo=UTC)
    with where.rt.db.write() as session:
        records.upsert_records(
            session,
            made,
            [
                RecordUpsert("print_order", "kept-order", {"status": "printing"}, stamp),
                RecordUpsert("print_order", "gone-order", {"status": "proof_ready"}, stamp),
            ],
        )
        records.delete_records(session, made, [RecordDelete("print_order", "gone-order")])
    return str(made)


def test_deleted_records_show_struck_through_when_asked_and_a_full_sync_can_be_queued(
    tab_factory: Any,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    connection_id = _connection_with_a_deleted_record(site)
    tab = tab_factory()
    page = tab.page
    tab.sign_in(site.planner)
    tab.goto(f"/occasions/{site.occasion_id}/integrations/connections/{connection_id}")
    table = page.locator("section:has(#records-title)")
    assert "kept-order" in table.inner_text()
    assert "gone-order" not in table.inner_text()

    page.get_by_role("link", name="Show deleted records").click()
    page.wait_for_load_state()
    gone = page.locator("tr[data-deleted]")
    assert gone.count() == 1
    assert "gone-order" in gone.locator("del").first.inner_text()
    assert "Deleted" in gone.inner_text()
    decoration = gone.locator("del").first.evaluate("el => getComputedStyle(el).textDecorationLine")
    assert decoration == "line-through"
    assert page.locator("tr:not([data-deleted]) del").count() == 0  # the live record is not struck
    page.get_by_role("link", name="Hide deleted records").click()
    page.wait_for_load_state()
    assert page.locator("tr[data-deleted]").count() == 0

    page.get_by_role("button", name="Sync everything again").click()
    page.wait_for_load_state()
    assert "Full sync queued" in page.locator(".alert--success").inner_text()
    assert "full" in page.locator('ol[aria-label="Recent sync runs"]').inner_text()
