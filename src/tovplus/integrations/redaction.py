"""The one place that redacts.

* :func:`redact_secret` produces the contract's summary of a secret value.
* :func:`redact_details` scrubs mappings bound for activity entries and webhooks.
* :class:`SecretScrubber` is a logging filter that removes every secret value the
  process has handled, and anything shaped like one of our tokens, from log records.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "••••••••"
#: Values shorter than this are masked completely.
MIN_LENGTH_TO_SHOW_TAIL = 12
_SECRETISH_KEY = re.compile(r"(secret|token|password|passwd|api[_-]?key|authorization|credential)", re.I)
#: Our own credential formats: integration keys, user tokens, webhook signing secrets.
TOKEN_PATTERN = re.compile(
    r"\b(?:tov_[A-Za-z0-9]+_[A-Za-z0-9_-]{8,}|tovu_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=_-]{8,})"
)
_MAX_DETAIL_STRING = 500


def redact_secret(value: str | None) -> str | None:
    """``None`` stays ``None``; long values keep their last 4 characters, short ones none."""
    if value is None:
        return None
    if len(value) < MIN_LENGTH_TO_SHOW_TAIL:
        return MASK
    return MASK + value[-4:]


def is_redacted_form(candidate: object, real: str | None) -> bool:
    """True when ``candidate`` is exactly what :func:`redact_secret` shows for ``real``."""
    return real is not None and isinstance(candidate, str) and candidate == redact_secret(real)


def looks_redacted(candidate: object) -> bool:
    """True for any string in the redacted format (used when no real value is at hand)."""
    return isinstance(candidate, str) and candidate.startswith(MASK) and len(candidate) <= len(MASK) + 4


def redact_details(value: Any, *, depth: int = 0) -> Any:
    """Copy a JSON-like value, masking secret-looking keys and our token formats."""
    if depth > 8:
        return "…"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in list(value.items())[:100]:
            k = str(key)
            out[k] = (
                MASK
                if _SECRETISH_KEY.search(k) and item is not None
                else redact_details(item, depth=depth + 1)
            )
        return out
    if isinstance(value, list | tuple):
        return [redact_details(v, depth=depth + 1) for v in list(value)[:100]]
    if isinstance(value, str):
        text = TOKEN_PATTERN.sub(MASK, value)
        return text if len(text) <= _MAX_DETAIL_STRING else text[:_MAX_DETAIL_STRING] + "…"
    return value


class SecretScrubber(logging.Filter):
    """Logging filter that replaces known secret values and token-shaped strings."""

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def remember(self, value: str) -> None:
        """Scrub ``value`` from every later log record (values under 6 characters are not worth it)."""
        if len(value) < 6 or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return TOKEN_PATTERN.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging
            return True
        scrubbed = self.scrub(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, None
        return True


#: The process-wide scrubber; ``install_scrubber`` attaches it to the root handlers.
scrubber = SecretScrubber()


def install_scrubber(logger: logging.Logger | None = None) -> None:
    """Attach the scrubber to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if scrubber not in handler.filters:
            handler.addFilter(scrubber)


def public_config(adapter: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """The outward view of a connection's config: declared non-secret fields only.

    ``adapter`` is an :class:`~tovplus.integrations.contract.Adapter`; a key that an
    adapter upgrade turned into a secret field is never shown.
    """
    secret_keys = {f.key for f in adapter.secret_fields}
    return {
        f.key: config[f.key] for f in adapter.config_fields if f.key in config and f.key not in secret_keys
    }
