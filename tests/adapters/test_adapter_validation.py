"""Validation of the two shipped adapters, field by field, as the contract describes them.

``validate_connection`` is pure (no database), so these tests run once, on the SQLite pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tovplus.errors import FieldIssue
from tovplus.integrations import (
    Adapter,
    Direction,
    Field,
    FieldType,
    Mode,
    Scope,
    ScopeType,
    ValidationContext,
    ValidationResult,
    validate_connection,
)
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.integrations.adapters.venue_ops import VenueOpsAdapter, is_iana_zone
from tovplus.integrations.contract import check_secret_values
from tovplus.integrations.urls import check_url

pytestmark = pytest.mark.no_db

PRINTING = PrintingPartnerAdapter()
VENUE = VenueOpsAdapter()
SCOPE = Scope(ScopeType.OCCASION, "occ_1")
GOOD_PRINTING = {"account_id": "acct-123", "api_base_url": "https://printer.example.com/api"}
GOOD_VENUE = {"venue_id": "venue-9", "timezone": "Europe/Kyiv"}


def run(
    adapter: Adapter,
    config: Mapping[str, Any],
    secrets: Iterable[str] | None = None,
    *,
    allow_private_urls: bool = False,
    scope: Scope = SCOPE,
) -> ValidationResult:
    present = frozenset(secrets if secrets is not None else (f.key for f in adapter.secret_fields))
    return validate_connection(
        adapter, ValidationContext(dict(config), present, scope, allow_private_urls=allow_private_urls)
    )


def codes(result: ValidationResult) -> dict[str, str]:
    """``{field path: error code}``; a field never carries two errors."""
    out: dict[str, str] = {}
    for issue in result.errors:
        assert issue.field not in out, result.errors
        assert issue.message, issue
        out[issue.field] = issue.code
    return out


# --- printing_partner ------------------------------------------------------------------------


def test_printing_partner_accepts_a_good_connection():
    result = run(PRINTING, GOOD_PRINTING)
    assert result.ok
    assert result.errors == ()
    assert result.warnings == ()


def test_printing_partner_requires_everything_it_declares():
    assert codes(run(PRINTING, {}, secrets=())) == {
        "config.account_id": "required",
        "config.api_base_url": "required",
        "secrets.api_key": "required",
    }


@pytest.mark.parametrize("empty", [None, ""])
def test_printing_partner_treats_null_and_empty_as_missing(empty: object):
    config = {"account_id": empty, "api_base_url": empty}
    assert codes(run(PRINTING, config)) == {
        "config.account_id": "required",
        "config.api_base_url": "required",
    }


@pytest.mark.parametrize(
    ("account_id", "code"),
    [
        ("ab", "invalid_format"),  # 2: one too short
        ("abc", None),  # 3: shortest allowed
        ("a" * 64, None),  # 64: longest allowed
        ("a" * 65, "too_long"),  # 65: one too long
        ("A-z_09", None),
        ("acct 123", "invalid_format"),
        ("acct.123", "invalid_format"),
        ("acct/123", "invalid_format"),
        ("acct@123", "invalid_format"),
        ("ácct123", "invalid_format"),
        ("acct123\n", "invalid_format"),
        ("٣٣٣", "invalid_format"),  # non-ASCII digits
        (123456, "invalid_type"),
        (["acct"], "invalid_type"),
        (True, "invalid_type"),
    ],
)
def test_printing_partner_account_id(account_id: object, code: str | None):
    result = run(PRINTING, {**GOOD_PRINTING, "account_id": account_id})
    assert codes(result).get("config.account_id") == code
    assert set(codes(result)) <= {"config.account_id"}


@pytest.mark.parametrize(
    "url",
    [
        "https://printer.example.com/api",
        "https://printer.example.com:8443/v1/",
        "https://1.1.1.1/api",
        "https://[2606:4700:4700::1111]/api",
        "HTTPS://PRINTER.EXAMPLE.COM/",
        "https://bücher.example/api",
    ],
)
def test_printing_partner_accepts_public_https_urls(url: str):
    assert codes(run(PRINTING, {**GOOD_PRINTING, "api_base_url": url})) == {}


@pytest.mark.parametrize(
    "url",
    [
        # plain http
        "http://printer.example.com/api",
        # loopback, private, link-local and other non-public literals
        "https://127.0.0.1/api",
        "https://127.8.9.10/",
        "https://10.0.0.5/",
        "https://172.16.3.4/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1]/",
        "https://[fc00::1]/",
        "https://localhost/",
        "https://printer.localhost/",
        "https://LOCALHOST./",
        "https://printer.local/",
        # the same addresses in the numeric forms resolvers accept
        "https://2130706433/",
        "https://127.1/",
        "https://0x7f.0.0.1/",
        "https://0177.0.0.1/",
        "https://0/",
        "https://%6c%6f%63%61%6c%68%6f%73%74/",
    ],
)
def test_printing_partner_refuses_non_public_or_plain_http_urls(url: str):
    assert codes(run(PRINTING, {**GOOD_PRINTING, "api_base_url": url})) == {
        "config.api_base_url": "invalid_url"
    }


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "printer.example.com",
        "ftp://printer.example.com/",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "https:printer.example.com",
        "https://user:pass@printer.example.com/",
        "https://printer.example.com:99999/",
        "https://printer.example.com:-1/",
        "https://exa mple.com/",
        "https://printer.example.com/\n",
        "https://printer.example.com/\tapi",
        "https://printer.example.com\\@evil.example/",
        "https://[::1/",
        "https://999.1.1.1/",
        "https://" + "a" * 5000 + ".example.com/",
    ],
)
def test_printing_partner_refuses_garbage_urls_even_when_private_urls_are_allowed(url: str):
    for allow in (False, True):
        result = run(PRINTING, {**GOOD_PRINTING, "api_base_url": url}, allow_private_urls=allow)
        assert codes(result).get("config.api_base_url") in {"invalid_url", "too_long"}, (url, allow)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8100", "http://localhost:8100/api", "https://10.1.2.3/", "http://printer.example.com"],
)
def test_allow_private_urls_lets_http_and_private_addresses_through(url: str):
    assert codes(run(PRINTING, {**GOOD_PRINTING, "api_base_url": url}, allow_private_urls=True)) == {}
    assert codes(run(PRINTING, {**GOOD_PRINTING, "api_base_url": url})) == {
        "config.api_base_url": "invalid_url"
    }


def test_printing_partner_api_key_is_required_and_only_presence_is_checked():
    assert codes(run(PRINTING, GOOD_PRINTING, secrets=())) == {"secrets.api_key": "required"}
    assert codes(run(PRINTING, GOOD_PRINTING, secrets=("api_key",))) == {}
    assert check_secret_values(PRINTING, {"api_key": 12345}, allow_private_urls=False) == [
        FieldIssue("secrets.api_key", "invalid_type", "API key must be text.")
    ]
    assert check_secret_values(PRINTING, {"api_key": "pk_live_x"}, allow_private_urls=False) == []
    assert check_secret_values(PRINTING, {"api_key": None}, allow_private_urls=False) == []


def test_unknown_config_keys_are_warnings_not_errors():
    result = run(PRINTING, {**GOOD_PRINTING, "colour": "blue"})
    assert result.ok
    assert [(w.field, w.code) for w in result.warnings] == [("config.colour", "unknown_field")]


def test_validation_result_as_dict_uses_the_contract_shape():
    result = run(PRINTING, {"account_id": "x"}, secrets=())
    as_dict = result.as_dict()
    assert set(as_dict) == {"errors", "warnings"}
    for issue in as_dict["errors"]:
        assert set(issue) == {"field", "code", "message"}
    assert {i["field"] for i in as_dict["errors"]} == {
        "config.account_id",
        "config.api_base_url",
        "secrets.api_key",
    }


# --- venue_ops -------------------------------------------------------------------------------


def test_venue_ops_accepts_a_good_connection_and_timezone_is_optional():
    assert codes(run(VENUE, GOOD_VENUE)) == {}
    assert codes(run(VENUE, {"venue_id": "v1"})) == {}
    assert codes(run(VENUE, {"venue_id": "v1", "timezone": None})) == {}
    assert codes(run(VENUE, {"venue_id": "v1", "timezone": ""})) == {}
    assert VENUE.config_field("timezone").default == "UTC"  # type: ignore[union-attr]
    assert VENUE.config_field("timezone").required is False  # type: ignore[union-attr]


def test_venue_ops_requires_venue_id_and_api_token():
    assert codes(run(VENUE, {}, secrets=())) == {
        "config.venue_id": "required",
        "secrets.api_token": "required",
    }
    assert codes(run(VENUE, {"venue_id": ""})) == {"config.venue_id": "required"}
    assert codes(run(VENUE, {"venue_id": 42})) == {"config.venue_id": "invalid_type"}
    assert codes(run(VENUE, {"venue_id": "v" * 128})) == {}
    assert codes(run(VENUE, {"venue_id": "v" * 129})) == {"config.venue_id": "too_long"}


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Kyiv", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "Asia/Kolkata"]
)
def test_venue_ops_accepts_iana_zones(zone: str):
    assert is_iana_zone(zone)
    assert codes(run(VENUE, {**GOOD_VENUE, "timezone": zone})) == {}


@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Olympus_Mons",
        "europe/kyiv",
        "Europe/Kyiv ",
        "+02:00",
        "GMT+2 ",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe/../Europe/Kyiv",
        "localtime",
        "posixrules",
        "posix/Europe/Kyiv",
        "right/UTC",
        "zone.tab",
        "Europe/Kyiv\x00",
    ],
)
def test_venue_ops_refuses_what_is_not_an_iana_zone(zone: str):
    assert not is_iana_zone(zone)
    assert codes(run(VENUE, {**GOOD_VENUE, "timezone": zone})) == {"config.timezone": "invalid_timezone"}


def test_venue_ops_timezone_of_the_wrong_type_or_length_is_one_error():
    assert codes(run(VENUE, {**GOOD_VENUE, "timezone": 3})) == {"config.timezone": "invalid_type"}
    assert not is_iana_zone("Europe/" + "x" * 58)
    assert codes(run(VENUE, {**GOOD_VENUE, "timezone": "Europe/" + "x" * 58})) == {
        "config.timezone": "too_long"
    }


def test_shipped_adapters_allow_every_scope_and_report_a_disallowed_one():
    class OccasionOnly(VenueOpsAdapter):
        allowed_scopes = frozenset({ScopeType.OCCASION})

    for scope in ScopeType:
        assert codes(run(VENUE, GOOD_VENUE, scope=Scope(scope, "occ_1"))) == {}
    assert codes(run(OccasionOnly(), GOOD_VENUE, scope=Scope(ScopeType.PLATFORM))) == {
        "scope.type": "not_allowed"
    }


# --- field types, through a test adapter ----------------------------------------------------------


class TypedAdapter(Adapter):
    integration_key = "typed"
    name = "Typed"
    description = "One field of every type."
    category = "testing"
    direction = Direction.OUTBOUND
    mode = Mode.MANUAL
    config_fields = (
        Field("batch_size", "Batch size", FieldType.INTEGER, minimum=1, maximum=500),
        Field("dry_run", "Dry run", FieldType.BOOLEAN),
        Field("colour", "Colour", FieldType.ENUM, choices=("red", "green")),
        Field("code", "Code", min_length=2, max_length=4),
        Field("endpoint", "Endpoint", FieldType.URL),
    )


TYPED = TypedAdapter()


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("batch_size", 1, None),
        ("batch_size", 500, None),
        ("batch_size", 0, "too_small"),
        ("batch_size", 501, "too_large"),
        ("batch_size", "5", "invalid_type"),
        ("batch_size", 5.0, "invalid_type"),
        ("batch_size", True, "invalid_type"),
        ("batch_size", [5], "invalid_type"),
        ("dry_run", True, None),
        ("dry_run", False, None),
        ("dry_run", "true", "invalid_type"),
        ("dry_run", 1, "invalid_type"),
        ("dry_run", 0, "invalid_type"),
        ("colour", "red", None),
        ("colour", "blue", "invalid_choice"),
        ("colour", "RED", "invalid_choice"),
        ("colour", 1, "invalid_type"),
        ("code", "ab", None),
        ("code", "abcd", None),
        ("code", "a", "too_short"),
        ("code", "abcde", "too_long"),
        ("code", {"a": 1}, "invalid_type"),
        ("endpoint", "https://example.com", None),
        ("endpoint", "nope", "invalid_url"),
    ],
)
def test_field_types(key: str, value: object, code: str | None):
    assert codes(run(TYPED, {key: value})).get(f"config.{key}") == code


def test_false_and_zero_are_values_not_missing():
    class Required(TypedAdapter):
        config_fields = (
            Field("flag", "Flag", FieldType.BOOLEAN, required=True),
            Field("count", "Count", FieldType.INTEGER, required=True),
        )

    assert codes(run(Required(), {"flag": False, "count": 0})) == {}
    assert codes(run(Required(), {})) == {"config.flag": "required", "config.count": "required"}


def test_field_declarations_are_checked_when_declared():
    with pytest.raises(ValueError, match="snake_case"):
        Field("Bad Key", "Bad")
    with pytest.raises(ValueError, match="choices"):
        Field("colour", "Colour", FieldType.ENUM)
    with pytest.raises(ValueError, match="choices"):
        Field("colour", "Colour", choices=("red",))


def test_a_crashing_validate_hook_becomes_one_error_not_an_exception():
    class Crashing(TypedAdapter):
        def validate(self, ctx: ValidationContext) -> Iterable[FieldIssue]:
            raise RuntimeError("plugin bug")

    result = run(Crashing(), {})
    assert [(e.field, e.code) for e in result.errors] == [("connection", "validation_crashed")]


def test_a_validate_hook_yielding_junk_becomes_one_error_not_an_exception():
    class Junk(TypedAdapter):
        def validate(self, ctx: ValidationContext) -> Iterable[FieldIssue]:
            return ["config.code is wrong"]  # type: ignore[list-item]

    result = run(Junk(), {})
    assert [(e.field, e.code) for e in result.errors] == [("connection", "validation_crashed")]


def test_adapter_rules_add_no_second_error_to_a_field_the_declaration_already_refused():
    class Strict(TypedAdapter):
        def validate(self, ctx: ValidationContext) -> Iterable[FieldIssue]:
            yield FieldIssue("config.code", "not_allowed", "No codes allowed.")
            yield FieldIssue("connection", "first", "First.")
            yield FieldIssue("connection", "second", "Second.")

    result = run(Strict(), {"code": "x"})  # too short by declaration
    assert [(e.field, e.code) for e in result.errors] == [
        ("config.code", "too_short"),
        ("connection", "first"),
        ("connection", "second"),
    ]
    assert [(e.field, e.code) for e in run(Strict(), {"code": "abc"}).errors] == [
        ("config.code", "not_allowed"),
        ("connection", "first"),
        ("connection", "second"),
    ]


def test_validate_sees_which_secrets_are_present_but_never_their_values():
    seen: list[ValidationContext] = []

    class Spy(TypedAdapter):
        secret_fields = (Field("token", "Token", required=True),)

        def validate(self, ctx: ValidationContext) -> Iterable[FieldIssue]:
            seen.append(ctx)
            return ()

    run(Spy(), {}, secrets=("token",))
    assert seen[0].secrets_present == frozenset({"token"})
    assert not hasattr(seen[0], "secrets")


# --- never raises ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_keys = st.sampled_from(
    [
        "account_id",
        "api_base_url",
        "venue_id",
        "timezone",
        "api_key",
        "batch_size",
        "dry_run",
        "colour",
        "code",
    ]
) | st.text(max_size=12)
url_like = st.builds(
    lambda scheme, host, rest: f"{scheme}{host}{rest}",
    st.sampled_from(["https://", "http://", "", "ftp://", "https:", "HTTPS://"]),
    st.text(max_size=30),
    st.text(max_size=20),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    adapter=st.sampled_from([PRINTING, VENUE, TYPED]),
    config=st.dictionaries(field_keys, json_values | url_like, max_size=6),
    secrets=st.frozensets(st.text(max_size=10), max_size=3),
    allow=st.booleans(),
    scope=st.sampled_from(list(ScopeType)),
)
def test_validation_never_raises_on_junk(
    adapter: Adapter, config: dict[str, Any], secrets: frozenset[str], allow: bool, scope: ScopeType
):
    result = run(adapter, config, secrets, allow_private_urls=allow, scope=Scope(scope, "occ_1"))
    for issue in (*result.errors, *result.warnings):
        assert isinstance(issue, FieldIssue)
        assert issue.field
        assert issue.code
        assert issue.message
    assert not any(e.code == "validation_crashed" for e in result.errors)
    check_secret_values(adapter, config, allow_private_urls=allow)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60) | url_like, st.booleans())
def test_check_url_never_raises(value: str, allow: bool):
    problem = check_url(value, allow_private=allow)
    assert problem is None or (isinstance(problem, str) and problem)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=70))
def test_is_iana_zone_never_raises(value: str):
    assert is_iana_zone(value) in (True, False)
