"""Process logging: one handler on the root logger, secrets scrubbed from every record."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from tovplus.integrations.redaction import install_scrubber


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra`` ids (run_id, connection_id, …)."""

    EXTRA_KEYS = ("request_id", "run_id", "connection_id", "delivery_id", "occasion_id", "integration_key")

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in self.EXTRA_KEYS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    install_scrubber(root)
