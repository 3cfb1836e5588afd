"""The one redaction module: secret summaries, the log scrubber, details and public config."""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tovplus.integrations import Adapter, Direction, Field, Mode
from tovplus.integrations.redaction import (
    MASK,
    SecretScrubber,
    install_scrubber,
    is_redacted_form,
    looks_redacted,
    public_config,
    redact_details,
    redact_secret,
    scrubber,
)

pytestmark = pytest.mark.no_db

INTEGRATION_KEY = "tov_ik0123456789abcdef0123_" + "S3cr3tPart-of_the_key" * 2
USER_TOKEN = "tovu_" + "u" * 10 + "Zx9-_" * 6
SIGNING_SECRET = "whsec_" + "c2lnbmluZy1zZWNyZXQtdmFsdWUtMTIzNDU2Nzg5MA=="


# --- redact_secret -------------------------------------------------------------------------------


def test_redact_secret_rules():
    assert redact_secret(None) is None
    assert redact_secret("") == MASK
    assert redact_secret("short") == MASK
    assert redact_secret("a" * 11) == MASK  # 11: none of it
    assert redact_secret("abcdefgh" + "wxyz") == MASK + "wxyz"  # 12: the last 4
    assert redact_secret("pk_live_ABCDEFGHIJKLMNOP") == "••••••••MNOP"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_redact_secret_never_shows_more_than_the_last_four(value: str):
    shown = redact_secret(value)
    assert shown is not None
    assert shown.startswith(MASK)
    tail = shown[len(MASK) :]
    if len(value) < 12:
        assert tail == ""
    else:
        assert tail == value[-4:]
    assert is_redacted_form(shown, value)
    assert looks_redacted(shown)


def test_redacted_form_checks():
    real = "pk_live_ABCDEFGHIJKLMNOP"
    assert is_redacted_form("••••••••MNOP", real)
    assert not is_redacted_form("••••••••WXYZ", real)
    assert not is_redacted_form(real, real)
    assert not is_redacted_form("••••••••", None)
    assert not is_redacted_form(None, real)
    assert looks_redacted("••••••••")
    assert looks_redacted("••••••••abcd")
    assert not looks_redacted("••••••••abcde")
    assert not looks_redacted("pk_live_x")
    assert not looks_redacted(1234)


# --- the log scrubber ----------------------------------------------------------------------------------


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, SecretScrubber]]:
    """A private logger whose only handler carries a fresh scrubber."""
    stream = io.StringIO()
    logger = logging.getLogger(f"tovplus.test.redaction.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    own = SecretScrubber()
    handler.addFilter(own)
    logger.addHandler(handler)
    yield logger, stream, own
    logger.removeHandler(handler)


def test_scrubber_removes_remembered_values_from_messages_and_args(logged):
    logger, stream, own = logged
    secret = "pk_live_" + secrets.token_hex(8)
    own.remember(secret)
    logger.info("calling the partner with %s", secret)
    logger.warning(f"inline {secret} and again {secret}!")
    logger.info("as a mapping %(key)s", {"key": secret})
    out = stream.getvalue()
    assert secret not in out
    assert out.count(MASK) == 4
    assert "calling the partner with " + MASK in out


def test_scrubber_removes_secrets_from_exception_text_and_stack_info(logged):
    logger, stream, own = logged
    secret = "venue-token-" + secrets.token_hex(8)
    own.remember(secret)
    try:
        raise RuntimeError(f"partner rejected {secret}")
    except RuntimeError:
        logger.exception("sync failed")
    logger.info("where am I", stack_info=True)  # stack_info holds source lines, scrubbed too
    out = stream.getvalue()
    assert "RuntimeError: partner rejected " + MASK in out
    assert secret not in out
    assert "Stack (most recent call last)" in out


def test_scrubber_removes_token_shaped_strings_it_was_never_told_about(logged):
    logger, stream, _ = logged
    logger.info("key %s token %s signing %s", INTEGRATION_KEY, USER_TOKEN, SIGNING_SECRET)
    out = stream.getvalue()
    for value in (INTEGRATION_KEY, USER_TOKEN, SIGNING_SECRET):
        assert value not in out
    assert "S3cr3t" not in out
    assert out.count(MASK) == 3


def test_scrubber_prefers_the_longest_remembered_value_and_handles_neighbours():
    own = SecretScrubber()
    own.remember("abcdef")
    own.remember("abcdefghijkl")
    assert own.scrub("x abcdefghijkl y") == f"x {MASK} y"
    assert own.scrub("abcdefabcdef") == MASK + MASK
    assert own.scrub("abcdefghijklabcdef!") == MASK + MASK + "!"
    assert own.scrub("abcde") == "abcde"
    assert own.scrub("") == ""


def test_values_shorter_than_six_characters_are_not_remembered():
    own = SecretScrubber()
    own.remember("12345")
    assert own.scrub("order 12345 shipped") == "order 12345 shipped"


def test_scrubber_stays_fast_with_many_remembered_values():
    """A worker handles every connection's secrets; remembering must not get slower per value."""
    own = SecretScrubber()
    values = [secrets.token_urlsafe(24) for _ in range(20_000)]
    started = time.perf_counter()
    for value in values:
        own.remember(value)
    message = f"first {values[0]} middle {values[10_000]} last {values[-1]} " + "x" * 2000
    for _ in range(50):
        scrubbed = own.scrub(message)
    elapsed = time.perf_counter() - started
    assert scrubbed.startswith(f"first {MASK} middle {MASK} last {MASK} ")
    assert elapsed < 10, f"remembering 20,000 values and 50 scrubs took {elapsed:.1f}s"


def test_scrubber_forgets_only_the_longest_unused_values_when_full():
    own = SecretScrubber()
    own.MAX_REMEMBERED = 3
    for value in ("value-one", "value-two", "value-three"):
        own.remember(value)
    own.remember("value-one")  # used again: now the newest
    own.remember("value-four")  # evicts value-two, the longest unused
    assert own.scrub("value-one value-two value-three value-four") == f"{MASK} value-two {MASK} {MASK}"


def test_scrubber_is_safe_to_use_from_many_threads():
    own = SecretScrubber()
    errors: list[BaseException] = []
    values = [f"thread-secret-{i:04d}" for i in range(2000)]

    def remember(chunk: list[str]) -> None:
        try:
            for v in chunk:
                own.remember(v)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    def scrub() -> None:
        try:
            for _ in range(300):
                own.scrub("log line with thread-secret-0001 in it")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=remember, args=(values[i::4],)) for i in range(4)]
    threads += [threading.Thread(target=scrub) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert own.scrub(" ".join(values)) == " ".join([MASK] * len(values))


def test_install_scrubber_attaches_the_process_scrubber_once():
    logger = logging.getLogger(f"tovplus.test.install.{uuid.uuid4().hex}")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        install_scrubber(logger)
        install_scrubber(logger)
        assert handler.filters.count(scrubber) == 1
        secret = "remembered-" + secrets.token_hex(8)
        scrubber.remember(secret)
        logger.warning("leaked? %s", secret)
        assert secret not in stream.getvalue()
        assert MASK in stream.getvalue()
    finally:
        logger.removeHandler(handler)


def test_storing_a_secret_makes_the_process_scrubber_remember_it():
    """The credentials service remembers every value it encrypts or decrypts."""
    from tovplus.runtime.keyring import Keyring, generate_key
    from tovplus.services.credentials import seal_endpoint_secret

    secret = "whsec-like-" + secrets.token_hex(10)
    seal_endpoint_secret(Keyring.parse(generate_key()), "whe_1", secret)
    assert scrubber.scrub(f"signing with {secret}") == f"signing with {MASK}"


# --- redact_details ---------------------------------------------------------------------------------


def test_redact_details_masks_secretish_keys_at_any_depth():
    details = {
        "api_key": "pk_live_ABCDEFGHIJKLMNOP",
        "apiKey": "x",
        "API-KEY": "x",
        "password": "hunter2",
        "client_secret": "x",
        "Authorization": "Bearer abc",
        "access_token": "x",
        "credentials": {"user": "u"},
        "unset_token": None,
        "nested": {"deeper": [{"secret": "s", "status": "ok"}]},
        "status": "active",
        "count": 3,
    }
    out = redact_details(details)
    for key in ("api_key", "apiKey", "API-KEY", "password", "client_secret", "Authorization", "access_token"):
        assert out[key] == MASK, key
    assert out["credentials"] == MASK
    assert out["unset_token"] is None
    assert out["nested"] == {"deeper": [{"secret": MASK, "status": "ok"}]}
    assert (out["status"], out["count"]) == ("active", 3)
    assert details["api_key"] == "pk_live_ABCDEFGHIJKLMNOP"  # the input is not changed


def test_redact_details_masks_tokens_and_remembered_values_inside_text():
    remembered = "partner-echo-" + secrets.token_hex(8)
    scrubber.remember(remembered)
    out = redact_details(
        {
            "error": f"partner said: bad key {remembered}",
            "issued": f"new key {INTEGRATION_KEY}",
            "list": [USER_TOKEN],
        }
    )
    assert out == {
        "error": f"partner said: bad key {MASK}",
        "issued": f"new key {MASK}",
        "list": [MASK],
    }


def test_redact_details_bounds_size_and_depth():
    long = "y" * 2000
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(12):
        deep = {"d": deep}
    out = redact_details({"long": long, "deep": deep, "many": list(range(500)), 7: "int key"})
    assert out["long"] == "y" * 500 + "…"
    assert len(out["many"]) == 100
    assert out["7"] == "int key"
    node = out["deep"]
    for _ in range(7):
        node = node["d"]
    assert node == {"d": "…"}


# --- public_config ----------------------------------------------------------------------------------


class Upgraded(Adapter):
    integration_key = "upgraded"
    name = "Upgraded"
    description = "A field that used to be config is a secret now."
    category = "testing"
    direction = Direction.OUTBOUND
    mode = Mode.MANUAL
    config_fields = (Field("account", "Account"), Field("token", "Token"))
    secret_fields = (Field("token", "Token"),)


def test_public_config_shows_only_declared_non_secret_fields():
    config = {"account": "acct-1", "token": "was-config-now-secret", "leftover": "old field"}
    assert public_config(Upgraded(), config) == {"account": "acct-1"}
    assert public_config(Upgraded(), {}) == {}
