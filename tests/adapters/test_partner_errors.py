"""Partner failures in words (never an exception's class name) and ``Retry-After`` honoured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tovplus.integrations import partner_busy, partner_unreachable
from tovplus.integrations.http import MAX_RETRY_AFTER_SECONDS, retry_after_seconds
from tovplus.services.sync import retry_delay
from tovplus.settings import Settings

pytestmark = pytest.mark.no_db
REQUEST = httpx.Request("GET", "https://print.example/api/accounts/a")


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST),
            "Could not reach the printer at print.example.",
        ),
        (
            httpx.ConnectTimeout("timed out", request=REQUEST),
            "The printer at print.example did not answer in time.",
        ),
        (
            httpx.ReadTimeout("timed out", request=REQUEST),
            "The printer at print.example did not answer in time.",
        ),
        (
            httpx.RemoteProtocolError("boom", request=REQUEST),
            "The connection to the printer at print.example broke off before it answered.",
        ),
        (httpx.ConnectError("no request"), "Could not reach the printer."),
    ],
)
def test_transport_failures_read_as_people_read_them(exc: httpx.HTTPError, message: str) -> None:
    error = partner_unreachable("the printer", exc)
    assert error.message == message
    assert type(exc).__name__ not in error.message


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0", 0.0), ("-5", 0.0), ("soon", None), ("", None), ("999999", MAX_RETRY_AFTER_SECONDS)],
)
def test_retry_after_seconds(header: str, seconds: float | None) -> None:
    response = httpx.Response(429, headers={"retry-after": header} if header else {})
    assert retry_after_seconds(response) == seconds


def test_retry_after_as_an_http_date() -> None:
    at = datetime.now(UTC) + timedelta(seconds=120)
    wait = retry_after_seconds(httpx.Response(429, headers={"retry-after": format_datetime(at, usegmt=True)}))
    assert wait is not None
    assert 100 < wait <= 120


def test_a_429_carries_retry_after_and_the_schedule_honours_the_longer_wait() -> None:
    error = partner_busy("the printer", httpx.Response(429, headers={"retry-after": "3"}))
    assert error.retry_after == 3.0
    assert error.message == "The printer is busy (HTTP 429) and asked us to wait 3 s."
    settings = Settings(environment="test", sync_retry_delays=(0.05, 0.05))
    assert retry_delay(settings, 1, error.retry_after) == 3.0
    assert retry_delay(settings, 1, None) < 1  # the backoff alone
    long = Settings(environment="test", sync_retry_delays=(600.0,))
    assert retry_delay(long, 1, 3.0) >= 480  # the backoff when it is longer
    assert retry_delay(settings, 3, 3.0) is None  # out of attempts: Retry-After does not add one
