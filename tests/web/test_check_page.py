"""The connection page's "Test connection" button: shown for adapters with a check (drafts too), a
CSRF-checked POST, and the result in words next to the button after the 303."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.sync import Sim, activity_of, make_connection, simulator
from tests.support.web import WebUser, occasion, person
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY
from tovplus.runtime import Runtime
from tovplus.services import connections
from tovplus.services.connections import ConnectionCreate, ConnectionPatch

WRONG_KEY = "pk_live_WRONGWRONGWRONG42"
RESULT_RE = re.compile(
    r'<p id="check-result" class="check-test__result (text-good|text-bad)"[^>]*>([^<]*)</p>'
)


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


def _page(runtime: Runtime, client: TestClient, sim: Sim, **kw: str) -> tuple[WebUser, str, str]:
    planner = person(runtime)
    occ = occasion(runtime, planner, "Olena & Taras")
    made = make_connection(runtime, sim.url, who=(planner.caller, ""), occasion_id=occ, **kw)
    return WebUser(client, planner), occ, f"/occasions/{occ}/integrations/connections/{made.connection_id}"


def _result(html: str) -> tuple[str, str] | None:
    match = RESULT_RE.search(html)
    return None if match is None else (match.group(1), match.group(2))


def test_working_credentials_show_works_next_to_the_button(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    web, _, url = _page(runtime, client, sim)
    before = web.get(url).text
    assert "Test connection" in before
    assert f'action="{url}/check"' in before
    assert _result(before) is None
    r = web.post(f"{url}/check", csrf=web.csrf(url))
    assert r.status_code == 303
    assert r.headers["location"].startswith(url)
    page = web.follow(r)
    assert _result(page.text) == ("text-good", f"Works — signed in as printer account {DEMO_ACCOUNT_ID}.")
    assert DEMO_API_KEY not in page.text
    assert "Connection tested" in page.text  # the activity entry, labelled
    # shown once: the next visit has no result any more
    assert _result(web.get(url).text) is None


def test_rejected_credentials_show_the_problem_and_failing_health(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    web, _, url = _page(runtime, client, sim, api_key=WRONG_KEY)
    page = web.follow(web.post(f"{url}/check", csrf=web.csrf(url)))
    assert _result(page.text) == (
        "text-bad",
        "Did not work: The printer rejected the API key: enter a current API key for this connection.",
    )
    assert "Connection test: The printer rejected the API key" in page.text  # the health reason
    assert WRONG_KEY not in page.text


def test_drafts_have_the_button_too(client: TestClient, runtime: Runtime, sim: Sim) -> None:
    web, _, url = _page(runtime, client, sim, state="draft")
    page = web.follow(web.post(f"{url}/check", csrf=web.csrf(url)))
    assert _result(page.text) == ("text-good", f"Works — signed in as printer account {DEMO_ACCOUNT_ID}.")


def test_no_button_for_adapters_without_a_check_or_revoked_connections(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    web, occ, url = _page(runtime, client, sim)
    venue = connections.create_connection(
        runtime,
        web.who.caller,  # type: ignore[union-attr]
        occ,
        ConnectionCreate(
            "venue_ops", config={"venue_id": "hall-1"}, secrets={"api_token": "venue-token-1234"}
        ),
    )
    venue_url = f"/occasions/{occ}/integrations/connections/{venue.connection['id']}"
    assert "Test connection" not in web.get(venue_url).text
    # a POST anyway is refused in words, and nothing is recorded
    refused = web.follow(web.post(f"{venue_url}/check", csrf=web.csrf(venue_url)))
    assert "This integration cannot test its connection." in refused.text
    assert activity_of(runtime, venue.connection["id"], "connection.checked") == []
    cid = url.rsplit("/", 1)[1]
    connections.update_connection(runtime, web.who.caller, occ, cid, ConnectionPatch(state="revoked"))  # type: ignore[union-attr]
    assert "Test connection" not in web.get(url).text


def test_the_check_needs_a_csrf_token_and_the_right_planner(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    web, _, url = _page(runtime, client, sim)
    cid = url.rsplit("/", 1)[1]
    for data in ({}, {"csrf_token": "x" * 43}):
        r = web.client.post(f"{url}/check", data=data, follow_redirects=False)
        assert r.status_code == 403
    intruder = WebUser(client, person(runtime))
    assert intruder.post(f"{url}/check", csrf=intruder.csrf()).status_code == 404
    assert activity_of(runtime, cid, "connection.checked") == []
