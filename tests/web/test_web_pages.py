"""The planner's and the admin's pages through the TestClient: forms, lifecycle posts,
access rules, CSRF on every form, and no secret ever rendered."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.support.web import (
    PRINTING_FORM,
    WebUser,
    connection_ids,
    occasion,
    person,
    set_health,
)
from tovplus.db.models import Connection, SyncRun
from tovplus.services import connections
from tovplus.services.connections import ConnectionCreate
from tovplus.web.security import FLASH_COOKIE

SECRET = PRINTING_FORM["secrets.api_key"]
ISSUED_RE = re.compile(r'id="issued-key"[^>]*value="(tov_[^"]+)"')


@pytest.fixture
def planner(runtime):
    return person(runtime, "planner")


@pytest.fixture
def occ(runtime, planner):
    return occasion(runtime, planner, "Olena & Taras", events=2)


@pytest.fixture
def web(client, planner):
    return WebUser(client, planner)


def _base(occ: str) -> str:
    return f"/occasions/{occ}/integrations"


def _create(web: WebUser, occ: str, **changes):  # type: ignore[no-untyped-def]
    form = {**PRINTING_FORM, **changes}
    form = {k: v for k, v in form.items() if v is not None}
    return web.post(
        f"{_base(occ)}/new/printing_partner", form, csrf=web.csrf(f"{_base(occ)}/new/printing_partner")
    )


def _created(web: WebUser, runtime, occ: str, **changes) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Create through the form; return the connection id and the page shown after the redirect."""
    r = _create(web, occ, **changes)
    assert r.status_code == 303, r.text
    page = web.follow(r)
    assert page.status_code == 200
    return connection_ids(runtime, occ)[-1], page.text


# --- the planner's page ------------------------------------------------------------------------


def test_planner_page_catalog_and_generated_form(runtime, web, occ):
    _catalog_shown(web, occ)
    _home_lists_only_own(runtime, web)
    _form_from_declarations(web, occ)


def test_input_errors_are_shown_next_to_their_fields(web, runtime, occ):
    _unstorable_input_is_422(web, runtime, occ)
    _missing_field_blocks_enabling(web, runtime, occ)
    _draft_keeps_invalid_values(web, runtime, occ)


def test_flash_cookie_does_not_carry_the_key_in_the_clear(web, runtime, occ):
    _flash_is_sealed(web, runtime, occ)


def test_errors_are_html_pages_with_security_headers(web, occ):
    _unknown_ids_are_404(web, occ)
    _admin_page_is_403_for_planners(web)
    _security_headers(web, occ)


def _catalog_shown(web, occ):
    page = web.get(_base(occ))
    assert page.status_code == 200
    html = page.text
    assert "Olena &amp; Taras" in html
    for text in (
        "Printing partner",
        "Venue operations",
        "Send guest and event details to a stationery printer",
        "Printing",  # category
        "Both ways",  # direction
        "orders.sync",  # capability
        "guests.read",  # action key
        f"{_base(occ)}/new/printing_partner",
        # how each partner is given access, in words, before a planner connects
        '<dd data-auth="api_key">An API key you type in · can be tested before enabling</dd>',
        '<dd data-auth="oauth2">You grant it at Guest messaging (OAuth2); no key to type · can be tested',
    ):
        assert text in html, text
    assert "No partners connected yet." in html


def _home_lists_only_own(runtime, web):
    other = person(runtime)
    occasion(runtime, other, "Someone else's party")
    home = web.get("/")
    assert "Olena &amp; Taras" in home.text
    assert "Someone else" not in home.text


def _form_from_declarations(web, occ):
    html = web.get(f"{_base(occ)}/new/printing_partner").text
    assert 'name="config.account_id"' in html
    assert 'name="config.api_base_url"' in html
    assert re.search(
        r'<input class="input" type="password" id="f-secrets-api_key" name="secrets.api_key" value=""', html
    )
    assert '<label class="field__label" for="f-config-account_id">' in html
    assert "Your account at the printer" in html  # the declared help text
    assert html.count('name="action_keys"') == 3
    venue = web.get(f"{_base(occ)}/new/venue_ops").text
    assert 'name="config.venue_id"' in venue
    assert 'name="secrets.api_token"' in venue
    assert web.get(f"{_base(occ)}/new/no_such_adapter").status_code == 404


def _missing_field_blocks_enabling(web, runtime, occ):
    """Enabling with a validation error keeps everything typed in a draft (the secret stored
    encrypted, never echoed) and continues on the draft's page with the error beside its field."""
    r = _create(web, occ, **{"config.account_id": ""})
    assert r.status_code == 303
    [cid] = connection_ids(runtime, occ)
    html = web.follow(r).text
    assert "was saved as a draft, with everything you typed" in html
    error = re.search(r'<ul class="field__errors" id="config-account_id-error">\s*<li>([^<]+)</li>', html)
    assert error is not None
    assert "Account ID" in error.group(1)
    assert 'aria-describedby="f-config-account_id-help config-account_id-error"' in html
    assert 'value="https://printer.example.com/api"' in html  # what was typed is kept
    assert SECRET not in html  # but never the secret
    view = connections.get_connection(runtime, web.who.caller, occ, cid)
    assert view["state"] == "draft"
    assert view["redacted_secrets"]["api_key"]  # the typed key was kept, server-side


def _unstorable_input_is_422(web, runtime, occ):
    r = _create(web, occ, action_keys=["occasion.read", "payments.write"], intent="draft")
    assert r.status_code == 422
    assert re.search(r'id="action_keys-error">', r.text)
    r = _create(web, occ, **{"secrets.api_key": "••••••••1234", "intent": "draft"})
    assert r.status_code == 422
    assert re.search(r'id="secrets-api_key-error">\s*<li>This looks like a masked value', r.text)
    assert connection_ids(runtime, occ) == []
    # an input error elsewhere: the typed secret is not echoed, and the page says to type it again
    r = _create(web, occ, action_keys=["payments.write"], intent="draft")
    assert r.status_code == 422
    assert SECRET not in r.text
    assert re.search(
        r'id="secrets-api_key-error">\s*<li>For your safety this was not kept: type it again', r.text
    )


def _draft_keeps_invalid_values(web, runtime, occ):
    cid, html = _created(web, runtime, occ, **{"config.api_base_url": "not a url", "intent": "draft"})
    assert re.search(r'id="config-api_base_url-error">\s*<li>', html)
    assert 'value="not a url"' in html
    assert connections.get_connection(runtime, web.who.caller, occ, cid)["state"] == "draft"


def test_draft_with_errors_then_fix_then_enable(web, runtime, occ):
    cid, html = _created(web, runtime, occ, **{"config.account_id": "", "intent": "draft"})
    assert "was saved as a draft" in html
    assert re.search(r'id="config-account_id-error">\s*<li>Account ID is required', html)
    url = f"{_base(occ)}/connections/{cid}"
    refused = web.follow(web.post(f"{url}/state", {"state": "enabled"}, csrf=web.csrf(url)))
    assert "Fix the validation errors before enabling." in refused.text
    saved = web.post(
        f"{url}/settings",
        {"config.account_id": "acct-123", "action_keys.present": "1", "action_keys": ["occasion.read"]},
        csrf=web.csrf(url),
    )
    page = web.follow(saved)
    assert "Settings saved." in page.text
    enabled = web.follow(web.post(f"{url}/state", {"state": "enabled"}, csrf=web.csrf(url)))
    assert "Enabled. The integration can now use its key." in enabled.text
    view = connections.get_connection(runtime, web.who.caller, occ, cid)
    assert view["state"] == "enabled"
    assert view["config"]["account_id"] == "acct-123"
    assert view["action_keys"] == ["occasion.read"]
    assert [g["action_key"] for g in view["grants"]] == ["occasion.read"]


def test_issued_key_is_shown_once_and_secret_only_redacted(client, web, runtime, occ):
    cid, html = _created(web, runtime, occ)
    match = ISSUED_RE.search(html)
    assert match is not None
    issued = match.group(1)
    assert "You will not see this key again." in html
    assert 'data-copy="issued-key"' in html
    assert "••••••••7890" in html
    again = web.get(f"{_base(occ)}/connections/{cid}").text
    assert issued not in again
    assert "You will not see this key again." not in again
    assert "••••••••7890" in again
    assert web.client.cookies.get(FLASH_COOKIE) is None
    admin = WebUser(client, person(runtime, "admin"))
    pages = [
        web.get(_base(occ)).text,
        again,
        web.get(f"{_base(occ)}/new/printing_partner").text,
        admin.get("/admin/integrations").text,
        admin.get(f"{_base(occ)}/connections/{cid}").text,
    ]
    for page in pages:
        assert SECRET not in page
        assert issued not in page
        assert issued.split("_", 2)[2] not in page


def _flash_is_sealed(web, runtime, occ):
    r = _create(web, occ)
    assert r.status_code == 303
    flash = r.cookies.get(FLASH_COOKIE) or web.client.cookies.get(FLASH_COOKIE)
    assert flash
    assert "tov_" not in flash
    page = web.follow(r)
    issued = ISSUED_RE.search(page.text)
    assert issued is not None
    assert issued.group(1) not in flash
    stranger = WebUser(web.client, person(runtime))
    stranger.client.cookies.set(FLASH_COOKIE, flash)
    other_occ = occasion(runtime, stranger.who)
    assert issued.group(1) not in stranger.get(_base(other_occ)).text


def test_empty_secret_keeps_the_stored_value_and_a_new_one_replaces_it(web, runtime, occ):
    cid, _ = _created(web, runtime, occ)
    url = f"{_base(occ)}/connections/{cid}"
    form = {
        "config.account_id": "acct-456",
        "config.api_base_url": "https://printer.example.com/api",
        "secrets.api_key": "",
        "action_keys.present": "1",
        "action_keys": ["occasion.read", "events.read"],
    }
    page = web.follow(web.post(f"{url}/settings", form, csrf=web.csrf(url)))
    assert "••••••••7890" in page.text
    view = connections.get_connection(runtime, web.who.caller, occ, cid)
    assert view["redacted_secrets"] == {"api_key": "••••••••7890"}
    assert view["config"]["account_id"] == "acct-456"
    page = web.follow(
        web.post(
            f"{url}/settings", {**form, "secrets.api_key": "pk_live_NEWNEWNEWNEW_4321"}, csrf=web.csrf(url)
        )
    )
    assert "••••••••4321" in page.text
    assert "pk_live_NEWNEWNEWNEW_4321" not in page.text


def test_an_edit_that_breaks_an_enabled_connection_is_refused_with_field_errors(web, runtime, occ):
    cid, _ = _created(web, runtime, occ)
    url = f"{_base(occ)}/connections/{cid}"
    r = web.post(
        f"{url}/settings",
        {"config.account_id": "no spaces allowed", "config.api_base_url": "https://printer.example.com/api"},
        csrf=web.csrf(url),
    )
    assert r.status_code in (409, 422)
    assert re.search(r'id="config-account_id-error">\s*<li>', r.text)
    assert 'value="no spaces allowed"' in r.text
    assert connections.get_connection(runtime, web.who.caller, occ, cid)["config"]["account_id"] == "acct-123"


def test_lifecycle_buttons_rotate_sync_and_revoke(web, runtime, occ):
    cid, html = _created(web, runtime, occ)
    first_key = ISSUED_RE.search(html).group(1)  # type: ignore[union-attr]
    url = f"{_base(occ)}/connections/{cid}"
    assert "Sync now" in html
    assert "Revoke…" in html
    key_id = connections.get_connection(runtime, web.who.caller, occ, cid)["principal"]["key_id"]

    rotated = web.follow(web.post(f"{url}/rotate", csrf=web.csrf(url)))
    new_key = ISSUED_RE.search(rotated.text)
    assert new_key is not None
    assert new_key.group(1) != first_key
    assert "A new key was issued." in rotated.text
    new_key_id = connections.get_connection(runtime, web.who.caller, occ, cid)["principal"]["key_id"]
    assert new_key_id != key_id
    assert new_key_id in rotated.text

    synced = web.follow(web.post(f"{url}/sync", csrf=web.csrf(url)))
    assert "Sync queued" in synced.text
    with runtime.db.read() as session:
        runs = session.scalars(select(SyncRun).where(SyncRun.connection_id == cid)).all()
    assert len(runs) == 1
    assert "Queued" in synced.text or "Running" in synced.text or "Succeeded" in synced.text

    disabled = web.follow(web.post(f"{url}/state", {"state": "disabled"}, csrf=web.csrf(url)))
    assert "Disabled." in disabled.text
    assert "Sync now" not in disabled.text
    refused = web.follow(web.post(f"{url}/sync", csrf=web.csrf(url)))
    assert "Only enabled connections sync." in refused.text

    kept = web.follow(web.post(f"{url}/revoke", {"confirm": "Printing"}, csrf=web.csrf(url)))
    assert "Nothing was revoked" in kept.text
    assert connections.get_connection(runtime, web.who.caller, occ, cid)["state"] == "disabled"
    revoked = web.follow(web.post(f"{url}/revoke", {"confirm": " printing partner "}, csrf=web.csrf(url)))
    assert "Revoked. Its key no longer works" in revoked.text
    assert "Revoke…" not in revoked.text
    assert "can never be enabled again" in revoked.text
    assert re.search(r"Revoked\s*<time[^>]*>[^<]*</time>\s*by\s+\S", revoked.text), "when and by whom"
    assert "Before it can be enabled" not in revoked.text
    assert "<dt>account_id</dt>" not in revoked.text
    assert "<dt>Account ID</dt>" in revoked.text
    assert "Destroyed when the connection was revoked" in revoked.text
    view = connections.get_connection(runtime, web.who.caller, occ, cid)
    assert view["state"] == "revoked"
    assert view["redacted_secrets"] == {"api_key": None}
    again = web.follow(web.post(f"{url}/rotate", csrf=web.csrf(url)))
    assert "revoked" in again.text.lower()
    assert ISSUED_RE.search(again.text) is None


def test_health_reasons_records_and_activity_are_shown(web, runtime, occ):
    cid, _ = _created(web, runtime, occ)
    set_health(runtime, cid, "failing", ["The printer refused our API key (HTTP 401)."])
    page = web.get(f"{_base(occ)}/connections/{cid}").text
    assert "Not working. See the reasons below." in page
    assert "The printer refused our API key (HTTP 401)." in page
    assert "Connection created" not in page or "Created" in page
    assert "Printing partner connection created as enabled" in page  # recent activity
    overview = web.get(_base(occ)).text
    assert "The printer refused our API key (HTTP 401)." in overview


# --- CSRF on every form ---------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["missing", "forged", "another session's"])
def test_every_form_refuses_a_missing_or_foreign_csrf_token(client, web, runtime, occ, token):
    cid, _ = _created(web, runtime, occ)
    before = connections.get_connection(runtime, web.who.caller, occ, cid)
    url = f"{_base(occ)}/connections/{cid}"
    other = WebUser(client, web.who)  # the same user, signed in a second time
    for action in ("settings", "state", "rotate", "sync", "check", "revoke", "create"):
        path = f"{_base(occ)}/new/printing_partner" if action == "create" else f"{url}/{action}"
        data = dict(PRINTING_FORM) if action in ("create", "settings") else {"state": "disabled"}
        if token == "another session's":
            data["csrf_token"] = other.csrf()
        elif token == "forged":
            data["csrf_token"] = "x" * 43
        r = web.client.post(path, data=data, follow_redirects=False)
        assert r.status_code == 403, action
        assert "This form has expired" in r.text
    after = connections.get_connection(runtime, web.who.caller, occ, cid)
    assert after["state"] == before["state"]
    assert after["config"] == before["config"]
    assert after["principal"]["key_id"] == before["principal"]["key_id"]
    assert len(connection_ids(runtime, occ)) == 1
    with runtime.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 0


# --- who may see what ------------------------------------------------------------------------------


def test_another_planner_gets_404_everywhere_and_changes_nothing(client, web, runtime, occ):
    cid, _ = _created(web, runtime, occ)
    url = f"{_base(occ)}/connections/{cid}"
    intruder = WebUser(client, person(runtime))
    for path in (_base(occ), url, f"{_base(occ)}/new/printing_partner"):
        r = intruder.get(path)
        assert r.status_code == 404, path
        assert "This page does not exist, or you do not have access to it." in r.text
        assert "Olena" not in r.text
    token = intruder.csrf()
    for action, data in (
        ("state", {"state": "disabled"}),
        ("rotate", {}),
        ("sync", {}),
        ("check", {}),
        ("revoke", {}),
        ("settings", {"config.account_id": "stolen"}),
    ):
        assert intruder.post(f"{url}/{action}", data, csrf=token).status_code == 404
    assert intruder.post(f"{_base(occ)}/new/printing_partner", PRINTING_FORM, csrf=token).status_code == 404
    view = connections.get_connection(runtime, web.who.caller, occ, cid)
    assert view["state"] == "enabled"
    assert view["config"]["account_id"] == "acct-123"
    assert connection_ids(runtime, occ) == [cid]


def _unknown_ids_are_404(web, occ):
    assert web.get("/occasions/occ_nope/integrations").status_code == 404
    assert web.get(f"{_base(occ)}/connections/con_nope").status_code == 404
    assert web.get(f"{_base(occ)}/connections/{'x' * 500}").status_code == 404
    r = web.get(f"{_base(occ)}/connections/con_nope?records_cursor=%%%")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")


def _admin_page_is_403_for_planners(web):
    r = web.get("/admin/integrations")
    assert r.status_code == 403
    assert "Only administrators" in r.text
    assert "Support feed" not in r.text


def _security_headers(web, occ):
    r = web.get(_base(occ))
    assert r.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert web.get("/static/app.css").status_code == 200
    assert web.get("/static/app.js").status_code == 200


# --- the admin's page ------------------------------------------------------------------------------


def _connect(runtime, who, occ, key="printing_partner"):  # type: ignore[no-untyped-def]
    if key == "venue_ops":
        data = ConnectionCreate(
            key, config={"venue_id": "hall-1"}, secrets={"api_token": "tok_0123456789abcdef"}
        )
    else:
        data = ConnectionCreate(
            key,
            config={"account_id": "acct-1", "api_base_url": "https://printer.example.com/api"},
            secrets={"api_key": "pk_live_ABCDEFGHIJKL7890"},
            state="enabled",
        )
    return connections.create_connection(runtime, who.caller, occ, data).connection["id"]


def _table(html: str) -> str:
    """The connections part of the admin page (the feed below names connections too)."""
    return html.split('id="feed-title"')[0]


def test_admin_sees_every_connection_with_failing_counts_and_reasons(client, runtime):
    a, b = person(runtime), person(runtime)
    occ_a, occ_b = occasion(runtime, a, "Wedding A"), occasion(runtime, b, "Summit B")
    ok = _connect(runtime, a, occ_a)
    bad = _connect(runtime, b, occ_b)
    draft = _connect(runtime, b, occ_b, "venue_ops")
    set_health(runtime, bad, "failing", ["The printer refused our API key (HTTP 401)."])
    admin = WebUser(client, person(runtime, "admin"))
    page = admin.get("/admin/integrations")
    assert page.status_code == 200
    html = page.text
    for cid in (ok, bad, draft):
        assert cid in html
    assert "Wedding A" in html
    assert "Summit B" in html
    assert re.search(r'<span class="stat__value">1</span>\s*<span class="stat__label">Failing</span>', html)
    assert "The printer refused our API key (HTTP 401)." in html
    assert f"/occasions/{occ_b}/integrations/connections/{bad}" in html
    assert "Support feed" in html
    assert "Printing partner connection created as enabled" in html

    failing = _table(admin.get("/admin/integrations?health=failing").text)
    assert bad in failing
    assert ok not in failing
    assert draft not in failing
    assert "1 match, 1 failing" in failing
    by_occasion = _table(admin.get(f"/admin/integrations?occasion_id={occ_a}").text)
    assert ok in by_occasion
    assert bad not in by_occasion
    venue = _table(admin.get("/admin/integrations?integration_key=venue_ops&state=draft").text)
    assert draft in venue
    assert bad not in venue
    detail = admin.get(f"/occasions/{occ_b}/integrations/connections/{bad}")
    assert detail.status_code == 200
    assert "The printer refused our API key (HTTP 401)." in detail.text
    _admin_total_matches_the_database(admin, runtime)


def test_admin_pages_through_connections_and_the_feed(client, runtime):
    a = person(runtime)
    occ = occasion(runtime, a)
    made = [_connect(runtime, a, occ, "venue_ops") for _ in range(27)]
    admin = WebUser(client, person(runtime, "admin"))
    first = admin.get("/admin/integrations").text
    nxt = re.search(r'href="(/admin/integrations\?cursor=[^"]+)">Next page', first)
    assert nxt is not None
    second = admin.get(nxt.group(1).replace("&amp;", "&")).text
    on_first = {c for c in made if c in _table(first)}
    on_second = {c for c in made if c in _table(second)}
    assert len(on_first) == 25
    assert on_first | on_second == set(made)
    assert not on_first & on_second
    assert "First page" in second
    older = re.search(r'href="(/admin/integrations\?activity_cursor=[^"]+)">Older', first)
    assert older is not None
    assert admin.get(older.group(1).replace("&amp;", "&")).status_code == 200


def test_admin_bad_filters_are_explained_not_500(client, runtime):
    admin = WebUser(client, person(runtime, "admin"))
    for query in ("health=sideways", "state=nope", "cursor=%%%", "activity_cursor=zzz", "kind=" + "k" * 300):
        r = admin.get(f"/admin/integrations?{query}")
        assert r.status_code in (200, 422), query
        assert r.headers["content-type"].startswith("text/html")
        assert "All integrations" in r.text
    assert "health must be" in admin.get("/admin/integrations?health=sideways").text


def _admin_total_matches_the_database(admin, runtime):
    html = admin.get("/admin/integrations").text
    with runtime.db.read() as session:
        total = session.scalar(select(func.count()).select_from(Connection))
    assert re.search(
        rf'<span class="stat__value">{total}</span>\s*<span class="stat__label">All connections', html
    )


@pytest.mark.no_db
def test_planner_cards_come_worst_first_and_revoked_ones_apart():
    from tovplus.web.pages.integrations import worst_first

    def card(id_: str, state: str, health: str) -> dict[str, str]:
        return {"id": id_, "state": state, "health": health}

    cards = [
        card("con_1", "enabled", "failing"),
        card("con_2", "revoked", "unknown"),
        card("con_3", "enabled", "healthy"),
        card("con_4", "enabled", "degraded"),
        card("con_5", "disabled", "failing"),
        card("con_6", "enabled", "failing"),
    ]
    active, revoked = worst_first(cards)
    assert [c["id"] for c in active] == ["con_6", "con_1", "con_4", "con_5", "con_3"]
    assert [c["id"] for c in revoked] == ["con_2"]


def test_admin_page_searches_and_sorts(client, runtime):
    a, b = person(runtime), person(runtime)
    occ_a, occ_b = occasion(runtime, a, "Koval wedding"), occasion(runtime, b, "Summit B")
    ok = _connect(runtime, a, occ_a)
    bad = _connect(runtime, b, occ_b)
    set_health(runtime, bad, "failing", ["The printer refused our API key (HTTP 401)."])
    admin = WebUser(client, person(runtime, "admin"))
    page = admin.get("/admin/integrations").text
    assert 'type="search" id="filter-q" name="q"' in page
    assert '<select class="input" id="filter-occasion"' not in page  # no dropdown of every occasion
    found = _table(admin.get(f"/admin/integrations?q={b.caller.email}").text)
    assert bad in found
    assert ok not in found
    by_name = _table(admin.get("/admin/integrations?occasion=koval").text)
    assert ok in by_name
    assert bad not in by_name
    worst = _table(admin.get("/admin/integrations?sort=health").text)
    assert worst.index(bad) < worst.index(ok)
    assert 'aria-sort="descending"' in worst
    r = admin.get("/admin/integrations?sort=sideways")
    assert r.status_code == 422
    assert "sort must be one of" in r.text
