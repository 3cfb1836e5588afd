"""The adapter author's kit for OAuth2: the fake authorization server, the memory token source,
the contexts and runners over them, and the conformance suite's ``leaks`` check and auth
declaration checks, proved with a well-behaved OAuth2 adapter and misbehaving variants of it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import pytest

from tovplus.errors import CredentialsRejected, PartnerUnavailable
from tovplus.integrations import (
    ActionContext,
    ActionResult,
    ActionSpec,
    Adapter,
    CallbackContext,
    CallbackResult,
    Direction,
    Field,
    FieldType,
    Mode,
    PayloadReader,
    RecordUpsert,
    SyncContext,
    SyncResult,
    partner_unreachable,
)
from tovplus.integrations.auth import BearerAuth, OAuth2Auth
from tovplus.integrations.contract import CheckContext, CheckResult
from tovplus.integrations.http import with_auth
from tovplus.testing import (
    RUN_ID,
    AdapterConformance,
    FakeAuthorizationServer,
    FakePartner,
    MemoryTokenSource,
    check_adapter,
    oauth_context,
    oauth_http,
    records_by_id,
    run_action,
    run_check,
    run_sync,
    run_validation,
)
from tovplus.testing.conformance.checks import capture_every_log

pytestmark = pytest.mark.no_db

CONFIG = {"api_base_url": "https://api.rsvp.example/v1", "oauth_base_url": "https://auth.rsvp.example"}
RSVP = {"guest_id": "gst_1", "response": "yes", "updated_at": "2026-11-25T10:00:00Z"}
CALLBACK = {
    "event": "rsvp.received",
    "guest_id": "gst_1",
    "response": "no",
    "occurred_at": "2026-11-25T11:00:00Z",
}
log = logging.getLogger("tests.oauth_kit")


def _status(response: httpx.Response) -> None:
    if response.status_code in (401, 403):
        raise CredentialsRejected("The RSVP service refused the grant: reconnect the connection.")
    if response.status_code >= 400:
        raise PartnerUnavailable(f"The RSVP service answered HTTP {response.status_code}.")


def _json(http: httpx.Client, method: str, url: str, **kwargs: Any) -> Mapping[str, Any]:
    try:
        response = http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise partner_unreachable("the RSVP service", exc) from exc
    _status(response)
    try:
        body = response.json()
    except ValueError as exc:
        raise PartnerUnavailable("The RSVP service's answer was not JSON.") from exc
    if not isinstance(body, Mapping):
        raise PartnerUnavailable("The RSVP service's answer was not a JSON object.")
    return body


class RsvpAdapter(Adapter):
    """A well-behaved OAuth2 adapter: every request through ctx.http, nothing of the token out."""

    integration_key = "rsvp_kit_test"
    name = "RSVP service"
    description = "RSVPs pulled over OAuth2."
    category = "messaging"
    direction = Direction.BIDIRECTIONAL
    mode = Mode.PULL
    action_keys = ("occasion.read", "guests.read")
    config_fields = (
        Field("api_base_url", "API base URL", FieldType.URL, required=True),
        Field("oauth_base_url", "Sign-in address", FieldType.URL, required=True),
    )
    auth = OAuth2Auth(
        "{oauth_base_url}/oauth/authorize",
        "{oauth_base_url}/oauth/token",
        scopes=("rsvps.read", "messages.send"),
    )
    supports_background_sync = True
    supports_inbound_callbacks = True
    actions = (
        ActionSpec(
            "send_note",
            "Send a note",
            "Sends a note.",
            input_fields=(Field("message", "Message", required=True),),
        ),
    )

    def sync(self, ctx: SyncContext) -> SyncResult:
        base = str(ctx.config["api_base_url"]).rstrip("/")
        body = _json(ctx.http, "GET", f"{base}/rsvps")
        rsvps = body.get("rsvps")
        if not isinstance(rsvps, list):
            raise PartnerUnavailable("The RSVP list was not in the expected format.")
        records = [
            RecordUpsert(
                "rsvp", str(r["guest_id"]), {"guest_id": r["guest_id"], "response": r.get("response")}
            )
            for r in rsvps
            if isinstance(r, Mapping) and isinstance(r.get("guest_id"), str) and r["guest_id"]
        ]
        log.debug("synced %d rsvps", len(records))
        return SyncResult(records=records, summary=f"{len(records)} RSVPs")

    def check(self, ctx: CheckContext) -> CheckResult:
        body = _json(ctx.http, "GET", f"{str(ctx.config['api_base_url']).rstrip('/')}/me")
        return CheckResult(summary=f"Signed in as {str(body.get('account', 'someone'))[:60]}")

    def perform(self, action_key: str, input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
        base = str(ctx.config["api_base_url"]).rstrip("/")
        headers = {"Idempotency-Key": ctx.idempotency_key}
        _json(ctx.http, "POST", f"{base}/messages", json=dict(input), headers=headers)
        return ActionResult(summary="Note sent")

    def map_callback(self, payload: Any, ctx: CallbackContext) -> CallbackResult:
        reader = PayloadReader(payload)
        reader.literal("event", "rsvp.received")
        guest_id = reader.string("guest_id", max_length=200)
        response = reader.string("response", max_length=10)
        reader.timestamp("occurred_at")
        reader.finish()
        data = {"guest_id": guest_id, "response": response}
        return CallbackResult(records=[RecordUpsert("rsvp", guest_id, data)], summary=f"RSVP from {guest_id}")


def rsvp_api() -> FakePartner:
    return FakePartner(
        {
            "GET /v1/rsvps": {"rsvps": [RSVP]},
            "GET /v1/me": {"account": "Acme Events"},
            "POST /v1/messages": httpx.Response(202, json={"batch_id": "b1", "accepted": 1}),
        }
    )


# --- the fake server and the token source ----------------------------------------------------------


def test_the_server_protects_its_api_and_the_source_refreshes_ahead_of_expiry() -> None:
    server = FakeAuthorizationServer(rsvp_api(), expires_in=120)
    http = oauth_http(server)
    first = server.token_source().tokens.access_token
    assert http.get("https://api.rsvp.example/v1/me").json() == {"account": "Acme Events"}
    assert server.api.requests[0].headers["authorization"] == f"Bearer {first}"
    assert server.refreshes == 0
    server.advance(seconds=100)  # within 30 s of expiry: refreshed before the request
    http.get("https://api.rsvp.example/v1/me")
    assert server.refreshes == 1
    assert server.api.requests[1].headers["authorization"] != f"Bearer {first}"
    # without a token, or with an expired one, the API is never reached
    server.advance(seconds=25)
    assert not server.is_live(first)
    assert server.client().get("https://api.rsvp.example/v1/me").status_code == 401
    stale = httpx.Client(transport=server.transport(), headers={"Authorization": f"Bearer {first}"})
    assert stale.get("https://api.rsvp.example/v1/me").status_code == 401
    assert len(server.api.requests) == 2
    assert len(server.rejected) == 2


def test_refresh_tokens_rotate_and_a_reused_one_is_refused() -> None:
    server = FakeAuthorizationServer(expires_in=60)
    granted = server.grant()
    token_url = "https://auth.rsvp.example/oauth/token"
    with server.client() as client:
        form = {"grant_type": "refresh_token", "refresh_token": granted.refresh_token}
        fresh = client.post(token_url, data=form)
        assert fresh.status_code == 200
        assert fresh.json()["refresh_token"] != granted.refresh_token
        assert fresh.json()["expires_in"] == 60
        again = client.post(token_url, data=form)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})
    assert server.refreshes == 1
    assert server.reused == [granted.refresh_token]


def test_a_401_refreshes_once_and_retries_once() -> None:
    server = FakeAuthorizationServer(rsvp_api())
    http = oauth_http(server)
    http.get("https://api.rsvp.example/v1/me")
    server.expire_access_tokens()  # the partner forgot the token early
    assert http.get("https://api.rsvp.example/v1/me").status_code == 200
    assert (server.refreshes, len(server.rejected), len(server.api.requests)) == (1, 1, 2)


def test_a_revoked_grant_is_credentials_rejected_and_never_reuses_a_token() -> None:
    server = FakeAuthorizationServer(rsvp_api())
    source = server.token_source()
    server.revoke()
    server.advance(minutes=10)
    with pytest.raises(CredentialsRejected, match="reconnect"):
        source.access_token()
    assert source.reconnect_required
    with pytest.raises(CredentialsRejected):
        source.refresh_after_rejection(source.tokens.access_token)
    assert server.reused == []  # the source never sent the refused refresh token again


def test_two_callers_after_the_same_401_refresh_once() -> None:
    server = FakeAuthorizationServer()
    source = MemoryTokenSource(server)
    rejected = source.access_token()
    one = source.refresh_after_rejection(rejected)
    two = source.refresh_after_rejection(rejected)
    assert one == two != rejected
    assert (server.refreshes, source.refreshes) == (1, 1)


def test_the_source_works_with_bearer_auth_on_any_client() -> None:
    server = FakeAuthorizationServer(rsvp_api())
    source = MemoryTokenSource(server, refresh_ahead=0)
    http = with_auth(server.client(), BearerAuth(source))
    assert http.get("https://api.rsvp.example/v1/rsvps").json() == {"rsvps": [RSVP]}


# --- contexts and runners -----------------------------------------------------------------------------


def test_oauth_context_builds_each_kind_with_the_token() -> None:
    server = FakeAuthorizationServer(rsvp_api())
    token = server.token_source().access_token()
    sync = oauth_context("sync", server, config=CONFIG)
    check = oauth_context("check", server, config=CONFIG)
    action = oauth_context("action", server, config=CONFIG)
    assert (sync.access_token, check.access_token, action.access_token) == (token, token, token)
    assert (sync.secrets, check.secrets, action.secrets) == ({}, {}, {})
    assert RsvpAdapter().check(check).summary == "Signed in as Acme Events"
    assert action.idempotency_key == RUN_ID
    with pytest.raises(ValueError, match="kind must be"):
        oauth_context("nope", server, config=CONFIG)  # type: ignore[call-overload]


def test_run_sync_check_and_action_drive_an_oauth2_adapter() -> None:
    server = FakeAuthorizationServer(rsvp_api(), expires_in=300)
    result = run_sync(RsvpAdapter, config=CONFIG, partner=server)
    assert records_by_id(result) == {"gst_1": {"guest_id": "gst_1", "response": "yes"}}
    assert run_check(RsvpAdapter, config=CONFIG, partner=server).summary == "Signed in as Acme Events"
    ran = run_action(RsvpAdapter, "send_note", {"message": "Hi"}, config=CONFIG, partner=server)
    assert ran.summary == "Note sent"
    assert server.refreshes == 0
    server.advance(seconds=301)
    run_sync(RsvpAdapter, config=CONFIG, partner=server)
    assert server.refreshes == 1  # the same grant, refreshed once, as the framework's would be
    tokens = {r.headers["authorization"] for r in server.api.requests}
    assert len(tokens) == 2
    assert all(t.startswith("Bearer fake-access-") for t in tokens)
    # a plain FakePartner is put behind a fresh server for an OAuth2 adapter
    api = rsvp_api()
    run_sync(RsvpAdapter, config=CONFIG, partner=api)
    assert api.requests[0].headers["authorization"].startswith("Bearer fake-access-1-")


def test_run_sync_treats_an_oauth2_connection_as_authorized_but_validation_asks_for_it() -> None:
    assert [(e.field, e.code) for e in run_validation(RsvpAdapter, config=CONFIG).errors] == [
        ("authorization", "required")
    ]
    with pytest.raises(AssertionError, match=r"config\.api_base_url"):
        run_sync(RsvpAdapter, config={"oauth_base_url": CONFIG["oauth_base_url"]}, partner=rsvp_api())


def test_a_revoked_grant_makes_the_sync_credentials_rejected() -> None:
    server = FakeAuthorizationServer(rsvp_api())
    run_sync(RsvpAdapter, config=CONFIG, partner=server)
    server.revoke()
    with pytest.raises(CredentialsRejected):
        run_sync(RsvpAdapter, config=CONFIG, partner=server)


# --- conformance ------------------------------------------------------------------------------------


class TestRsvpConforms(AdapterConformance):
    adapter = RsvpAdapter
    sample_config = CONFIG
    sample_callback = CALLBACK
    examples = 20

    def partner(self) -> FakePartner:
        return rsvp_api()


def test_the_well_behaved_oauth2_adapter_runs_every_check() -> None:
    report = check_adapter(RsvpAdapter, config=CONFIG, callback=CALLBACK, partner=rsvp_api, examples=20)
    assert report.ok, report.format()
    assert [r.name for r in report.results if r.skipped] == []
    assert report.result("leaks").passed
    derived = check_adapter(RsvpAdapter, examples=10)  # samples derived from the declarations
    assert derived.ok, derived.format()


class LogsItsToken(RsvpAdapter):
    def sync(self, ctx: SyncContext) -> SyncResult:
        log.debug("calling the RSVP service with %s", ctx.access_token)
        return super().sync(ctx)


class LogsItsHeaderAsExtra(RsvpAdapter):
    def check(self, ctx: CheckContext) -> CheckResult:
        response = ctx.http.get(f"{ctx.config['api_base_url']}/me")
        logging.getLogger("quiet.vendor").info("checked", extra={"sent": dict(response.request.headers)})
        return super().check(ctx)


class ReturnsItsToken(RsvpAdapter):
    def check(self, ctx: CheckContext) -> CheckResult:
        super().check(ctx)
        return CheckResult(summary=f"token {ctx.access_token}")


class QuotesTheAnswer(RsvpAdapter):
    def perform(self, action_key: str, input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
        response = ctx.http.post(f"{ctx.config['api_base_url']}/messages", json=dict(input))
        if response.status_code >= 400:
            raise PartnerUnavailable(f"The RSVP service said {response.text}")
        return ActionResult(summary="Note sent")


class KeepsItsToken(RsvpAdapter):
    cache: ClassVar[dict[str, str]] = {}

    def sync(self, ctx: SyncContext) -> SyncResult:
        self.last_token = ctx.access_token
        return super().sync(ctx)


class StoresTheTokenInItsState(RsvpAdapter):
    def sync(self, ctx: SyncContext) -> SyncResult:
        return SyncResult(records=super().sync(ctx).records, state={"token": ctx.access_token})


class CallbackHandsBackTheToken(KeepsItsToken):
    def map_callback(self, payload: Any, ctx: CallbackContext) -> CallbackResult:
        result = super().map_callback(payload, ctx)
        return CallbackResult(records=result.records, summary=result.summary, details={"t": self.last_token})


@pytest.mark.parametrize(
    ("adapter", "problem"),
    [
        (LogsItsToken, "sync, when the partner answers as scripted: a log record holds 'access_token'"),
        (
            LogsItsHeaderAsExtra,
            "check, when the partner answers as scripted: a log record holds 'access_token'",
        ),
        (ReturnsItsToken, "check, when the partner answers as scripted: its result holds 'access_token'"),
        (
            QuotesTheAnswer,
            "action 'send_note', when the partner answers HTTP 500 echoing the request: its error holds "
            "'access_token'",
        ),
        (KeepsItsToken, "after the runs: what the adapter keeps holds 'access_token'"),
        (
            StoresTheTokenInItsState,
            "sync, when the partner answers as scripted: its result holds 'access_token'",
        ),
        (CallbackHandsBackTheToken, "map_callback: its result holds 'access_token'"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_a_leaking_oauth2_adapter_fails_the_leaks_check(adapter: type[Adapter], problem: str) -> None:
    report = check_adapter(adapter, config=CONFIG, callback=CALLBACK, partner=rsvp_api, only=["leaks"])
    result = report.result("leaks")
    assert not result.passed
    assert problem in result.problems, result.format()
    assert "conformance-canary" not in report.format()  # the report masks the canaries too

    class TestIt(AdapterConformance):
        def partner(self) -> FakePartner:
            return rsvp_api()

    TestIt.adapter = adapter
    TestIt.sample_config = CONFIG
    TestIt.sample_callback = CALLBACK
    with pytest.raises(AssertionError, match="holds 'access_token'"):
        TestIt().test_no_token_or_secret_leaks()


class ApiKeyLogsItsSecret(Adapter):
    integration_key = "apikey_kit_test"
    name = "API key partner"
    description = "Logs its key at DEBUG."
    category = "other"
    direction = Direction.INBOUND
    mode = Mode.PULL
    config_fields = (Field("api_base_url", "API base URL", FieldType.URL, required=True),)
    secret_fields = (Field("api_key", "API key", required=True),)
    supports_background_sync = True

    def sync(self, ctx: SyncContext) -> SyncResult:
        logging.getLogger("some.library").debug("using key %s", ctx.secrets["api_key"])
        _json(
            ctx.http, "GET", f"{ctx.config['api_base_url']}/items", headers={"X-Key": ctx.secrets["api_key"]}
        )
        return SyncResult()


def test_an_api_key_adapter_that_logs_its_secret_fails_the_leaks_check() -> None:
    report = check_adapter(ApiKeyLogsItsSecret, only=["leaks"])
    assert (
        "sync, when the partner answers {}: a log record holds 'api_key'" in report.result("leaks").problems
    )


def test_every_logger_is_captured_at_debug_and_restored() -> None:
    quiet = logging.getLogger("quiet.vendor.capture")
    quiet.setLevel(logging.ERROR)
    quiet.propagate = False
    try:
        with capture_every_log() as logs:
            quiet.debug("hidden %s", "value", extra={"field": "x"})
        assert any("hidden value" in t and '"field": "x"' in t for t in logs.texts)
        assert quiet.level == logging.ERROR
        assert quiet.handlers == []
    finally:
        quiet.propagate = True


# --- auth declarations -------------------------------------------------------------------------------


class OptionalSignInUrl(RsvpAdapter):
    config_fields = (
        Field("api_base_url", "API base URL", FieldType.URL, required=True),
        Field("oauth_base_url", "Sign-in address", FieldType.URL),
    )


class NotHttps(RsvpAdapter):
    config_fields = (Field("api_base_url", "API base URL", FieldType.URL, required=True),)
    auth = OAuth2Auth("http://auth.rsvp.example/authorize", "/oauth/token")


class WithASecretField(RsvpAdapter):
    secret_fields = (Field("client_secret", "Client secret", required=True),)


class UnknownPlaceholder(RsvpAdapter):
    auth = OAuth2Auth("{tenant_url}/authorize", "{oauth_base_url}/oauth/token")


@pytest.mark.parametrize(
    ("adapter", "problem"),
    [
        (OptionalSignInUrl, "auth builds its URLs from config field 'oauth_base_url', which is not required"),
        (NotHttps, "auth authorize_url 'http://auth.rsvp.example/authorize' is not an absolute https URL"),
        (NotHttps, "auth token_url '/oauth/token' is not an absolute https URL once its fields are filled"),
        (WithASecretField, "an oauth2 adapter declares no secret_fields: the planner types no secret"),
        (UnknownPlaceholder, "auth names config field {tenant_url}, which config_fields lack"),
    ],
)
def test_unsound_auth_declarations_fail_the_declarations_check(adapter: type[Adapter], problem: str) -> None:
    report = check_adapter(adapter, config=CONFIG, only=["declarations"])
    problems = report.result("declarations").problems
    assert any(p.startswith(problem) for p in problems), problems


# --- the connect flow against the fake server, with Authlib as the framework uses it ---------------------


def _authlib_client(server: FakeAuthorizationServer) -> Any:
    from authlib.integrations.httpx_client import OAuth2Client

    return OAuth2Client(
        client_id="tovplus",
        client_secret="client-secret-0001",
        redirect_uri="https://tovplus.example/v1/integrations/oauth/callback",
        scope="rsvps.read",
        code_challenge_method="S256",
        transport=server.transport(),
    )


def test_an_authlib_connect_flow_gets_tokens_for_a_single_use_code_with_pkce() -> None:
    from authlib.common.security import generate_token

    server = FakeAuthorizationServer(rsvp_api())
    client = _authlib_client(server)
    verifier = generate_token(48)
    url, state = client.create_authorization_url(
        "https://auth.rsvp.example/oauth/authorize", code_verifier=verifier
    )
    allowed = server.client().get(url)
    assert allowed.status_code == 302
    location = allowed.headers["location"]
    assert location.startswith("https://tovplus.example/v1/integrations/oauth/callback?code=")
    assert f"state={state}" in location
    token = client.fetch_token(
        "https://auth.rsvp.example/oauth/token", authorization_response=location, code_verifier=verifier
    )
    assert token["access_token"] == server.issued[0].access_token
    assert token["scope"] == "rsvps.read"
    assert server.is_live(token["access_token"])
    # the code is single-use
    with pytest.raises(Exception, match="invalid_grant"):
        _authlib_client(server).fetch_token(
            "https://auth.rsvp.example/oauth/token", authorization_response=location, code_verifier=verifier
        )


def test_a_wrong_pkce_verifier_or_a_denial_gets_no_tokens() -> None:
    server = FakeAuthorizationServer()
    client = _authlib_client(server)
    url, _ = client.create_authorization_url(
        "https://auth.rsvp.example/oauth/authorize", code_verifier="v" * 48
    )
    location = server.client().get(url).headers["location"]
    with pytest.raises(Exception, match="invalid_grant"):
        client.fetch_token(
            "https://auth.rsvp.example/oauth/token", authorization_response=location, code_verifier="w" * 48
        )
    server.allow = False
    denied = server.client().get(url).headers["location"]
    assert "error=access_denied" in denied
    assert "code=" not in denied
    assert server.issued == []
