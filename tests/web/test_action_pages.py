"""The actions section of the connection page, its form post and its poll route; the catalog card."""

from __future__ import annotations

from typing import Any

from tests.actions.support import action_runs, connected, run_all
from tests.factories import guest
from tests.support.web import WebUser, person
from tovplus.runtime import Runtime


def test_the_page_runs_an_action_and_the_poll_route_says_how_it_went(runtime: Runtime, client: Any) -> None:
    planner = person(runtime)
    with connected(runtime, who=(planner.caller, "")) as (_sim, made):
        guest(runtime, made.caller, made.occasion_id, "Ola")
        web = WebUser(client, planner)
        url = f"/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}"
        page = web.get(url).text
        assert "Send guest list" in page
        assert "Sends the occasion&#39;s guest list" in page
        assert "No action has run yet." in page
        token = web.csrf(url)
        form = {"idempotency_key": "page-abc-export_guests"}
        r = web.post(f"{url}/actions/export_guests", form, csrf=token)
        assert r.status_code == 303
        assert "queued" in web.follow(r).text
        again = web.post(f"{url}/actions/export_guests", form, csrf=token)  # the same form sent twice
        assert "nothing was sent twice" in web.follow(again).text
        assert len(action_runs(runtime, made.connection_id)) == 1
        polled = web.get(f"{url}/action-runs.json").json()
        assert polled["active"] is True
        assert polled["runs"][0]["state_label"] == "Waiting"
        run_all(runtime)
        polled = web.get(f"{url}/action-runs.json").json()
        assert polled["active"] is False
        (line,) = polled["runs"]
        assert line["state"] == "succeeded"
        assert line["outcome"] == "Sent 1 guest to the printer"
        assert line["trigger"] == f"Asked by {planner.email}"
        assert "Sent 1 guest to the printer" in web.get(url).text


def test_the_catalog_card_says_what_each_action_does(runtime: Runtime, client: Any) -> None:
    planner = person(runtime)
    from tests.support.web import occasion

    occ = occasion(runtime, planner)
    page = WebUser(client, planner).get(f"/occasions/{occ}/integrations").text
    assert "What it sends" in page
    assert "Send guest list" in page
    assert "needs guests.read" in page
