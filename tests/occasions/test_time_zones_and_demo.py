"""Occasion time zones (API create, default UTC, 422 for an unknown zone) and the demo's labels."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import Api, assert_error
from tovplus.db.models import Connection, Occasion
from tovplus.services import occasions
from tovplus.services.demo import seed_demo
from tovplus.services.demo_handoff import DEMO_LABELS, DEMO_TIME_ZONE


def test_occasion_time_zone_given_defaulted_and_checked(api: Api) -> None:
    planner = api.user()
    headers = api.auth(planner)
    r = api.client.post(
        "/v1/occasions",
        json={"name": "Kyiv", "starts_on": "2027-06-12", "time_zone": "Europe/Kyiv"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["occasion"]["time_zone"] == "Europe/Kyiv"
    occ = api.occasion(planner)
    got = api.client.get(f"/v1/occasions/{occ}", headers=headers).json()["occasion"]
    assert got["time_zone"] == "UTC"
    bad = api.client.post(
        "/v1/occasions",
        json={"name": "X", "starts_on": "2027-06-12", "time_zone": "Mars/Olympus"},
        headers=headers,
    )
    assert assert_error(bad, 422)["fields"][0]["field"] == "time_zone"


def test_the_demo_is_in_kyiv_time_with_labelled_connections(api: Api) -> None:
    rt = api.runtime
    seed_demo(rt)
    seed_demo(rt)  # a second run changes nothing
    with rt.db.read() as session:
        occasion = session.scalars(select(Occasion)).one()
        labels = {c.integration_key: c.label for c in session.scalars(select(Connection))}
        assert occasions.time_zone_of(session, occasion.id) == DEMO_TIME_ZONE
    assert labels == DEMO_LABELS


def test_the_new_occasion_form_without_scripts_defaults_to_utc(client, runtime) -> None:
    from tests.support.web import WebUser, person

    web = WebUser(client, person(runtime))
    home = web.get("/").text
    assert 'name="time_zone" value="UTC"' in home
    made = web.post(
        "/occasions", {"name": "Plain", "starts_on": "2027-06-12", "time_zone": ""}, csrf=web.csrf("/")
    )
    assert made.status_code == 303
    occasion_id = made.headers["location"].split("/")[2]
    with runtime.db.read() as session:
        assert occasions.time_zone_of(session, occasion_id) == "UTC"
    refused = web.follow(
        web.post(
            "/occasions",
            {"name": "Bad", "starts_on": "2027-06-12", "time_zone": "Nowhere/x"},
            csrf=web.csrf("/"),
        )
    )
    assert "Nothing was created: Unknown time zone." in refused.text


def test_a_planner_changes_the_occasions_time_zone_on_its_integrations_page(client, runtime) -> None:
    from tests import factories
    from tests.support.web import WebUser, person

    planner, other = person(runtime), person(runtime)
    web = WebUser(client, planner)
    occasion_id = factories.occasion(runtime, planner)
    page = f"/occasions/{occasion_id}/integrations"
    assert "Times in UTC · Change" in web.get(page).text

    changed = web.post(
        f"/occasions/{occasion_id}/time-zone", {"time_zone": "Asia/Tokyo"}, csrf=web.csrf(page)
    )
    assert changed.headers["location"] == f"{page}#time-zone"
    shown = web.follow(changed).text
    assert "Times on this occasion&#39;s pages are now shown in Asia/Tokyo." in shown
    assert "Times are shown in Asia/Tokyo" in shown  # the footer, and every time on the page
    assert 'name="time_zone" value="Asia/Tokyo"' in shown

    refused = web.follow(
        web.post(f"/occasions/{occasion_id}/time-zone", {"time_zone": "Mars/Olympus"}, csrf=web.csrf(page))
    )
    assert "The time zone was not changed: Use an IANA time zone such as Europe/Kyiv or UTC." in refused.text
    no_token = web.post(f"/occasions/{occasion_id}/time-zone", {"time_zone": "UTC"}, csrf="forged")
    assert no_token.status_code == 403
    outsider = WebUser(client, other)
    theirs = outsider.post(
        f"/occasions/{occasion_id}/time-zone", {"time_zone": "UTC"}, csrf=outsider.csrf("/")
    )
    assert theirs.status_code == 404
    with runtime.db.read() as session:
        assert occasions.time_zone_of(session, occasion_id) == "Asia/Tokyo"
