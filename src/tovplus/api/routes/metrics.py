"""``/metrics``: this process's Prometheus metrics (no token, like ``/healthz``; counts only)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tovplus.api.deps import RuntimeDep
from tovplus.runtime import metrics
from tovplus.services import sync

router = APIRouter(tags=["service"])
log = logging.getLogger(__name__)


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(rt: RuntimeDep) -> Response:
    """Sync runs by outcome, run duration, deliveries by outcome, callbacks, and queue depth
    (read from the database at scrape time, so every API process reports the fleet's backlog)."""
    try:
        for kind, depth in sync.queue_depth(rt).items():
            metrics.QUEUE_DEPTH.labels(kind).set(depth)
    except Exception:  # the database is away: serve the counters we have
        log.warning("could not read the queue depth for /metrics", exc_info=True)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
