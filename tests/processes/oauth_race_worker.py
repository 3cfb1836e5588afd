"""One process of the OAuth refresh race: asks ``GrantTokenSource.access_token()`` in a loop.

``python -m tests.processes.oauth_race_worker <connection_id> <owner> <api_base> <stop_file> <out_file>``,
with the settings in the environment (``TOVPLUS_*``). Each token it gets is used at once against
the partner's API (``GET <api_base>/check``), which answers 401 for a token that is not valid.
When ``stop_file`` exists it writes its counts as JSON to ``out_file`` and exits.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import httpx

from tests.oauth.support import registry
from tovplus.runtime import build_runtime
from tovplus.services.oauth import GrantTokenSource
from tovplus.settings import load_settings


def main(connection_id: str, owner: str, api_base: str, stop_file: str, out_file: str) -> None:
    rt = build_runtime(load_settings(), registry=registry())
    source = GrantTokenSource(rt, connection_id, owner)
    counts = {"calls": 0, "invalid": 0, "errors": [], "refreshes": 0, "owner": source.owner}
    api = httpx.Client(timeout=5.0)
    while not Path(stop_file).exists():
        try:
            token = source.access_token()
            counts["calls"] += 1  # type: ignore[operator]
            if api.get(f"{api_base}/check", headers={"Authorization": f"Bearer {token}"}).status_code != 200:
                counts["invalid"] += 1  # type: ignore[operator]
        except Exception as exc:
            counts["errors"].append(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]
            traceback.print_exc()
        time.sleep(0.01)
    counts["refreshes"] = source.refreshes
    Path(out_file).write_text(json.dumps(counts))
    rt.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
