"""``webhook.test`` as an event type: listed, subscribable, and still sent to one endpoint only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Api
from tests.webhooks.test_webhook_operations import deliver_all, ep_path, log
from tests.webhooks.test_webhooks_delivery import EVENT, Receiver, add_endpoint, emit
from tovplus.runtime import Runtime

TEST = "webhook.test"


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    a, b = Receiver(), Receiver()
    yield a, b
    a.stop()
    b.stop()


def test_webhook_test_is_listed_subscribable_and_sent_only_to_the_endpoint_asked(
    api: Api, runtime: Runtime, receivers: tuple[Receiver, Receiver]
) -> None:
    listed = api.client.get("/v1/webhooks/event-types").json()["event_types"]
    (entry,) = [t for t in listed if t["type"] == TEST]
    assert entry["schema"]["properties"]["type"] == {"const": TEST}
    assert "endpoint_id" in entry["schema"]["properties"]["data"]["required"]

    ra, rb = receivers
    a = add_endpoint(api, ra.url, event_types=[TEST, EVENT])  # created subscribing to it
    h = api.auth(a.token)
    made = api.client.post(
        f"/v1/occasions/{a.occasion_id}/webhook-endpoints",
        json={"url": rb.url, "event_types": [EVENT]},
        headers=h,
    )
    assert made.status_code == 201, made.text
    b_id = made.json()["endpoint"]["id"]
    patched = api.client.patch(ep_path(a.occasion_id, b_id), json={"event_types": [EVENT, TEST]}, headers=h)
    assert patched.status_code == 200, patched.text
    assert patched.json()["endpoint"]["event_types"] == [EVENT, TEST]  # patched to subscribe to it

    sent = api.client.post(ep_path(a.occasion_id, a.endpoint_id, "/test"), headers=h)
    assert sent.status_code == 202, sent.text
    test_id = sent.json()["webhook_id"]
    emit(runtime, a.occasion_id)  # an ordinary event still reaches both
    deliver_all(runtime)

    assert ra.received[0].headers["webhook-id"] == test_id
    assert [TEST in r.body.decode() for r in ra.received] == [True, False]
    assert [TEST in r.body.decode() for r in rb.received] == [False]  # subscribed, but not asked
    assert [e["event_type"] for e in log(api, a.token, a.occasion_id, b_id)] == [EVENT]
    assert {e["event_type"] for e in log(api, a.token, a.occasion_id, a.endpoint_id)} == {EVENT, TEST}
