"""Prometheus metrics of this process (served at ``/metrics``).

Each process keeps its own registry; scrape every API and worker process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

SYNC_RUNS = Counter("tovplus_sync_runs_total", "Sync run attempts by outcome", ["outcome"], registry=REGISTRY)
SYNC_DURATION = Histogram(
    "tovplus_sync_run_duration_seconds", "Duration of one sync attempt", registry=REGISTRY
)
QUEUE_DEPTH = Gauge("tovplus_queue_depth", "Work waiting in our tables, by kind", ["kind"], registry=REGISTRY)
WEBHOOK_DELIVERIES = Counter(
    "tovplus_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"], registry=REGISTRY
)
CALLBACKS = Counter(
    "tovplus_callbacks_total",
    "Inbound callbacks by integration and status",
    ["integration_key", "status"],
    registry=REGISTRY,
)
