"""Issue 13, finding 5: a required field of only whitespace counts as missing.

Declared text fields trim by default (whitespace around a value is not part of it), so a value
of only whitespace is blank and a required field reports ``required``, exactly as when the
value is absent; a field declared ``trim=False`` keeps whitespace as a value.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, assert_error
from tovplus.integrations import Field, FieldType
from tovplus.integrations.adapters.venue_ops import VenueOpsAdapter
from tovplus.integrations.fields import check_fields

BLANKS = ["   ", " ", "\t", "\n", " \t\r\n ", "\u00a0", "\u3000", "\u2003"]
VENUE_TOKEN = "venue-token-0123456789"


def _issues(declared: tuple[Field, ...], values: dict[str, Any]) -> list[tuple[str, str, str]]:
    errors, _ = check_fields(declared, values, "config", allow_private_urls=False)
    return [(e.field, e.code, e.message) for e in errors]


@pytest.mark.no_db
@pytest.mark.parametrize("blank", BLANKS)
@pytest.mark.parametrize("field_type", [FieldType.STRING, FieldType.URL])
def test_a_blank_required_text_field_is_required_like_a_missing_one(blank: str, field_type: FieldType):
    declared = (Field("venue_id", "Venue ID", field_type, required=True),)
    missing = _issues(declared, {})
    assert missing == [("config.venue_id", "required", "Venue ID is required.")]
    assert _issues(declared, {"venue_id": blank}) == missing


@pytest.mark.no_db
@pytest.mark.parametrize("blank", BLANKS)
def test_the_shipped_venue_ops_adapter_refuses_a_blank_venue_id(blank: str):
    declared = VenueOpsAdapter.config_fields
    assert _issues(declared, {"venue_id": blank}) == _issues(declared, {})


@pytest.mark.no_db
def test_a_field_may_declare_that_it_keeps_whitespace():
    declared = (Field("separator", "Separator", required=True, trim=False),)
    assert _issues(declared, {"separator": " "}) == []
    assert _issues(declared, {"separator": ""}) == [
        ("config.separator", "required", "Separator is required.")
    ]


@pytest.mark.no_db
def test_only_a_value_of_nothing_but_whitespace_is_blank():
    venue = Field("venue_id", "Venue ID", required=True)
    assert all(venue.is_blank(v) for v in (None, "", *BLANKS))
    assert not any(venue.is_blank(v) for v in ("  hall-7  ", "x", 0, False))
    assert not Field("venue_id", "Venue ID", trim=False).is_blank("   ")
    assert not Field("count", "Count", FieldType.INTEGER).is_blank("   ")  # not text: invalid_type
    assert _issues((venue,), {"venue_id": "  hall-7  "}) == []
    # values are stored as given, so a pattern still judges the value the adapter will read
    code = Field("code", "Code", required=True, pattern=r"[a-z]+")
    assert [c for _, c, _ in _issues((code,), {"code": " abc "})] == ["invalid_format"]


# --- through the API ---------------------------------------------------------------------------


def _venue(api: Api, token: str, occasion: str, venue_id: str | None, state: str) -> Any:
    config = {} if venue_id is None else {"venue_id": venue_id}
    return api.connect(
        token,
        occasion,
        integration_key="venue_ops",
        config=config,
        secrets={"api_token": VENUE_TOKEN},
        state=state,
    )


@pytest.mark.parametrize("blank", ["   ", "\t \n"])
def test_a_blank_venue_id_draft_lists_the_same_error_as_a_missing_one(api: Api, blank: str):
    token = api.user("planner")
    occasion = api.occasion(token)
    missing = _venue(api, token, occasion, None, "draft")
    assert missing.status_code == 201, missing.text
    blank_draft = _venue(api, token, occasion, blank, "draft")
    assert blank_draft.status_code == 201, blank_draft.text
    errors = blank_draft.json()["connection"]["validation"]["errors"]
    assert errors == missing.json()["connection"]["validation"]["errors"]
    assert errors == [{"field": "config.venue_id", "code": "required", "message": "Venue ID is required."}]


@pytest.mark.parametrize("blank", ["   ", "\t \n"])
def test_creating_enabled_with_a_blank_venue_id_is_409_like_a_missing_one(api: Api, blank: str):
    token = api.user("planner")
    occasion = api.occasion(token)
    missing = assert_error(_venue(api, token, occasion, None, "enabled"), 409, "validation_failed")
    blank_error = assert_error(_venue(api, token, occasion, blank, "enabled"), 409, "validation_failed")
    assert blank_error == missing
    assert blank_error["fields"] == [
        {"field": "config.venue_id", "code": "required", "message": "Venue ID is required."}
    ]


def test_enabling_a_draft_with_a_blank_venue_id_is_409(api: Api):
    token = api.user("planner")
    occasion = api.occasion(token)
    cid = _venue(api, token, occasion, "   ", "draft").json()["connection"]["id"]
    error = assert_error(api.patch(token, occasion, cid, state="enabled"), 409, "validation_failed")
    assert error["fields"] == [
        {"field": "config.venue_id", "code": "required", "message": "Venue ID is required."}
    ]
    # blanking the venue id of an enabled connection is refused the same way
    ok = _venue(api, token, occasion, "hall-7", "enabled")
    assert ok.status_code == 201, ok.text
    enabled = ok.json()["connection"]["id"]
    error = assert_error(
        api.patch(token, occasion, enabled, config={"venue_id": " "}), 409, "validation_failed"
    )
    assert [(f["field"], f["code"]) for f in error["fields"]] == [("config.venue_id", "required")]
