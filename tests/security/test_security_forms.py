"""Issue 13, finding 4: page forms cut inputs at 4,096 characters without a word.

A value over the limit posted through a form gets the field error the API gives for the same
value, next to its input, and nothing is saved; a value at the limit is saved whole.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.web import PRINTING_FORM, WebUser, connection_ids, occasion, person
from tovplus.db.models import Connection, User
from tovplus.integrations.fields import MAX_VALUE_LENGTH
from tovplus.runtime import Runtime
from tovplus.services import connections
from tovplus.services.auth import issue_user_token
from tovplus.services.credentials import decrypt_connection_secrets

HUGE = 100_000


@pytest.fixture
def planner(runtime):  # type: ignore[no-untyped-def]
    return person(runtime, "planner")


@pytest.fixture
def occ(runtime, planner):  # type: ignore[no-untyped-def]
    return occasion(runtime, planner, "Limits")


@pytest.fixture
def web(client, planner):  # type: ignore[no-untyped-def]
    return WebUser(client, planner)


def _base(occ: str) -> str:
    return f"/occasions/{occ}/integrations"


def _create(web: WebUser, occ: str, **changes: Any) -> Any:
    url = f"{_base(occ)}/new/printing_partner"
    return web.post(url, {**PRINTING_FORM, **changes}, csrf=web.csrf(url))


def _connected(web: WebUser, runtime: Runtime, occ: str) -> str:
    r = _create(web, occ)
    assert r.status_code == 303, r.text
    return connection_ids(runtime, occ)[-1]


def _settings(web: WebUser, occ: str, cid: str, **changes: Any) -> Any:
    url = f"{_base(occ)}/connections/{cid}"
    form = {
        "config.account_id": "acct-123",
        "config.api_base_url": "https://printer.example.com/api",
        "secrets.api_key": "",
        "action_keys.present": "1",
        "action_keys": ["occasion.read", "events.read", "guests.read"],
        **changes,
    }
    return web.post(f"{url}/settings", form, csrf=web.csrf(url))


def _api_error(client, runtime: Runtime, planner, occ: str, cid: str, body: dict[str, Any]) -> Any:  # type: ignore[no-untyped-def]
    """The API's answer to the same input, as a PATCH from a planner token of the same user."""
    with runtime.db.write() as session:
        user = session.get(User, planner.caller.user_id)
        assert user is not None
        token = issue_user_token(session, user)
    r = client.patch(
        f"/v1/occasions/{occ}/integrations/connections/{cid}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 422, r.text
    (issue,) = r.json()["error"]["fields"]
    return issue


def _field_errors(html: str, name: str) -> list[str]:
    match = re.search(rf'id="{re.escape(name.replace(".", "-"))}-error">(.*?)</ul>', html, re.S)
    assert match is not None, f"no errors shown next to {name}"
    return re.findall(r"<li>(.*?)</li>", match.group(1), re.S)


def _version(runtime: Runtime, cid: str) -> int:
    with runtime.db.read() as session:
        row = session.get(Connection, cid)
        assert row is not None
        return row.version


def _stored(runtime: Runtime, cid: str) -> dict[str, str]:
    with runtime.db.read() as session:
        return decrypt_connection_secrets(session, runtime.keyring, cid)


def test_an_over_long_secret_in_the_settings_form_is_refused_like_the_api(client, web, runtime, planner, occ):  # type: ignore[no-untyped-def]
    cid = _connected(web, runtime, occ)
    before = _version(runtime, cid)
    r = _settings(web, occ, cid, **{"secrets.api_key": "k" * HUGE})
    assert r.status_code == 422, r.text
    assert "Settings saved" not in r.text
    assert "Nothing was saved." in r.text
    api = _api_error(client, runtime, planner, occ, cid, {"secrets": {"api_key": "k" * HUGE}})
    assert api["field"] == "secrets.api_key"
    assert api["code"] == "too_long"
    assert _field_errors(r.text, "secrets.api_key") == [api["message"]]
    assert "k" * 100 not in r.text  # a secret is never echoed back
    assert _stored(runtime, cid) == {"api_key": PRINTING_FORM["secrets.api_key"]}
    assert _version(runtime, cid) == before  # the row was not written at all


def test_an_over_long_config_value_in_the_settings_form_is_refused_like_the_api(
    client, web, runtime, planner, occ
):  # type: ignore[no-untyped-def]
    cid = _connected(web, runtime, occ)
    r = _settings(web, occ, cid, **{"config.account_id": "a" * HUGE})
    assert r.status_code == 422, r.text
    api = _api_error(client, runtime, planner, occ, cid, {"config": {"account_id": "a" * HUGE}})
    assert (api["field"], api["code"]) == ("config.account_id", "too_long")
    assert _field_errors(r.text, "config.account_id") == [api["message"]]
    assert connections.get_connection(runtime, planner.caller, occ, cid)["config"]["account_id"] == "acct-123"


def test_an_over_long_secret_in_the_create_form_creates_nothing(web, runtime, occ):  # type: ignore[no-untyped-def]
    r = _create(web, occ, **{"secrets.api_key": "k" * HUGE})
    assert r.status_code == 422, r.text
    assert _field_errors(r.text, "secrets.api_key") == [
        f"API key must be at most {MAX_VALUE_LENGTH} characters."
    ]
    assert connection_ids(runtime, occ) == []


def test_an_over_long_config_value_in_a_draft_is_refused_not_stored(web, runtime, occ):  # type: ignore[no-untyped-def]
    r = _create(web, occ, intent="draft", **{"config.account_id": "a" * (MAX_VALUE_LENGTH + 1)})
    assert r.status_code == 422, r.text
    assert _field_errors(r.text, "config.account_id")
    assert connection_ids(runtime, occ) == []


def test_a_secret_at_the_limit_is_saved_whole_and_one_more_character_is_refused(web, runtime, occ):  # type: ignore[no-untyped-def]
    cid = _connected(web, runtime, occ)
    longest = "s" * (MAX_VALUE_LENGTH - 4) + "9876"
    r = _settings(web, occ, cid, **{"secrets.api_key": longest})
    assert r.status_code == 303, r.text
    assert _stored(runtime, cid) == {"api_key": longest}
    r = _settings(web, occ, cid, **{"secrets.api_key": longest + "x"})
    assert r.status_code == 422, r.text
    assert _stored(runtime, cid) == {"api_key": longest}  # not the first 4,096 characters of it
