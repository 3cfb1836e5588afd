"""The printer's guest-list endpoint (what ``printing_partner.export_guests`` sends), with its
idempotency store, a fault switch of its own and a debug view of what it received.

* ``PUT /accounts/{account_id}/guest-lists/{occasion_id}`` ``{"guests": [{"guest_id", "name"}]}``
  (``Authorization: Bearer <api_key>``, ``Idempotency-Key``) → ``200 {"occasion_id", "guests":
  int, "version": int}``. A repeated ``Idempotency-Key`` answers the first answer again and has
  no second effect. The effect is stored before any ``slow`` delay, so a request whose caller
  died waiting still counts once.
* ``POST /_control/guest-lists`` ``{"mode": "ok"|"error500"|"unauthorized"|"slow"|"not_found",
  "times"?: int, "delay_seconds"?: float}``: a fault for this endpoint only (the account-wide
  switches of ``POST /_control`` apply too).
* ``GET /_control/guest-lists``: every list received (per account and occasion), with the
  counts of requests, effects and replays.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tovplus.partner_sim.answers import error
from tovplus.partner_sim.state import Fault, SimState

GUEST_LIST_MODES = ("ok", "error500", "unauthorized", "slow", "not_found")


@dataclass
class GuestLists:
    """What the printer received, its idempotency answers and its own fault switch."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: ``(account_id, occasion_id)`` → the last list received, with when and under which key.
    lists: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: ``(account_id, Idempotency-Key)`` → ``(status, body)`` of the first answer.
    answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: int = 0
    effects: int = 0
    replays: int = 0
    keys_seen: list[str] = field(default_factory=list)
    fault: Fault = field(default_factory=Fault)

    def take_fault(self) -> Fault:
        with self.lock:
            fault = self.fault
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    return Fault()
                fault.remaining -= 1
            return Fault(fault.mode, None, fault.delay_seconds)

    def receive(
        self, account_id: str, occasion_id: str, key: str | None, guests: list[Any]
    ) -> tuple[int, dict[str, Any]]:
        """Store the list once per key; returns the answer (the first one again for a repeat)."""
        with self.lock:
            self.requests += 1
            if key:
                self.keys_seen.append(key)
                earlier = self.answers.get((account_id, key))
                if earlier is not None:
                    self.replays += 1
                    return earlier
            previous = self.lists.get((account_id, occasion_id))
            version = (previous["version"] + 1) if previous else 1
            self.lists[(account_id, occasion_id)] = {
                "guests": guests,
                "version": version,
                "idempotency_key": key,
                "received_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            self.effects += 1
            answer = (200, {"occasion_id": occasion_id, "guests": len(guests), "version": version})
            if key:
                self.answers[(account_id, key)] = answer
            return answer

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            lists: dict[str, dict[str, Any]] = {}
            for (account_id, occasion_id), entry in self.lists.items():
                lists.setdefault(account_id, {})[occasion_id] = dict(entry)
            return {
                "lists": lists,
                "requests": self.requests,
                "effects": self.effects,
                "replays": self.replays,
                "idempotency_keys": list(self.keys_seen),
                "mode": self.fault.mode,
            }

    def reset(self) -> None:
        with self.lock:
            self.lists.clear()
            self.answers.clear()
            self.keys_seen.clear()
            self.requests = self.effects = self.replays = 0
            self.fault = Fault()


class GuestListRoutes:
    """The handlers, over the simulator's :class:`SimState` (accounts, account-wide faults)."""

    def __init__(self, sim: SimState, store: GuestLists) -> None:
        self.sim = sim
        self.store = store

    async def put(self, request: Request) -> Response:
        account_id = str(request.path_params["account_id"])
        occasion_id = str(request.path_params["occasion_id"])
        shared, own = self.sim.take_fault(account_id), self.store.take_fault()
        mode = own.mode if own.mode != "ok" else shared.mode
        delay = own.delay_seconds if own.mode == "slow" else shared.delay_seconds
        account = self.sim.accounts.get(account_id)
        if account is None or mode == "not_found":
            return error(404, "unknown account")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), account.api_key):
            return error(401, "invalid api key")
        if mode in ("unauthorized", "forbidden"):
            return error(401 if mode == "unauthorized" else 403, "invalid api key")
        if mode == "error500":
            return error(500, "internal error")
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return error(400, "send a JSON object")
        guests = body.get("guests") if isinstance(body, dict) else None
        if not isinstance(guests, list) or not all(
            isinstance(g, dict) and isinstance(g.get("guest_id"), str) and isinstance(g.get("name"), str)
            for g in guests
        ):
            return error(422, 'send {"guests": [{"guest_id": str, "name": str}]}')
        status, answer = self.store.receive(
            account_id, occasion_id, request.headers.get("idempotency-key"), guests
        )
        if mode == "slow":
            await asyncio.sleep(delay)
        return JSONResponse(answer, status_code=status)

    async def control(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return error(400, "send a JSON object")
        if not isinstance(body, dict) or body.get("mode") not in GUEST_LIST_MODES:
            return error(422, f"mode must be one of {', '.join(GUEST_LIST_MODES)}")
        times, delay = body.get("times"), body.get("delay_seconds")
        if times is not None and (not isinstance(times, int) or times < 0):
            return error(422, "times must be a non-negative integer")
        if delay is not None and (not isinstance(delay, int | float) or delay < 0):
            return error(422, "delay_seconds must be a non-negative number")
        with self.store.lock:
            self.store.fault = Fault(body["mode"], times, 3.0 if delay is None else float(delay))
        return JSONResponse({"mode": body["mode"], "times": times})

    async def debug(self, request: Request) -> Response:
        return JSONResponse(self.store.snapshot())


def guest_list_routes(sim: SimState, store: GuestLists) -> list[Route]:
    """The routes to add to the simulator's app."""
    h = GuestListRoutes(sim, store)
    return [
        Route("/accounts/{account_id}/guest-lists/{occasion_id}", h.put, methods=["PUT"]),
        Route("/_control/guest-lists", h.control, methods=["POST"]),
        Route("/_control/guest-lists", h.debug, methods=["GET"]),
    ]
