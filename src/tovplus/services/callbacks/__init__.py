"""Inbound partner callbacks: authenticate, deduplicate, map, store — in one transaction.

``POST /v1/integrations/callbacks/{integration_key}/{connection_id}`` hands an
:class:`InboundCallback` to :meth:`CallbackService.receive`. Checks run in the
contract's order:

1. unknown connection, a connection of another adapter, or an adapter without
   inbound callbacks → 404 (:class:`NotFound`);
2. a missing or wrong secret, a revoked or rotated-away key → 401
   (:class:`Unauthenticated`), with a ``callback.rejected`` activity entry that is
   itself rate-limited per connection;
3. the connection's callback rate → 429 (:class:`RateLimited`, ``Retry-After``);
4. a connection that is not enabled → 409;
5. the same delivery id as an earlier accepted callback → ``duplicate`` with the
   first activity id and no second effect;
6. a payload the adapter rejects → 422 (:class:`CallbackRejected`, field errors).

An accepted callback writes the delivery id, the adapter's records (through
:func:`tovplus.services.records.upsert_records`) and a ``callback.received``
activity entry in one transaction, and touches the key's last-used time
(coalesced). All of that happens on the group-commit writer
(:mod:`tovplus.runtime.group_commit`): the requests that arrive while one batch
commits share the next transaction, and a request is answered only after its
batch has committed.

Authentication: the issued key in ``x-tov-integration-secret``, compared in
constant time with the stored SHA-256 of its secret part. An adapter that
declares ``callback_auth = CallbackAuth.STANDARD_WEBHOOKS`` may instead sign the
callback the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, five
minutes' tolerance). The HMAC key is the SHA-256 digest of the issued key's
secret part (:func:`signing_secret` gives it in the ``whsec_…`` form that
Standard Webhooks libraries take), so the server can verify without ever
storing the issued key itself.

Idempotency holds across processes: the delivery row is inserted first with
``ON CONFLICT DO NOTHING``; a concurrent copy in another transaction waits on
the row and then finds it taken, so it reports ``duplicate`` and writes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

import psycopg
from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from tovplus.db.ids import new_ids
from tovplus.db.models import (
    Event,
)
from tovplus.db.raw import db_json, db_time, dbapi_cursor, from_db_time, placeholders
from tovplus.db.sql import in_list_sql
from tovplus.db.types import utcnow
from tovplus.errors import (
    CallbackRejected,
    Conflict,
    FieldIssue,
    MalformedRequest,
    NotFound,
    RateLimited,
    TovPlusError,
    Unauthenticated,
)
from tovplus.integrations.contract import Adapter, CallbackAuth, CallbackContext, CallbackResult, RecordUpsert
from tovplus.integrations.redaction import redact_details
from tovplus.runtime import Runtime
from tovplus.runtime.group_commit import GroupCommitWriter
from tovplus.runtime.ratelimit import RateLimiter
from tovplus.services.auth import needs_touch, parse_integration_key, sha256_hex, touch_integration_key
from tovplus.services.auth.principals import subject_for
from tovplus.services.records import collapse, record_problems, upsert_rows

log = logging.getLogger(__name__)

SECRET_HEADER = "x-tov-integration-secret"  # noqa: S105 - a header name
DELIVERY_HEADER = "x-tov-delivery-id"
MAX_DELIVERY_ID = 200
MAX_ID_LENGTH = 40
#: What our ids look like (``new_id``); anything else cannot name a connection.
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
#: Standard Webhooks: how far ``webhook-timestamp`` may be from our clock, either way.
SIGNATURE_TOLERANCE_SECONDS = 300
#: ``callback.rejected`` entries per connection: a burst of this many, then this many a minute.
REJECTED_ACTIVITY_BURST = 3
REJECTED_ACTIVITY_PER_MINUTE = 2
_MAX_SIGNATURES = 8

_REJECTION_SUMMARIES = {
    "missing_secret": "no secret or signature was sent",
    "wrong_secret": "the secret is wrong, revoked or rotated away",
    "bad_signature": "the signature does not match",
    "stale_signature": "the signature's timestamp is outside the five-minute tolerance",
    "malformed_signature": "the signature headers are malformed",
}


# --- inputs and outcomes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboundCallback:
    """One callback request as the route read it."""

    integration_key: str
    connection_id: str
    body: bytes
    payload: Any
    secret: str | None = field(default=None, repr=False)
    delivery_id: str | None = None
    webhook_id: str | None = None
    webhook_timestamp: str | None = None
    webhook_signature: str | None = field(default=None, repr=False)
    #: Unix time the request arrived (signature tolerance is judged against it).
    received_at: float = field(default_factory=time.time)

    @property
    def effective_delivery_id(self) -> str | None:
        """``x-tov-delivery-id``, else the Standard Webhooks ``webhook-id``."""
        return self.delivery_id if self.delivery_id is not None else self.webhook_id


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    status: Literal["accepted", "duplicate"]
    activity_id: str

    @property
    def http_status(self) -> int:
        return 202 if self.status == "accepted" else 200

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "activity_id": self.activity_id}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_body(body: bytes) -> Any:
    """The JSON body, or :class:`MalformedRequest` (400). NaN and Infinity are not JSON."""
    try:
        text = body.decode(json.detect_encoding(body))  # strict: no lone surrogates from raw bytes
        if not text.strip():
            raise MalformedRequest("The request body is empty; send a JSON object.", code="malformed_json")
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise MalformedRequest("The request body is not valid JSON.", code="malformed_json") from None


# --- Standard Webhooks -------------------------------------------------------------------------------


def signing_key(issued_key: str) -> bytes:
    """The HMAC key of Standard Webhooks callbacks for ``issued_key``: SHA-256 of its secret part."""
    parsed = parse_integration_key(issued_key)
    if parsed is None:
        raise ValueError("not an issued integration key")
    return hashlib.sha256(parsed[1].encode()).digest()


def signing_secret(issued_key: str) -> str:
    """The same key in the ``whsec_<base64>`` form Standard Webhooks libraries take."""
    return "whsec_" + base64.b64encode(signing_key(issued_key)).decode()


def sign(key: bytes, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one message."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# --- what one batch loads -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    key_id: str
    secret_hash: str
    last_used_at: datetime | None


@dataclass(slots=True)
class _Target:
    connection_id: str
    integration_key: str
    state: str
    occasion_id: str
    config: Mapping[str, Any]
    keys: list[_Key] = field(default_factory=list)


class _Rejected(Exception):
    """Internal: authentication failed for ``reason`` (one of ``_REJECTION_SUMMARIES``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Tx:
    """One batch's transaction: the session, a DBAPI cursor on its connection, the dialect name."""

    session: Session
    cursor: Any
    dialect: str


@dataclass(slots=True)
class _Accepted:
    index: int
    job: InboundCallback
    target: _Target
    result: CallbackResult
    delivery_id: str | None
    activity_id: str = ""


_EVENTS = cast(Table, Event.__table__)
_LOAD_SQL = (
    "SELECT c.id, c.integration_key, c.state, c.occasion_id, c.config,"
    " k.key_id, k.secret_hash, k.last_used_at"
    " FROM connections c"
    " LEFT JOIN integration_principals p ON p.connection_id = c.id AND p.revoked_at IS NULL"
    " LEFT JOIN integration_keys k ON k.principal_id = p.id AND k.revoked_at IS NULL"
    " WHERE c.id "
)
_EVENT = select(_EVENTS.c.id).where(
    _EVENTS.c.id == bindparam("event_id"), _EVENTS.c.occasion_id == bindparam("occasion_id")
)


def _unstorable(value: Any, depth: int = 0) -> bool:
    """True when a string in ``value`` holds NUL or an unpaired surrogate (no database takes them)."""
    if depth > 64:
        return False
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, Mapping):
        return any(_unstorable(k, depth + 1) or _unstorable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_unstorable(v, depth + 1) for v in value)
    return False


# --- the service ---------------------------------------------------------------------------------------


class WalCheckpointer:
    """Checkpoints SQLite's write-ahead log from a thread of its own.

    SQLite checkpoints automatically inside the commit that pushes the WAL past 1,000
    pages, so one unlucky batch would also pay for copying pages into the database file
    and fsyncing it (tens of milliseconds): the hot path's p99. This thread runs a
    ``PASSIVE`` checkpoint (it never blocks or waits for writers) every ``interval``
    seconds while the writer is committing, which keeps the WAL short enough that the
    automatic one rarely fires.
    """

    def __init__(self, rt: Runtime, progress: Callable[[], int], interval: float = 0.25) -> None:
        self._rt = rt
        self._progress = progress
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tovplus-wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        seen = self._progress()
        while not self._stopping.wait(self._interval):
            now = self._progress()
            if now == seen:
                continue
            seen = now
            try:
                connection = self._rt.db.engine.raw_connection()
                try:
                    connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                finally:
                    connection.close()
            except Exception as exc:  # a busy or broken database: the automatic checkpoint still works
                log.warning("background WAL checkpoint failed: %s", exc)


class CallbackService:
    """Receives callbacks for one runtime: owns the rate limiters and the group-commit writer."""

    def __init__(self, rt: Runtime, *, max_batch: int = 256) -> None:
        self.rt = rt
        self.limiter = RateLimiter(rt.settings.callback_rate_per_minute)
        self.rejection_log = RateLimiter(REJECTED_ACTIVITY_PER_MINUTE, burst=REJECTED_ACTIVITY_BURST)
        self._suppressed: dict[str, int] = {}
        self.writer: GroupCommitWriter[InboundCallback, CallbackOutcome] = GroupCommitWriter(
            self.commit_batch, name="tovplus-callbacks", max_batch=max_batch, split_on=_job_specific
        )
        self.checkpointer = (
            WalCheckpointer(rt, lambda: self.writer.stats.batches) if rt.db.is_sqlite else None
        )

    # --- entry points ----------------------------------------------------------------------

    async def receive(self, callback: InboundCallback) -> CallbackOutcome:
        """Check, store and answer one callback (raises the contract's errors)."""
        self._adapter_for(callback)
        if self.checkpointer is not None and not self.checkpointer.started:
            self.checkpointer.start()
        return await self.writer.submit(callback)

    def receive_wait(self, callback: InboundCallback) -> CallbackOutcome:
        """:meth:`receive` for callers without an event loop."""
        self._adapter_for(callback)
        return self.writer.submit_wait(callback)

    def close(self) -> None:
        """Commit what is queued and stop the writer (and the checkpointer)."""
        self.writer.stop()
        if self.checkpointer is not None:
            self.checkpointer.stop()

    # --- one batch, one transaction -------------------------------------------------------------

    def commit_batch(self, jobs: Sequence[InboundCallback]) -> list[CallbackOutcome | TovPlusError]:
        """Process ``jobs`` in one write transaction; one outcome or error per job, in order."""
        with self.rt.db.write() as session:
            return self._process(session, jobs)

    def _process(
        self, session: Session, jobs: Sequence[InboundCallback]
    ) -> list[CallbackOutcome | TovPlusError]:
        """The whole batch in the session's transaction (the caller commits)."""
        cursor, dialect = dbapi_cursor(session)
        try:
            return self._process_in(_Tx(session, cursor, dialect), jobs)
        finally:
            cursor.close()

    def _process_in(self, tx: _Tx, jobs: Sequence[InboundCallback]) -> list[CallbackOutcome | TovPlusError]:
        session = tx.session
        results: list[CallbackOutcome | TovPlusError | None] = [None] * len(jobs)
        adapters: list[Adapter | None] = []
        for i, job in enumerate(jobs):
            try:
                adapters.append(self._adapter_for(job))
            except NotFound as exc:
                adapters.append(None)
                results[i] = exc
        ids = sorted({j.connection_id for j, a in zip(jobs, adapters, strict=True) if a is not None})
        targets = self._load(tx, ids) if ids else {}
        now = utcnow()
        accepted: list[_Accepted] = []
        refused_with_id: list[tuple[int, InboundCallback, CallbackRejected]] = []
        rejections: list[tuple[_Target, str]] = []
        touch: set[str] = set()
        for i, (job, adapter) in enumerate(zip(jobs, adapters, strict=True)):
            if adapter is None:
                continue
            target = targets.get(job.connection_id)
            if target is None or target.integration_key != job.integration_key:
                results[i] = NotFound("No such callback endpoint.")
                continue
            try:
                key = self._authenticate(job, target, adapter)
            except _Rejected as exc:
                results[i] = Unauthenticated(
                    "The callback's secret or signature is missing or not valid (it may have been revoked "
                    "or rotated)."
                )
                rejections.append((target, exc.reason))
                continue
            if needs_touch(key.last_used_at, now):
                touch.add(key.key_id)
            wait = self.limiter.acquire(target.connection_id)
            if wait > 0:
                results[i] = RateLimited(
                    "Too many callbacks for this connection; retry later.",
                    retry_after=max(1, math.ceil(wait)),
                )
                continue
            if target.state != "enabled":
                results[i] = Conflict(
                    f"The connection is {target.state}, not enabled; it does not accept callbacks.",
                    code="connection_not_enabled",
                )
                continue
            try:
                delivery_id = self._delivery_id(job)
                mapped = self._map(session, job, target, adapter)
            except CallbackRejected as exc:
                results[i] = exc
                if job.effective_delivery_id and len(job.effective_delivery_id) <= MAX_DELIVERY_ID:
                    refused_with_id.append((i, job, exc))
                continue
            accepted.append(_Accepted(i, job, target, mapped, delivery_id))

        for key_id in sorted(touch):
            touch_integration_key(session, key_id, now)
        if accepted or refused_with_id:
            self._store(tx, accepted, refused_with_id, results, now)
        if rejections:
            self._record_rejections(tx, rejections, now)
        return [r if r is not None else NotFound("No such callback endpoint.") for r in results]

    # --- steps ---------------------------------------------------------------------------------------

    def _adapter_for(self, job: InboundCallback) -> Adapter:
        adapter = self.rt.registry.find(job.integration_key)
        if (
            adapter is None
            or not adapter.supports_inbound_callbacks
            or _ID.fullmatch(job.connection_id) is None
        ):
            raise NotFound("No such callback endpoint.")
        return adapter

    @staticmethod
    def _load(tx: _Tx, ids: list[str]) -> dict[str, _Target]:
        """The connections and their live keys, in one query."""
        in_list, param = in_list_sql(tx.dialect, ids)
        tx.cursor.execute(_LOAD_SQL + in_list, [param])
        rows = tx.cursor.fetchall()
        targets: dict[str, _Target] = {}
        for conn_id, integration_key, state, occasion_id, config, key_id, secret_hash, last_used in rows:
            target = targets.get(conn_id)
            if target is None:
                if isinstance(config, str | bytes):
                    config = json.loads(config)
                target = targets[conn_id] = _Target(
                    conn_id, integration_key, state, occasion_id, config if isinstance(config, dict) else {}
                )
            if key_id is not None:
                target.keys.append(_Key(key_id, secret_hash, from_db_time(last_used)))
        return targets

    @staticmethod
    def _authenticate(job: InboundCallback, target: _Target, adapter: Adapter) -> _Key:
        if job.secret is not None:
            parsed = parse_integration_key(job.secret)
            presented = sha256_hex(parsed[1] if parsed else job.secret)
            found: _Key | None = None
            for key in target.keys:  # compare against every live key: same work whatever matches
                if (
                    hmac.compare_digest(presented, key.secret_hash)
                    and parsed is not None
                    and parsed[0] == key.key_id
                ):
                    found = key
            if found is None:
                raise _Rejected("wrong_secret")
            return found
        if adapter.callback_auth is CallbackAuth.STANDARD_WEBHOOKS and (
            job.webhook_signature is not None
            or job.webhook_id is not None
            or job.webhook_timestamp is not None
        ):
            return _verify_signature(job, target)
        raise _Rejected("missing_secret")

    @staticmethod
    def _delivery_id(job: InboundCallback) -> str | None:
        delivery_id = job.effective_delivery_id
        if delivery_id is not None and not (
            0 < len(delivery_id) <= MAX_DELIVERY_ID and delivery_id.isprintable()
        ):
            header = DELIVERY_HEADER if job.delivery_id is not None else "webhook-id"
            raise CallbackRejected(
                "The delivery id is not valid.",
                fields=[
                    FieldIssue(
                        f"headers.{header}",
                        "invalid",
                        f"Must be 1 to {MAX_DELIVERY_ID} printable characters.",
                    )
                ],
            )
        return delivery_id

    def _map(
        self, session: Session, job: InboundCallback, target: _Target, adapter: Adapter
    ) -> CallbackResult:
        if b"\\u" in job.body and _unstorable(job.payload):
            raise CallbackRejected(
                "The payload holds characters that cannot be stored.",
                fields=[
                    FieldIssue(
                        "payload", "invalid_characters", "NUL and unpaired surrogates are not accepted."
                    )
                ],
            )
        occasion_id = target.occasion_id

        def event_belongs_to_occasion(event_id: str) -> bool:
            if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_ID_LENGTH:
                return False
            params = {"event_id": event_id, "occasion_id": occasion_id}
            return session.execute(_EVENT, params).first() is not None

        ctx = CallbackContext(target.connection_id, occasion_id, target.config, event_belongs_to_occasion)
        try:
            result = adapter.map_callback(job.payload, ctx)
        except CallbackRejected:
            raise
        except TovPlusError as exc:  # another typed adapter error: still the payload's fault
            raise CallbackRejected(exc.message, fields=exc.fields) from None
        except Exception:
            log.exception("adapter %s crashed mapping a callback", adapter.integration_key)
            raise CallbackRejected(
                "The integration could not read this payload.",
                fields=[FieldIssue("payload", "unreadable", "The integration could not map this payload.")],
            ) from None
        if not isinstance(result, CallbackResult) or not all(
            isinstance(r, RecordUpsert) for r in result.records
        ):
            log.error("adapter %s returned %r from map_callback", adapter.integration_key, type(result))
            raise CallbackRejected(
                "The integration could not read this payload.",
                fields=[FieldIssue("payload", "unreadable", "The integration could not map this payload.")],
            )
        problems = record_problems(result.records)
        if problems:
            raise CallbackRejected("The payload maps to records that cannot be stored.", fields=problems)
        return result

    def _store(
        self,
        tx: _Tx,
        accepted: list[_Accepted],
        refused_with_id: list[tuple[int, InboundCallback, CallbackRejected]],
        results: list[CallbackOutcome | TovPlusError | None],
        now: datetime,
    ) -> None:
        """Claim delivery ids, then write records and activity for the callbacks that won."""
        cursor, dialect = tx.cursor, tx.dialect
        first_of: dict[tuple[str, str], _Accepted] = {}
        repeats: list[tuple[_Accepted, _Accepted]] = []
        claims: list[_Accepted] = []
        winners: list[_Accepted] = []
        for item, activity_id in zip(accepted, new_ids("act", len(accepted)), strict=True):
            item.activity_id = activity_id
            if item.delivery_id is None:
                winners.append(item)
                continue
            key = (item.target.connection_id, item.delivery_id)
            held = first_of.get(key)
            if held is None:
                first_of[key] = item
                claims.append(item)
            else:
                repeats.append((item, held))  # the same delivery twice in one batch
        stamp = db_time(dialect, now)
        # Which delivery ids are taken already (by earlier batches or other processes)?
        lookup = [(a.target.connection_id, a.delivery_id or "") for a in claims]
        lookup += [(job.connection_id, job.effective_delivery_id or "") for _, job, _ in refused_with_id]
        existing = _existing_deliveries(cursor, dialect, lookup) if lookup else {}
        fresh = [a for a in claims if (a.target.connection_id, a.delivery_id) not in existing]
        lost = [a for a in claims if (a.target.connection_id, a.delivery_id) in existing]
        if fresh:
            fresh.sort(key=lambda a: (a.target.connection_id, a.delivery_id or ""))  # stable lock order
            # one statement per batch, like the activity insert below (see _insert_activity)
            params: list[Any] = []
            for a in fresh:
                params += (a.target.connection_id, a.delivery_id, a.activity_id, stamp)
            sql = (
                "INSERT INTO callback_deliveries (connection_id, delivery_id, activity_id, received_at)"  # noqa: S608
                " VALUES " + placeholders(dialect, 4, len(fresh))
            )  # only placeholders are interpolated
            if dialect == "sqlite":
                # BEGIN IMMEDIATE holds the one write lock: nobody can have inserted them since
                cursor.execute(sql, params)
                winners += fresh
            else:
                # another process may be inserting the same id right now: the row decides
                cursor.execute(
                    sql + " ON CONFLICT (connection_id, delivery_id) DO NOTHING"
                    " RETURNING connection_id, delivery_id",
                    params,
                )
                claimed = {(r[0], r[1]) for r in cursor.fetchall()}
                raced = [a for a in fresh if (a.target.connection_id, a.delivery_id) not in claimed]
                winners += [a for a in fresh if (a.target.connection_id, a.delivery_id) in claimed]
                if raced:
                    keys = [(a.target.connection_id, a.delivery_id or "") for a in raced]
                    existing.update(_existing_deliveries(cursor, dialect, keys))
                    lost += raced
        for a in lost:
            first = existing.get((a.target.connection_id, a.delivery_id or ""))
            results[a.index] = (
                CallbackOutcome("duplicate", first)
                if first is not None
                else Conflict("The delivery is being processed; retry it.", code="delivery_in_progress")
            )
        for index, job, _exc in refused_with_id:
            first = existing.get((job.connection_id, job.effective_delivery_id or ""))
            if first is not None:  # a repeat of an accepted delivery stays a duplicate
                results[index] = CallbackOutcome("duplicate", first)

        by_connection: dict[str, list[RecordUpsert]] = {}
        activity_rows: list[tuple[Any, ...]] = []
        for a in winners:
            target = a.target
            by_connection.setdefault(target.connection_id, []).extend(a.result.records)
            details = dict(a.result.details)
            if a.delivery_id is not None:
                details["delivery_id"] = a.delivery_id
            redacted = redact_details(
                {"summary": a.result.summary or "Callback received", "details": details}
            )
            activity_rows.append(
                (
                    a.activity_id,
                    stamp,
                    target.occasion_id,
                    target.connection_id,
                    target.integration_key,
                    "callback.received",
                    subject_for(target.connection_id),
                    str(redacted["summary"])[:500],
                    db_json(redacted["details"]),
                )
            )
            results[a.index] = CallbackOutcome("accepted", a.activity_id)
        if by_connection:
            rows = [(c, collapse(by_connection[c])) for c in sorted(by_connection)]
            upsert_rows(cursor, dialect, rows, count=False)
        if activity_rows:
            _insert_activity(cursor, dialect, activity_rows)
        for item, held in repeats:
            outcome = results[held.index]
            results[item.index] = (
                CallbackOutcome("duplicate", outcome.activity_id)
                if isinstance(outcome, CallbackOutcome)
                else outcome
            )

    def _record_rejections(self, tx: _Tx, rejections: list[tuple[_Target, str]], now: datetime) -> None:
        entries: list[tuple[_Target, str, int]] = []
        for target, reason in rejections:
            conn_id = target.connection_id
            if self.rejection_log.acquire(conn_id) > 0:
                self._suppressed[conn_id] = self._suppressed.get(conn_id, 0) + 1
                continue
            entries.append((target, reason, self._suppressed.pop(conn_id, 0)))
        if not entries:
            return
        dialect = tx.dialect
        rows = []
        for (target, reason, suppressed), activity_id in zip(
            entries, new_ids("act", len(entries)), strict=True
        ):
            summary = f"Rejected a callback: {_REJECTION_SUMMARIES.get(reason, reason)}"
            if suppressed:
                summary += f" ({suppressed} more rejected since the last entry)"
            rows.append(
                (
                    activity_id,
                    db_time(dialect, now),
                    target.occasion_id,
                    target.connection_id,
                    target.integration_key,
                    "callback.rejected",
                    "system",
                    summary[:500],
                    db_json({"reason": reason, "suppressed_since_last_entry": suppressed}),
                )
            )
        _insert_activity(tx.cursor, dialect, rows)


def _job_specific(exc: Exception) -> bool:
    """Could this failure be one callback's fault? Not when the database is locked, gone or
    out of space: retrying each callback alone would only wait that long again, once per job."""
    return not isinstance(
        exc, OperationalError | InterfaceError | sqlite3.OperationalError | psycopg.OperationalError
    )


def _insert_activity(cursor: Any, dialect: str, rows: list[tuple[Any, ...]]) -> None:
    """One multi-row INSERT (one statement step for the whole batch).

    Not cut into :func:`~tovplus.db.sql.binary_chunks` as other inserts are: on this hot path the
    extra statements cost about a fifth of the callback throughput (``make bench``). The texts stay
    bounded by the writer's ``max_batch``, and in practice by the number of concurrent callbacks.
    """
    sql = (
        "INSERT INTO activity"  # noqa: S608
        " (id, occurred_at, occasion_id, connection_id, integration_key, kind, actor, summary, details)"
        " VALUES " + placeholders(dialect, 9, len(rows), ((8, "JSONB"),))  # only placeholders
    )
    cursor.execute(sql, [value for row in rows for value in row])


def _existing_deliveries(
    cursor: Any, dialect: str, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """``{(connection_id, delivery_id): activity_id}`` for the keys already stored.

    One ``connection_id = ? AND delivery_id IN (<one list>)`` query per connection: that form
    walks the primary key, where a row-value ``(a, b) IN (…)`` makes SQLite scan the whole table.
    """
    by_connection: dict[str, set[str]] = {}
    for connection_id, delivery_id in keys:
        by_connection.setdefault(connection_id, set()).add(delivery_id)
    found: dict[tuple[str, str], str] = {}
    for connection_id in sorted(by_connection):
        in_list, param = in_list_sql(dialect, sorted(by_connection[connection_id]))
        cursor.execute(existing_deliveries_sql(dialect, in_list), [connection_id, param])
        for delivery_id, activity_id in cursor.fetchall():
            found[(connection_id, delivery_id)] = activity_id
    return found


def existing_deliveries_sql(dialect: str, in_list: str) -> str:
    """The lookup, with ``in_list`` from :func:`~tovplus.db.sql.in_list_sql` (no values in the text)."""
    return (
        "SELECT delivery_id, activity_id FROM callback_deliveries"  # noqa: S608
        " WHERE connection_id = " + placeholders(dialect, 1, 1) + " AND delivery_id " + in_list
    )


def _verify_signature(job: InboundCallback, target: _Target) -> _Key:
    """Standard Webhooks: timestamp within tolerance and a ``v1`` signature by a live key."""
    webhook_id, stamp, header = job.webhook_id, job.webhook_timestamp, job.webhook_signature
    if not webhook_id or not stamp or not header or len(stamp) > 12 or not stamp.isdigit():
        raise _Rejected("malformed_signature")
    if abs(job.received_at - int(stamp)) > SIGNATURE_TOLERANCE_SECONDS:
        raise _Rejected("stale_signature")
    presented: list[bytes] = []
    for part in header.split()[:_MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version == "v1" and value:
            presented.append(value.encode("ascii", "replace"))
    if not presented:
        raise _Rejected("malformed_signature")
    signed = f"{webhook_id}.{stamp}.".encode() + job.body
    found: _Key | None = None
    for key in target.keys:
        try:
            mac_key = bytes.fromhex(key.secret_hash)
        except ValueError:
            continue
        expected = base64.b64encode(hmac.new(mac_key, signed, hashlib.sha256).digest())
        for candidate in presented:
            if hmac.compare_digest(candidate, expected):
                found = key
    if found is None:
        raise _Rejected("bad_signature")
    return found
