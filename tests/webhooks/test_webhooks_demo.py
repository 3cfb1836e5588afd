"""``make run``'s webhooks demo: an endpoint on the simulator's receiver, with a test event queued."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tovplus.db.models import WebhookDelivery, WebhookEndpoint
from tovplus.partner_sim.app import create_app as create_sim
from tovplus.runtime import Runtime
from tovplus.services.demo import seed_demo


def test_demo_adds_an_endpoint_with_a_test_event_once(runtime: Runtime):
    seed_demo(runtime)
    seed_demo(runtime)
    with runtime.db.read() as session:
        [endpoint] = session.scalars(select(WebhookEndpoint)).all()
        [delivery] = session.scalars(select(WebhookDelivery)).all()
    assert endpoint.url.endswith("/_webhooks")
    assert delivery.event_type == "webhook.test"


def test_simulator_receiver_keeps_what_it_gets():
    with TestClient(create_sim()) as sim:
        r = sim.post("/_webhooks", content=b'{"type":"webhook.test"}', headers={"webhook-id": "msg_1"})
        assert r.status_code == 200
        got = sim.get("/_webhooks").json()["received"]
        assert got[-1]["webhook_id"] == "msg_1"
