"""Security controls that no other test file proves (docs/security.md maps every control to its test).

* secrets and their digests are compared in constant time: a source scan finds no ``==``/``!=``
  on secret-shaped values outside SQL index lookups, and spies show ``hmac.compare_digest`` is
  what checks an integration key on the API, on the callback route, and a CSRF token;
* user bearer tokens are stored only as SHA-256 digests;
* every way a key can be wrong gets the same 401, so the answer tells nothing about which part
  was wrong (unknown key id, wrong secret, rotated away, malformed);
* the webhook sender does not follow redirects (a redirect to another address is an SSRF path);
* what users type is escaped on the pages (an occasion name or a config value with markup
  comes back as text, never as a tag), under the pages' Content-Security-Policy.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import Api, assert_error
from tests.support.web import WebUser, occasion, person
from tests.webhooks.test_webhooks_delivery import sync_completed_data
from tovplus.db.models import UserToken, WebhookAttempt, WebhookDelivery
from tovplus.runtime import Runtime
from tovplus.services import connections, webhooks
from tovplus.services.connections import ConnectionCreate
from tovplus.web import security

SRC = Path(__file__).resolve().parents[2] / "src" / "tovplus"

# --- constant-time comparison ---------------------------------------------------------------------

SECRETISH = re.compile(
    r"secret|token|signature|password|passwd|hash|digest|csrf|api_key|issued_key|hmac", re.I
)
#: Python-level comparisons that are reviewed and allowed, as (file relative to src/tovplus, source).
ALLOWED = {
    # the redacted form is public (it is shown with every connection): nothing secret is compared
    ("integrations/redaction.py", "candidate == redact_secret(real)"),
}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript | ast.Call):
        return _name(node.value if isinstance(node, ast.Subscript) else node.func)
    return None


def _is_sql_column(node: ast.AST) -> bool:
    """``Model.column``: a SQLAlchemy expression, compared by the database in an index lookup."""
    return (
        isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id[:1].isupper()
    )


def secret_equality_comparisons(source: str) -> list[str]:
    """``==``/``!=`` comparisons in ``source`` where an operand looks like a secret or its digest.

    Comparisons with a literal (``is None``-style checks, ``== ""``), of ids (``*_id``), and SQL
    column expressions (``UserToken.token_hash == sha256_hex(token)``: the database looks up an
    index by the digest of a 256-bit random token, which leaks nothing usable) are not findings.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare) or not any(
            isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
        ):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Constant) for o in operands) or any(_is_sql_column(o) for o in operands):
            continue
        names = [n for n in map(_name, operands) if n]
        if any(SECRETISH.search(n) and not n.endswith("_id") for n in names):
            found.append(ast.unparse(node))
    return found


@pytest.mark.no_db
def test_the_scan_finds_a_secret_compared_with_equals():
    """The scan itself can fail: it flags the comparisons it is meant to catch."""
    bad = """
def check(presented, key, token, stored_hash):
    if sha256_hex(presented) == key.secret_hash:
        return True
    return token != stored_hash
"""
    assert secret_equality_comparisons(bad) == [
        "sha256_hex(presented) == key.secret_hash",
        "token != stored_hash",
    ]
    fine = """
def check(presented, key, row):
    if row.secret_key_id != key.primary_id or presented is None or presented == "":
        return False
    return select(UserToken).where(UserToken.token_hash == sha256_hex(presented))
"""
    assert secret_equality_comparisons(fine) == []


@pytest.mark.no_db
def test_no_secret_or_digest_is_compared_with_equals_anywhere_in_the_code():
    findings = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        for comparison in secret_equality_comparisons(path.read_text()):
            if (relative, comparison) not in ALLOWED:
                findings.append(f"{relative}: {comparison}")
    assert findings == [], "compare secrets with hmac.compare_digest:\n" + "\n".join(findings)


@pytest.fixture
def compare_spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def _enabled_connection(api: Api) -> tuple[str, str, str, str]:
    """(planner token, occasion id, connection id, issued key) of an enabled printing connection."""
    planner = api.user("planner")
    occasion = api.occasion(planner)
    r = api.connect(planner, occasion, state="enabled")
    assert r.status_code == 201, r.text
    return planner, occasion, r.json()["connection"]["id"], r.json()["issued_key"]


def _digest(issued_key: str) -> str:
    return hashlib.sha256(issued_key.split("_", 2)[2].encode()).hexdigest()


def test_an_integration_key_on_the_api_is_checked_with_compare_digest(api: Api, compare_spy):
    _planner, occasion, _conn, key = _enabled_connection(api)
    compare_spy.clear()
    assert api.client.get(f"/v1/occasions/{occasion}", headers=api.auth(key)).status_code == 200
    assert (_digest(key), _digest(key)) in compare_spy  # presented digest against the stored one

    # a wrong secret under a real key id: the same compare, which says no
    compare_spy.clear()
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert_error(api.client.get(f"/v1/occasions/{occasion}", headers=api.auth(wrong)), 401)
    assert (_digest(wrong), _digest(key)) in compare_spy

    # an unknown key id still costs a compare: no faster answer for ids that do not exist
    compare_spy.clear()
    assert_error(
        api.client.get(f"/v1/occasions/{occasion}", headers=api.auth("tov_iknotthere_" + "x" * 43)), 401
    )
    assert compare_spy, "an unknown key id must still go through compare_digest"


def test_a_callback_secret_is_checked_with_compare_digest(api: Api, compare_spy):
    _planner, _occasion, conn, key = _enabled_connection(api)
    body = {
        "event": "order.status_changed",
        "order_id": "o-1",
        "status": "printing",
        "occurred_at": "2026-11-25T19:40:00Z",
        "tracking_number": None,
    }
    url = f"/v1/integrations/callbacks/printing_partner/{conn}"
    compare_spy.clear()
    r = api.client.post(url, json=body, headers={"x-tov-integration-secret": key, "x-tov-delivery-id": "d-1"})
    assert r.status_code == 202, r.text
    assert (_digest(key), _digest(key)) in compare_spy
    compare_spy.clear()
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    r = api.client.post(
        url, json=body, headers={"x-tov-integration-secret": wrong, "x-tov-delivery-id": "d-2"}
    )
    assert_error(r, 401)
    assert (_digest(wrong), _digest(key)) in compare_spy


@pytest.mark.no_db
def test_a_csrf_token_is_checked_with_compare_digest(compare_spy):
    good = security.csrf_token_for("session-seed")
    assert security.csrf_ok("session-seed", good)
    assert compare_spy == [(good, good)]
    assert not security.csrf_ok("session-seed", security.csrf_token_for("another-seed"))
    assert not security.csrf_ok("session-seed", None)
    assert not security.csrf_ok(None, good)


# --- hashing ---------------------------------------------------------------------------------------


def test_user_bearer_tokens_are_stored_only_as_sha256_digests(api: Api):
    token = api.user("planner")
    assert api.client.get("/v1/integrations/catalog", headers=api.auth(token)).status_code == 200
    with api.runtime.db.read() as session:
        rows = list(session.scalars(select(UserToken)))
    assert [row.token_hash for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    for row in rows:
        assert token not in " ".join(str(v) for v in vars(row).values())


# --- no oracle in 401s ------------------------------------------------------------------------------


def test_every_kind_of_bad_key_gets_the_same_401(api: Api):
    planner, occasion, conn, key = _enabled_connection(api)
    r = api.patch(planner, occasion, conn, rotate_key=True)
    assert r.status_code == 200, r.text
    new_key = r.json()["issued_key"]
    key_id = key.split("_", 2)[1]
    bad = {
        "rotated away": key,
        "wrong secret": new_key[:-4] + ("AAAA" if not new_key.endswith("AAAA") else "BBBB"),
        "unknown key id": f"tov_ik{'0' * 20}_{key.split('_', 2)[2]}",
        "malformed": "tov_" + key_id,
        "not a key": "hello",
    }
    answers = {}
    for why, token in bad.items():
        r = api.client.get(f"/v1/occasions/{occasion}", headers=api.auth(token))
        answers[why] = (r.status_code, r.json())
    assert len({repr(a) for a in answers.values()}) == 1, answers
    assert next(iter(answers.values()))[0] == 401
    assert api.client.get(f"/v1/occasions/{occasion}", headers=api.auth(new_key)).status_code == 200


# --- SSRF: redirects ------------------------------------------------------------------------------------


class _Hop:
    """A loopback server answering every POST with ``status`` (and ``Location``); counts requests."""

    def __init__(self, status: int, location: str | None = None) -> None:
        self.hits = 0
        hop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                hop.hits += 1
                self.send_response(status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = _answer  # noqa: N815 - http.server's naming
            do_GET = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hops() -> Iterator[tuple[_Hop, _Hop]]:
    target = _Hop(200)  # stands for an internal service the redirect points at
    redirector = _Hop(307, location=target.url)
    yield redirector, target
    redirector.stop()
    target.stop()


def test_the_webhook_sender_does_not_follow_redirects(api: Api, runtime: Runtime, hops):
    redirector, target = hops
    planner = api.user("planner")
    occasion = api.occasion(planner)
    r = api.client.post(
        f"/v1/occasions/{occasion}/webhook-endpoints",
        json={"url": redirector.url, "event_types": ["integration.sync_completed"]},
        headers=api.auth(planner),
    )
    assert r.status_code == 201, r.text
    with runtime.db.write() as session:
        [delivery_id] = webhooks.emit_event(
            session,
            occasion_id=occasion,
            event_type="integration.sync_completed",
            data=sync_completed_data(occasion),
        )
    webhooks.deliver(runtime, delivery_id, worker_id="w1")
    assert redirector.hits == 1
    assert target.hits == 0, "the redirect was followed"
    with runtime.db.read() as session:
        row = session.get(WebhookDelivery, delivery_id)
        attempts = list(
            session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id))
        )
    assert row is not None
    assert row.state == "pending"  # a redirect is not a delivery: it is retried later
    assert [(a.status_code, a.succeeded) for a in attempts] == [(307, False)]


# --- XSS ------------------------------------------------------------------------------------------------

MARKUP = "<script>alert('x')</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'


def test_markup_typed_by_users_is_escaped_on_the_pages(client, runtime: Runtime):
    planner = person(runtime, "planner")
    occ = occasion(runtime, planner, f"Wedding {MARKUP}")
    created = connections.create_connection(
        runtime,
        planner.caller,
        occ,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": ATTRIBUTE, "api_base_url": "https://printer.example.com/api"},
            secrets={"api_key": "pk_live_ABCDEFGHIJKL7890"},
            state="draft",  # a draft may hold the invalid account id, so the page shows it and its error
        ),
    )
    web = WebUser(client, planner)
    admin = WebUser(client, person(runtime, "admin"))
    pages = {
        "occasion": web.get(f"/occasions/{occ}/integrations"),
        "connection": web.get(f"/occasions/{occ}/integrations/connections/{created.connection['id']}"),
        "admin": admin.get("/admin/integrations"),
    }
    for name, page in pages.items():
        assert page.status_code == 200, (name, page.text[:500])
        html = page.text
        assert MARKUP not in html, name
        assert "<img src=x" not in html, name
        assert "script-src 'self'" in page.headers["content-security-policy"], name
    assert "&lt;script&gt;" in pages["occasion"].text
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages["connection"].text


# --- the write-up stays true ----------------------------------------------------------------------------


@pytest.mark.no_db
def test_docs_security_names_only_tests_that_exist():
    root = SRC.parent.parent
    text = (root / "docs" / "security.md").read_text()
    named = set(re.findall(r"(tests/[a-z_0-9/]+\.py)::([a-z_0-9]+)", text))
    assert len(named) >= 40
    missing = [
        f"{path}::{name}"
        for path, name in sorted(named)
        if not re.search(rf"^def {name}\(", (root / path).read_text(), re.MULTILINE)
    ]
    assert missing == [], f"docs/security.md names tests that do not exist: {missing}"
