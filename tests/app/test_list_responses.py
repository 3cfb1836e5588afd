"""The list routes send their views through ``api.responses`` (issue 20): the same JSON FastAPI's
``response_model`` would send, and the helpers they lean on answer as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from tests.conftest import Api
from tests.connections.test_admin_api import build
from tovplus.api.responses import ModelJSONResponse, model_json
from tovplus.api.schemas import AdminConnectionsOut, OccasionIntegrationsOut
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.urls import check_url


def _same_as_response_model(model: type[BaseModel], body: bytes) -> None:
    """The answer validates against the route's model and is byte for byte its serialisation."""
    parsed = model.model_validate_json(body)
    assert parsed.model_dump_json(by_alias=True).encode() == body


def test_overview_and_admin_list_answer_what_their_response_models_describe(api: Api) -> None:
    world = build(api)
    r = api.client.get(f"/v1/occasions/{world['o1']}/integrations", headers=api.auth(world["p1"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    _same_as_response_model(OccasionIntegrationsOut, r.content)
    assert len(r.json()["connections"]) == 4

    r = api.client.get("/v1/admin/integrations", params={"limit": 3}, headers=api.auth(world["admin"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    _same_as_response_model(AdminConnectionsOut, r.content)
    body = r.json()
    assert len(body["connections"]) == 3
    assert body["next_cursor"]
    assert body["summary"]["total"] == 7
    assert body["summary"]["failing"] == 1


def test_model_json_sends_models_only() -> None:
    class Small(BaseModel):
        name: str

    assert model_json(Small(name="é")).body == '{"name":"é"}'.encode()
    with pytest.raises(TypeError):
        ModelJSONResponse({"name": "x"})


@pytest.mark.parametrize(
    "value",
    [
        datetime(2027, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2027, 1, 1, 1, 2, 3, 456, tzinfo=timezone(timedelta(hours=2))),
        datetime(2027, 1, 1, 12, tzinfo=ZoneInfo("Europe/London")),
        datetime(999, 1, 1, tzinfo=UTC),
    ],
)
def test_format_timestamp_fast_path_matches_the_strftime_form(value: datetime) -> None:
    assert format_timestamp(value) == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_remembered_url_checks_keep_apart_private_and_public_answers() -> None:
    url = "https://10.1.2.3/hooks"
    for _ in range(2):  # the second round is answered from the cache
        assert check_url(url, allow_private=True) is None
        assert check_url(url, allow_private=False) == "The URL must point to a public address."
        assert check_url("https://partner.example.com", allow_private=False) is None
        assert check_url("https://par tner.example.com", allow_private=False) is not None
