"""Planner and admin list latency at scale, against a bare FastAPI route in the same run.

Seeds an embedded SQLite database with 100,000 connections across 10,000 occasions
(with principals, keys, three grants and a secret each), starts ``tovplus api`` and a
bare FastAPI app (``bench._bare``) under uvicorn, and drives both from a second process, in
:data:`ROUNDS` interleaved rounds (each figure the best p50 of its rounds, the bare route's too).
The admin list must stay index-driven: its p50 at 100,000 connections is compared with
the same query on a 1,000-connection database.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import insert

from bench import Figure
from bench._harness import Load, drive, free_port, server, uvicorn_stack_args
from tovplus.db.migrate import upgrade
from tovplus.db.models import (
    Connection,
    ConnectionSecret,
    Grant,
    IntegrationKey,
    IntegrationPrincipal,
    Occasion,
    OccasionPlanner,
)
from tovplus.db.session import Database
from tovplus.runtime.keyring import generate_key
from tovplus.services.auth import create_user, issue_user_token
from tovplus.services.retention import fold_counts

ACTIONS = ("occasion.read", "events.read", "guests.read")
STATES = (
    [("enabled", "healthy")] * 14
    + [("enabled", "degraded"), ("enabled", "failing")] * 1
    + [
        ("draft", "unknown"),
        ("disabled", "unknown"),
    ]
)

#: The seeded secrets name this key (their ciphertext is filler: lists never decrypt), and the
#: API process is given it, so start-up finds every key the database uses.
KEY = generate_key()
KEY_ID = KEY.split(":", 1)[0]


def _seed(url: str, occasions: int, per_occasion: int, planner_connections: int) -> tuple[str, str, str]:
    """Fill the database; returns (planner token, admin token, the planner's occasion id)."""
    db = Database(url)
    upgrade(db.engine)
    now = datetime.now(UTC)
    with db.write() as session:
        planner = create_user(session, "planner@bench.test", "planner")
        admin = create_user(session, "admin@bench.test", "admin")
        planner_token = issue_user_token(session, planner)
        admin_token = issue_user_token(session, admin)
        planner_id = planner.id
    counter = 0

    def cid(prefix: str, n: int) -> str:
        return f"{prefix}_{n:026d}"

    batch = 5000
    occasion_rows, planner_rows, conn_rows, secret_rows, principal_rows, key_rows, grant_rows = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )

    def flush(force: bool = False) -> None:
        if not force and len(conn_rows) < batch:
            return
        with db.write() as session:
            for model, rows in (
                (Occasion, occasion_rows),
                (OccasionPlanner, planner_rows),
                (Connection, conn_rows),
                (ConnectionSecret, secret_rows),
                (IntegrationPrincipal, principal_rows),
                (IntegrationKey, key_rows),
                (Grant, grant_rows),
            ):
                if rows:
                    session.execute(insert(model), rows)
                    rows.clear()

    total_occasions = occasions + 1
    for o in range(total_occasions):
        occasion_id = cid("occ", o)
        mine = o == occasions
        occasion_rows.append(
            {
                "id": occasion_id,
                "name": f"Occasion {o}",
                "starts_on": date(2027, 1, 1),
                "created_by": planner_id,
                "created_at": now,
            }
        )
        if mine:
            planner_rows.append({"occasion_id": occasion_id, "user_id": planner_id})
        for _ in range(planner_connections if mine else per_occasion):
            counter += 1
            connection_id = cid("con", counter)
            state, health = STATES[counter % len(STATES)]
            subject = f"integration:{connection_id}"
            conn_rows.append(
                {
                    "id": connection_id,
                    "occasion_id": occasion_id,
                    "integration_key": "printing_partner",
                    "state": state,
                    "health": health,
                    "health_reasons": ["The printer rejected the API key."] if health == "failing" else [],
                    "sync_health": health,
                    "sync_health_reasons": [],
                    "config": {
                        "account_id": f"acct-{counter}",
                        "api_base_url": "https://printer.example.com",
                    },
                    "scope_type": "occasion",
                    "scope_event_id": None,
                    "action_keys": list(ACTIONS),
                    "sync_interval_seconds": None,
                    "next_sync_at": now if state == "enabled" else None,
                    "created_by": f"user:{planner_id}",
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
            )
            secret_rows.append(
                {
                    "connection_id": connection_id,
                    "field_key": "api_key",
                    "key_id": KEY_ID,
                    "nonce": b"0" * 12,
                    "ciphertext": b"x" * 40,
                    "redacted": "••••••••abcd",
                    "updated_at": now,
                }
            )
            principal_rows.append(
                {
                    "id": cid("prn", counter),
                    "subject_id": subject,
                    "connection_id": connection_id,
                    "scope_type": "occasion",
                    "scope_occasion_id": occasion_id,
                    "scope_event_id": None,
                    "created_at": now,
                }
            )
            key_rows.append(
                {
                    "id": cid("key", counter),
                    "principal_id": cid("prn", counter),
                    "key_id": f"ik{counter:020d}",
                    "secret_hash": "0" * 64,
                    "created_at": now,
                }
            )
            for a, action in enumerate(ACTIONS):
                grant_rows.append(
                    {
                        "id": cid("grt", counter * 3 + a),
                        "subject_id": subject,
                        "scope_type": "occasion",
                        "scope_occasion_id": occasion_id,
                        "scope_event_id": None,
                        "action_key": action,
                        "created_by": "bench",
                        "created_at": now,
                    }
                )
        flush()
    flush(force=True)
    fold_counts(db, above=0)  # as the leading process's upkeep would (services.retention.counts)
    db.dispose()
    return planner_token, admin_token, cid("occ", occasions)


def _api_env(url: str, data_dir: Path) -> dict[str, str]:
    return {
        "TOVPLUS_DATABASE_URL": url,
        "TOVPLUS_DATA_DIR": str(data_dir),
        "TOVPLUS_SECRET_KEYS": KEY,
        "TOVPLUS_LOG_LEVEL": "WARNING",
    }


#: Issue 20's target for the planner overview and the admin list's first page.
BARE_RATIO = 5.0


def _figure(name: str, load: Load, bare: Load, target: str, limit_ms: float | None) -> list[Figure]:
    """p50 and p99 beside the bare route's; ``limit_ms`` None means the target is the ratio."""
    if limit_ms is None:
        ok = load.p50_ms <= BARE_RATIO * bare.p50_ms and load.errors == 0
    else:
        ok = load.p50_ms < limit_ms and load.errors == 0
    return [
        Figure(f"{name} p50", load.p50_ms, "ms", "bare FastAPI route p50", bare.p50_ms, target, ok),
        Figure(f"{name} p99", load.p99_ms, "ms", "bare FastAPI route p99", bare.p99_ms),
    ]


def _admin_p50(url: str, data_dir: Path, admin: str, requests: int) -> Load:
    port = free_port()
    with server(
        [sys.executable, "-m", "tovplus.cli", "api", "--port", str(port)],
        env=_api_env(url, data_dir),
        ready_url=f"http://127.0.0.1:{port}/healthz",
    ):
        return drive(
            f"http://127.0.0.1:{port}/v1/admin/integrations?limit=50",
            headers={"Authorization": f"Bearer {admin}"},
            requests=requests,
        )


#: Rounds of every figure, the bare route's included, interleaved (bare, then the lists, again):
#: each figure is the best p50 of its rounds, so a minute the machine was slow in does not
#: decide a ratio; every round is printed on stderr.
ROUNDS = int(os.environ.get("BENCH_LISTS_ROUNDS", "2"))


def _best(loads: list[Load]) -> Load:
    """The round with the lowest p50 (errors in any round are kept)."""
    best = min(loads, key=lambda load: load.p50_ms)
    return replace(best, errors=sum(load.errors for load in loads))


def run(quick: bool = False) -> list[Figure]:
    occasions = 1_000 if quick else 10_000
    requests = 100 if quick else 400
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = f"sqlite:///{root / 'big.db'}"
        small = f"sqlite:///{root / 'small.db'}"
        planner, admin, occasion_id = _seed(big, occasions, 10, 50)
        _planner_small, admin_small, _ = _seed(small, 95, 10, 50)

        bare_port, port = free_port(), free_port()
        base = f"http://127.0.0.1:{port}"
        auth_planner = {"Authorization": f"Bearer {planner}"}
        auth_admin = {"Authorization": f"Bearer {admin}"}
        urls = {
            "planner": (f"{base}/v1/occasions/{occasion_id}/integrations", auth_planner),
            "admin_first": (f"{base}/v1/admin/integrations?limit=50", auth_admin),
            "admin_failing": (f"{base}/v1/admin/integrations?health=failing&limit=50", auth_admin),
            "admin_occasion": (f"{base}/v1/admin/integrations?occasion_id={occasion_id}", auth_admin),
        }
        loads: dict[str, list[Load]] = {"bare": [], **{name: [] for name in urls}}
        bare_cmd = [sys.executable, "-m", "uvicorn", "bench._bare:app", "--port", str(bare_port)]
        with (
            server(
                [*bare_cmd, "--log-level", "warning", *uvicorn_stack_args()],
                env={},
                ready_url=f"http://127.0.0.1:{bare_port}/healthz",
            ),
            server(
                [sys.executable, "-m", "tovplus.cli", "api", "--port", str(port)],
                env=_api_env(big, root),
                ready_url=f"{base}/healthz",
            ),
        ):
            for n in range(ROUNDS):
                loads["bare"].append(drive(f"http://127.0.0.1:{bare_port}/bare", requests=requests))
                for name, (url, headers) in urls.items():
                    loads[name].append(drive(url, headers=headers, requests=requests))
                print(
                    f"  round {n + 1}: "
                    + ", ".join(f"{k} p50 {v[-1].p50_ms:.1f} ms" for k, v in loads.items()),
                    file=sys.stderr,
                )
        small_admin = _admin_p50(small, root, admin_small, requests)

    bare = _best(loads["bare"])
    planner_list, admin_first = _best(loads["planner"]), _best(loads["admin_first"])
    admin_failing, admin_occasion = _best(loads["admin_failing"]), _best(loads["admin_occasion"])
    total = occasions * 10 + 50
    return [
        *_figure("planner list, 50 connections", planner_list, bare, "p50 <= 5x bare", None),
        *_figure(f"admin list, first page of {total:,}", admin_first, bare, "p50 <= 5x bare", None),
        *_figure("admin list, health=failing", admin_failing, bare, "p50 < 100 ms", 100),
        *_figure("admin list, one occasion", admin_occasion, bare, "p50 < 100 ms", 100),
        Figure(
            f"admin list p50 at {total:,} connections",
            admin_first.p50_ms,
            "ms",
            "same query at 1,000 connections",
            small_admin.p50_ms,
            "ratio <= 3 (index-driven)",
            admin_first.p50_ms <= 3 * small_admin.p50_ms,
        ),
    ]
