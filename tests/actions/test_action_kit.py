"""The adapter author's kit for actions: ``run_action`` over a FakePartner, the context's scope,
and the conformance check that catches untyped errors and leaked secrets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from tovplus.errors import Forbidden, InvalidInput, PartnerUnavailable
from tovplus.integrations import ActionContext, ActionResult, ActionSpec, Field, GuestData
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.testing import RUN_ID, FakePartner, Reply, check_adapter, run_action

CONFIG = {"account_id": "acct-1", "api_base_url": "https://printer.example.com/api"}
SECRETS = {"api_key": "pk_test_0123456789abcdef"}
GUESTS = [GuestData("g1", "Ola", "ola@example.com"), GuestData("g2", "Kari", None)]

pytestmark = pytest.mark.no_db


def test_export_guests_puts_names_only_with_the_run_id_as_idempotency_key() -> None:
    partner = FakePartner({"PUT /accounts/acct-1/guest-lists/occ_test": {"guests": 2}})
    result = run_action(
        PrintingPartnerAdapter,
        "export_guests",
        config=CONFIG,
        secrets=SECRETS,
        partner=partner,
        guests=GUESTS,
    )
    assert result.summary == "Sent 2 guests to the printer"
    (request,) = partner.requests
    assert request.method == "PUT"
    assert request.headers["idempotency-key"] == RUN_ID
    assert request.headers["authorization"] == "Bearer pk_test_0123456789abcdef"
    assert json.loads(request.content) == {
        "guests": [{"guest_id": "g1", "name": "Ola"}, {"guest_id": "g2", "name": "Kari"}]
    }


def test_the_context_refuses_what_the_connections_keys_do_not_allow() -> None:
    partner = FakePartner.always(Reply(200, {}))
    with pytest.raises(Forbidden, match=r"guests\.read"):
        run_action(
            PrintingPartnerAdapter,
            "export_guests",
            config=CONFIG,
            secrets=SECRETS,
            partner=partner,
            guests=GUESTS,
            action_keys=["occasion.read"],
        )
    assert partner.requests == []


def test_transient_partner_failures_are_typed() -> None:
    with pytest.raises(PartnerUnavailable):
        run_action(
            PrintingPartnerAdapter,
            "export_guests",
            config=CONFIG,
            secrets=SECRETS,
            partner=FakePartner.always(503),
        )


class Careless(PrintingPartnerAdapter):
    """Leaks the key in its summary and lets partner failures escape untyped."""

    integration_key = "careless_printer"
    actions = (
        ActionSpec(
            "shout", "Shout", "Says something.", input_fields=(Field("words", "Words", required=True),)
        ),
    )

    def perform(self, action_key: str, input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
        response = ctx.http.post(f"{ctx.config['api_base_url']}/shout", json=dict(input))
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}")
        return ActionResult(summary=f"shouted with {ctx.secrets['api_key']}")


def test_conformance_catches_untyped_errors_leaks_and_a_missing_idempotency_key() -> None:
    report = check_adapter(Careless, config=CONFIG, secrets=SECRETS, only=["declarations", "actions"])
    (actions,) = [r for r in report.results if r.name == "actions"]
    text = "\n".join(actions.problems)
    assert "secret 'api_key' got out" in text
    assert "did not send Idempotency-Key" in text
    assert "perform raised RuntimeError (expected CredentialsRejected)" in text
    assert not report.ok


def test_the_shipped_adapter_passes_the_actions_check() -> None:
    report = check_adapter(
        PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, only=["declarations", "actions"]
    )
    (actions,) = [r for r in report.results if r.name == "actions"]
    assert actions.passed, actions.problems


def test_action_input_is_checked_like_config_fields() -> None:
    spec = Careless.actions[0]
    with pytest.raises(InvalidInput) as raised:
        spec.check_input({"words": "", "loud": True})
    assert sorted(f.field for f in raised.value.fields) == ["input.loud", "input.words"]
    assert spec.check_input({"words": "hi"}) == {"words": "hi"}
