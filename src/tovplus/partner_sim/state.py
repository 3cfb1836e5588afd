"""The simulated printer's data: accounts, orders that move over time, and fault switches.

Everything lives in memory behind one lock; the HTTP layer (``app.py``) only reads and
flips it. Time is injectable (``clock``) so tests can move orders along without waiting.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: An order's life at the printer, one step every ``step_seconds``.
ORDER_STATUSES = ("received", "proof_ready", "approved", "printing", "shipped", "delivered")
#: What ``POST /_control`` may switch to.
MODES = (
    "ok",
    "unauthorized",
    "forbidden",
    "error500",
    "slow",
    "suspended",
    "mismatch",
    "not_found",
    "rate_limited",  # 429 with ``Retry-After: <delay_seconds>``
)

DEMO_ACCOUNT_ID = "demo-account"
DEMO_API_KEY = "demo-printer-api-key-0001"  # the simulator's published demo key


@dataclass
class Account:
    account_id: str
    api_key: str
    status: str = "active"
    #: Orders present when the account was created.
    initial_orders: int = 3
    #: A new order appears every this many seconds (0: never).
    new_order_every: float = 0.0
    created: float = 0.0
    max_orders: int = 200
    #: Orders per page of ``GET …/orders`` (more follow by ``next_page_token``).
    page_size: int = 50
    #: Deleted orders: index → when. Listed as ``"deleted": true`` to ``updated_since`` requests.
    deleted: dict[int, float] = field(default_factory=dict)


@dataclass
class Fault:
    mode: str = "ok"
    #: Requests this fault still applies to; ``None`` until switched off.
    remaining: int | None = None
    delay_seconds: float = 3.0


@dataclass
class Stats:
    requests: int = 0
    by_account: dict[str, int] = field(default_factory=dict)
    account_reads: dict[str, int] = field(default_factory=dict)
    order_reads: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    #: The most requests ever in flight at once for one account.
    max_in_flight_per_account: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    #: Requests received in each wall-clock second (``int(time.time())``), for politeness tests.
    per_second: dict[int, int] = field(default_factory=dict)
    #: The most requests ever in flight at once, over every account.
    max_in_flight: int = 0
    #: The ``page_token`` of every order read, per account, in order (``None``: the first page).
    page_tokens: dict[str, list[str | None]] = field(default_factory=dict)


class SimState:
    """Accounts, faults and counters of one simulator."""

    def __init__(
        self,
        *,
        step_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        demo: bool = True,
    ) -> None:
        self.step_seconds = step_seconds
        self.clock = clock
        self.lock = threading.Lock()
        self.accounts: dict[str, Account] = {}
        self.global_fault = Fault()
        self.account_faults: dict[str, Fault] = {}
        self.stats = Stats()
        if demo:
            self.add_account(
                Account(
                    DEMO_ACCOUNT_ID,
                    DEMO_API_KEY,
                    initial_orders=4,
                    new_order_every=step_seconds * 3,
                    created=clock(),
                )
            )

    # --- accounts and orders -------------------------------------------------------------

    def add_account(self, account: Account) -> None:
        with self.lock:
            if not account.created:
                account.created = self.clock()
            self.accounts[account.account_id] = account

    def page(
        self, account: Account, updated_since: datetime | None, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None] | None:
        """One page of :meth:`orders` from ``page_token`` and the token of the next (``None``: last).

        Tokens are positions in the account's order list, so a page's content does not shift when
        orders move on meanwhile. ``None`` for a token this simulator never issued.
        """
        start = 0
        if page_token:
            if not page_token.startswith("pt-") or not page_token[3:].isdigit():
                return None
            start = int(page_token[3:])
        orders = [o for o in self.orders(account, updated_since) if int(o["order_id"][-4:]) > start]
        size = max(1, account.page_size)
        chunk = orders[:size]
        more = len(orders) > size
        return chunk, (f"pt-{int(chunk[-1]['order_id'][-4:])}" if more else None)

    def delete_orders(self, account_id: str, order_ids: list[str]) -> int:
        """Delete orders of an account now; returns how many existed and were not deleted yet."""
        with self.lock:
            account = self.accounts[account_id]
            prefix = f"{account_id}-ord-"
            count = 0
            for order_id in order_ids:
                if order_id.startswith(prefix) and order_id[len(prefix) :].isdigit():
                    index = int(order_id[len(prefix) :]) - 1
                    if index not in account.deleted:
                        account.deleted[index] = self.clock()
                        count += 1
            return count

    def orders(self, account: Account, updated_since: datetime | None) -> list[dict[str, Any]]:
        """The account's orders as of now, each with its current status (optionally only recent ones).

        Deleted orders are left out, except as ``{"order_id", "deleted": true, "updated_at"}`` for
        a request ``updated_since`` before their deletion.
        """
        now = self.clock()
        count = account.initial_orders
        if account.new_order_every > 0:
            count += int(max(0.0, now - account.created) // account.new_order_every)
        count = min(count, account.max_orders)
        since = updated_since.timestamp() if updated_since else None
        out = []
        for index in range(count):
            if index < account.initial_orders:
                # initial orders are spread over the first step so they do not all move at once
                created = account.created - (index * self.step_seconds / max(1, account.initial_orders))
            else:
                created = account.created + (index - account.initial_orders + 1) * account.new_order_every
            steps = int(max(0.0, now - created) // self.step_seconds) if self.step_seconds > 0 else 0
            position = min(steps, len(ORDER_STATUSES) - 1)
            updated = created + position * self.step_seconds
            order_id = f"{account.account_id}-ord-{index + 1:04d}"
            if index in account.deleted:
                gone = account.deleted[index]
                if since is not None and gone >= since:
                    out.append({"order_id": order_id, "deleted": True, "updated_at": _stamp(gone)})
                continue
            if since is not None and updated < since:
                continue
            status = ORDER_STATUSES[position]
            tracking = None
            if status in ("shipped", "delivered"):
                tracking = "TRK" + hashlib.sha256(order_id.encode()).hexdigest()[:12].upper()
            out.append(
                {
                    "order_id": order_id,
                    "status": status,
                    "updated_at": _stamp(updated),
                    "tracking_number": tracking,
                }
            )
        return out

    # --- faults ----------------------------------------------------------------------------

    def set_fault(
        self,
        mode: str,
        *,
        account_id: str | None = None,
        times: int | None = None,
        delay_seconds: float | None = None,
    ) -> None:
        fault = Fault(mode, times, 3.0 if delay_seconds is None else delay_seconds)
        with self.lock:
            if account_id is None:
                self.global_fault = fault
                if mode == "ok":
                    self.account_faults.clear()
            elif mode == "ok" and times is None:
                self.account_faults.pop(account_id, None)
            else:
                self.account_faults[account_id] = fault

    def take_fault(self, account_id: str) -> Fault:
        """The fault that applies to this request (counting it down)."""
        with self.lock:
            fault = self.account_faults.get(account_id)
            if fault is None or fault.remaining == 0:
                fault = self.global_fault
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    return Fault()
                fault.remaining -= 1
            return Fault(fault.mode, None, fault.delay_seconds)

    def reset(self) -> None:
        with self.lock:
            self.global_fault = Fault()
            self.account_faults.clear()
            self.stats = Stats()

    # --- counters ----------------------------------------------------------------------------

    def note_page(self, account_id: str, page_token: str | None) -> None:
        with self.lock:
            self.stats.page_tokens.setdefault(account_id, []).append(page_token)

    def enter(self, account_id: str, kind: str) -> None:
        with self.lock:
            s = self.stats
            s.requests += 1
            s.by_account[account_id] = s.by_account.get(account_id, 0) + 1
            reads = s.account_reads if kind == "account" else s.order_reads
            reads[account_id] = reads.get(account_id, 0) + 1
            s.in_flight[account_id] = s.in_flight.get(account_id, 0) + 1
            s.max_in_flight_per_account = max(s.max_in_flight_per_account, s.in_flight[account_id])
            second = int(time.time())
            s.per_second[second] = s.per_second.get(second, 0) + 1
            s.max_in_flight = max(s.max_in_flight, sum(s.in_flight.values()))

    def leave(self, account_id: str, status: int) -> None:
        with self.lock:
            s = self.stats
            s.in_flight[account_id] = max(0, s.in_flight.get(account_id, 1) - 1)
            s.statuses[status] = s.statuses.get(status, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            s = self.stats
            return {
                "requests": s.requests,
                "by_account": dict(s.by_account),
                "account_reads": dict(s.account_reads),
                "order_reads": dict(s.order_reads),
                "max_in_flight_per_account": s.max_in_flight_per_account,
                "statuses": {str(k): v for k, v in s.statuses.items()},
                "per_second": {str(k): v for k, v in sorted(s.per_second.items())},
                "max_in_flight": s.max_in_flight,
                "page_tokens": {k: list(v) for k, v in s.page_tokens.items()},
                "accounts": len(self.accounts),
                "mode": self.global_fault.mode,
            }


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
