"""The printing partner's HTTP API, as the contract describes it, plus control switches.

Partner API (``Authorization: Bearer <api_key>``):

* ``GET /accounts/{account_id}`` → ``{"account_id", "status"}``
* ``GET /accounts/{account_id}/orders?updated_since=<RFC 3339>&page_token=<from the last page>`` →
  ``{"orders": [...], "next_page_token": str|null}`` (the account's ``page_size`` orders a page;
  an order deleted after ``updated_since`` is listed as ``{"order_id", "deleted": true, "updated_at"}``)

Control (loopback only, no auth):

* ``POST /_control`` ``{"mode": "ok"|"unauthorized"|"forbidden"|"error500"|"slow"|"suspended"|
  "mismatch"|"not_found"|"rate_limited", "account_id"?: str, "times"?: int, "delay_seconds"?: float}``
  — switch every account (or one) to a fault, for ``times`` requests or until switched back to ``ok``.
* ``POST /_control/accounts`` ``{"accounts": [{"account_id", "api_key", "orders"?, "status"?,
  "page_size"?}]}`` or ``{"prefix": str, "count": int, "orders"?: int}`` (keys: :func:`generated_key`).
* ``POST /_control/accounts/{account_id}/delete`` ``{"order_ids": [str]}``: the partner deletes them.
* ``GET /_control/stats``, ``POST /_control/reset``, ``GET /healthz``.

Guest lists (``printing_partner.export_guests``): ``partner_sim/guest_lists.py``. The messaging
partner of ``guest_messaging`` (OAuth2, RSVPs, messages): ``partner_sim/messaging.py``, under
``/messaging``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tovplus.integrations.payloads import parse_timestamp
from tovplus.partner_sim import webhook_receiver
from tovplus.partner_sim.answers import error, json_object
from tovplus.partner_sim.guest_lists import GuestLists, guest_list_routes
from tovplus.partner_sim.messaging import messaging_mount
from tovplus.partner_sim.messaging_state import MessagingState
from tovplus.partner_sim.state import MODES, Account, SimState


def generated_key(account_id: str) -> str:
    """The API key of an account made by ``POST /_control/accounts`` with ``prefix``/``count``:
    random-looking like a real one (32 hex characters), and the same for the same account."""
    return hashlib.sha256(f"partner-sim:{account_id}".encode()).hexdigest()[:32]


class _Routes:
    """The simulator's request handlers, over one :class:`SimState`."""

    def __init__(self, sim: SimState, guest_lists: GuestLists) -> None:
        self.sim = sim
        self.guest_lists = guest_lists

    async def partner(self, request: Request) -> Response:
        account_id = str(request.path_params["account_id"])
        kind = "orders" if request.url.path.endswith("/orders") else "account"
        fault = self.sim.take_fault(account_id)
        self.sim.enter(account_id, kind)
        status = 500
        try:
            response = await self._answer(request, account_id, kind, fault.mode, fault.delay_seconds)
            status = response.status_code
            return response
        finally:
            self.sim.leave(account_id, status)

    async def _answer(
        self, request: Request, account_id: str, kind: str, mode: str, delay: float
    ) -> Response:
        if mode == "slow":
            await asyncio.sleep(delay)
        account = self.sim.accounts.get(account_id)
        if account is None or mode == "not_found":
            return error(404, "unknown account")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), account.api_key):
            return error(401, "invalid api key")
        if mode == "unauthorized":
            return error(401, "invalid api key")
        if mode == "forbidden":
            return error(403, "forbidden")
        if mode == "error500":
            return error(500, "internal error")
        if mode == "rate_limited":
            response = error(429, "too many requests")
            response.headers["retry-after"] = str(max(0, round(delay)))
            return response
        if kind == "account":
            return JSONResponse(
                {
                    "account_id": "another-account" if mode == "mismatch" else account.account_id,
                    "status": "suspended" if mode == "suspended" else account.status,
                }
            )
        raw = request.query_params.get("updated_since")
        since = None
        if raw:
            since = parse_timestamp(raw)
            if since is None:
                return error(400, "updated_since must be an RFC 3339 timestamp")
        page_token = request.query_params.get("page_token") or None
        self.sim.note_page(account_id, page_token)
        page = self.sim.page(account, since, page_token)
        if page is None:
            return error(400, "unknown page_token")
        orders, next_token = page
        return JSONResponse({"orders": orders, "next_page_token": next_token})

    async def delete_orders(self, request: Request) -> Response:
        account_id = str(request.path_params["account_id"])
        body = await json_object(request)
        order_ids = body.get("order_ids") if body is not None else None
        if not isinstance(order_ids, list) or not all(isinstance(o, str) for o in order_ids):
            return error(422, 'send {"order_ids": [str]}')
        if account_id not in self.sim.accounts:
            return error(404, "unknown account")
        return JSONResponse({"deleted": self.sim.delete_orders(account_id, order_ids)})

    async def control(self, request: Request) -> Response:
        body = await json_object(request)
        if body is None:
            return error(400, "send a JSON object")
        mode = body.get("mode")
        if mode not in MODES:
            return error(422, f"mode must be one of {', '.join(MODES)}")
        times, delay, account_id = body.get("times"), body.get("delay_seconds"), body.get("account_id")
        if times is not None and (not isinstance(times, int) or times < 0):
            return error(422, "times must be a non-negative integer")
        if delay is not None and (not isinstance(delay, int | float) or delay < 0):
            return error(422, "delay_seconds must be a non-negative number")
        if account_id is not None and not isinstance(account_id, str):
            return error(422, "account_id must be a string")
        self.sim.set_fault(
            mode, account_id=account_id, times=times, delay_seconds=float(delay) if delay else None
        )
        return JSONResponse({"mode": mode, "account_id": account_id, "times": times})

    async def accounts(self, request: Request) -> Response:
        body = await json_object(request)
        if body is None:
            return error(400, "send a JSON object")
        made: list[Account] = []
        if isinstance(body.get("accounts"), list):
            for item in body["accounts"]:
                if not isinstance(item, dict) or not isinstance(item.get("account_id"), str):
                    return error(422, "each account needs an account_id")
                orders, page_size = item.get("orders", 3), item.get("page_size", 50)
                if not isinstance(orders, int) or not 0 <= orders <= 200:
                    return error(422, "orders must be an integer from 0 to 200")
                if not isinstance(page_size, int) or not 1 <= page_size <= 200:
                    return error(422, "page_size must be an integer from 1 to 200")
                made.append(
                    Account(
                        item["account_id"],
                        str(item.get("api_key") or generated_key(item["account_id"])),
                        status=str(item.get("status", "active")),
                        initial_orders=orders,
                        page_size=page_size,
                    )
                )
        elif isinstance(body.get("prefix"), str) and isinstance(body.get("count"), int):
            orders = body.get("orders", 3)
            if not isinstance(orders, int) or not 0 <= orders <= 200:
                return error(422, "orders must be an integer from 0 to 200")
            for i in range(min(body["count"], 200_000)):
                account_id = f"{body['prefix']}-{i:06d}"
                made.append(Account(account_id, generated_key(account_id), initial_orders=orders))
        else:
            return error(422, 'send {"accounts": [...]} or {"prefix": str, "count": int}')
        for account in made:
            self.sim.add_account(account)
        return JSONResponse({"created": len(made)})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.sim.snapshot())

    async def reset(self, request: Request) -> Response:
        self.sim.reset()
        self.guest_lists.reset()
        return JSONResponse({"reset": True})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})


def create_app(state: SimState | None = None, messaging: MessagingState | None = None) -> Starlette:
    """The simulator as an ASGI app; ``app.state.sim`` is its :class:`SimState`, ``app.state.guest_lists``
    what it received from ``export_guests``, ``app.state.messaging`` the messaging partner."""
    sim = state if state is not None else SimState()
    messaging = messaging if messaging is not None else MessagingState()
    guest_lists = GuestLists()
    h = _Routes(sim, guest_lists)
    app = Starlette(
        routes=[
            Route("/accounts/{account_id}", h.partner, methods=["GET"]),
            Route("/accounts/{account_id}/orders", h.partner, methods=["GET"]),
            Route("/_control", h.control, methods=["POST"]),
            Route("/_control/accounts", h.accounts, methods=["POST"]),
            Route("/_control/accounts/{account_id}/delete", h.delete_orders, methods=["POST"]),
            Route("/_control/stats", h.stats, methods=["GET"]),
            Route("/_control/reset", h.reset, methods=["POST"]),
            Route("/healthz", h.healthz, methods=["GET"]),
            *guest_list_routes(sim, guest_lists),
            *webhook_receiver.ROUTES,
            messaging_mount(messaging),
        ]
    )
    app.state.sim = sim
    app.state.messaging = messaging
    app.state.guest_lists = guest_lists
    return app
