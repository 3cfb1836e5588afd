"""Browsers get an HTML error page for an unknown address; API clients keep the JSON envelope."""

from __future__ import annotations

import pytest

from tovplus.web.browser_errors import wants_html

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_an_unknown_path_in_a_browser_is_an_html_page(api):
    answer = api.client.get("/nope", headers=BROWSER)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Page not found" in answer.text
    assert '"error"' not in answer.text


def test_an_unknown_path_for_an_api_client_is_the_envelope(api):
    answer = api.client.get("/nope", headers={"accept": "application/json"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_unknown_v1_paths_stay_json_even_in_a_browser(api):
    answer = api.client.get("/v1/nope", headers=BROWSER)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_a_wrong_method_in_a_browser_is_an_html_page(api):
    answer = api.client.delete("/sign-in", headers=BROWSER)
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/html", True),
        (BROWSER["accept"], True),
        ("application/json", False),
        ("application/json, text/html", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_wants_html(accept: str, expected: bool):
    from starlette.requests import Request

    request = Request({"type": "http", "headers": [(b"accept", accept.encode())]})
    assert wants_html(request) is expected
