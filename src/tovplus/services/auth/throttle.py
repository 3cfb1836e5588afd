"""Sign-in throttling: per-client and per-account token buckets, so failing locks no one else out.

Three buckets (in process memory, :class:`~tovplus.runtime.ratelimit.RateLimiter`):

* **client** (the address, as the pages read it): every attempt takes a token, whatever the
  email. Over it: 429 before any password is checked. This bounds the argon2 work one
  client can cause.
* **account** (the normalised email): every *wrong* password takes a token, from whichever
  client it came. While it has tokens, attempts are checked as usual.
* **account and client**: every wrong password also takes a token here. When the account
  bucket is empty (someone has been failing its password), only a client that still has
  tokens here (one that has not itself been failing on this account) has its password
  checked: the right one signs in, a wrong one counts against both. A client that used
  them up gets 429 until either bucket refills.

So failing an account's password cannot lock its owner out: the owner's client has not
been failing. A guesser with one address gets the account's rate; one with many addresses
gets a few guesses per address per minute on an account under attack, each still costing
it a client token.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from tovplus.errors import RateLimited
from tovplus.runtime import Runtime
from tovplus.runtime.ratelimit import RateLimiter, whole_seconds

#: Sign-in attempts per minute (and in a burst) one client address may make, right or wrong.
#: Each attempt costs an argon2 hash, so this also bounds the CPU a flood of sign-ins can take.
ATTEMPTS_PER_CLIENT = (30, 30)
#: Wrong passwords per minute (and in a burst) an account takes, from all clients together,
#: before only clients that have not been failing on it are let through.
ATTEMPTS_PER_ACCOUNT = (5, 10)
#: Wrong passwords per minute (and in a burst) one client may send for an account that is
#: over its own limit, and still have its password checked.
FAILURES_PER_ACCOUNT_AND_CLIENT = (1, 3)

_MESSAGE = "Too many sign-in attempts. Try again in {wait} seconds."


def account_key(email: str) -> str:
    """The account bucket's key for an email as typed (case and blanks do not make a new one)."""
    return email.strip().lower()[:320]


@dataclass
class SignInThrottle:
    """The three buckets of one runtime (see the module docstring)."""

    client: RateLimiter
    account: RateLimiter
    pair: RateLimiter

    @classmethod
    def on(cls, clock: Callable[[], float] = time.monotonic) -> SignInThrottle:
        """New, full buckets reading time from ``clock``."""

        def limiter(rate: tuple[int, int]) -> RateLimiter:
            return RateLimiter(rate[0], burst=rate[1], clock=clock)

        pair = limiter(FAILURES_PER_ACCOUNT_AND_CLIENT)
        return cls(limiter(ATTEMPTS_PER_CLIENT), limiter(ATTEMPTS_PER_ACCOUNT), pair)

    def admit(self, email: str, client: str) -> None:
        """Take the client's token, or raise :class:`RateLimited` (see the module docstring)."""
        client = client[:100]
        wait = self.client.acquire(client)
        if not wait:
            account = account_key(email)
            busy = self.account.peek(account)
            if busy:
                own = self.pair.peek(_pair(account, client))
                wait = min(busy, own) if own else 0.0
        if wait:
            seconds = whole_seconds(wait)
            raise RateLimited(_MESSAGE.format(wait=seconds), retry_after=seconds)

    def failed(self, email: str, client: str) -> None:
        """Count a wrong password against the account and against this client on it."""
        account = account_key(email)
        self.account.acquire(account)
        self.pair.acquire(_pair(account, client[:100]))


def _pair(account: str, client: str) -> str:
    return f"{client}\n{account}"


_throttles: weakref.WeakKeyDictionary[Runtime, SignInThrottle] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def throttle_for(rt: Runtime) -> SignInThrottle:
    """The runtime's sign-in throttle (made on first use)."""
    with _lock:
        throttle = _throttles.get(rt)
        if throttle is None:
            throttle = _throttles[rt] = SignInThrottle.on()
        return throttle


def use_clock(rt: Runtime, clock: Callable[[], float]) -> SignInThrottle:
    """Give the runtime new, full sign-in buckets that read time from ``clock`` (tests hold it still)."""
    with _lock:
        throttle = _throttles[rt] = SignInThrottle.on(clock)
        return throttle
