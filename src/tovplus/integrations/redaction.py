"""The one place that redacts.

* :func:`redact_secret` produces the contract's summary of a secret value.
* :func:`redact_details` scrubs mappings bound for activity entries and webhooks.
* :class:`SecretScrubber` is a logging filter that removes every secret value the
  process has handled, and anything shaped like one of our tokens, from log records.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections import OrderedDict
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


@functools.lru_cache(maxsize=4096)
def _secretish_key(key: str) -> bool:
    """Whether a mapping key names a secret (cached: the same few keys recur in every entry)."""
    return _SECRETISH_KEY.search(key) is not None


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


#: How deep :func:`redact_details` copies; anything deeper becomes ``"…"``.
_MAX_DEPTH = 8


def redact_details(value: Any, *, depth: int = 0) -> Any:
    """Copy a JSON-like value, masking secret-looking keys and our token formats."""
    if depth > _MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        strings_inline = depth < _MAX_DEPTH  # a string one level down is not cut off by the limit
        for key, item in list(value.items())[:100]:
            k = str(key)
            if item is not None and _secretish_key(k):
                out[k] = MASK
            elif strings_inline and type(item) is str:  # the common case, without the recursive call
                out[k] = _redact_string(item)
            else:
                out[k] = redact_details(item, depth=depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact_details(v, depth=depth + 1) for v in list(value)[:100]]
    if isinstance(value, str):
        return _redact_string(value)
    return value


def _redact_string(value: str) -> str:
    text = scrubber.scrub(value)
    return text if len(text) <= _MAX_DETAIL_STRING else text[:_MAX_DETAIL_STRING] + "…"


class SecretScrubber(logging.Filter):
    """Logging filter that replaces known secret values and token-shaped strings.

    Remembered values are indexed by their first :data:`MIN_REMEMBERED_LENGTH` characters,
    so remembering is O(1) and scrubbing a message costs one dictionary lookup per
    character, however many secrets the process has handled. The newest
    :data:`MAX_REMEMBERED` values are kept; a value in use is remembered again each
    time it is handled, so only long-unused values fall out.
    """

    MIN_REMEMBERED_LENGTH = 6
    MAX_REMEMBERED = 100_000

    def __init__(self) -> None:
        super().__init__()
        self._values: OrderedDict[str, None] = OrderedDict()
        #: prefix -> the remembered values starting with it, longest first (immutable tuples,
        #: so a scrub running in another thread never sees one half-changed)
        self._by_prefix: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def remember(self, value: str) -> None:
        """Scrub ``value`` from every later log record (values under 6 characters are not worth it)."""
        if not isinstance(value, str) or len(value) < self.MIN_REMEMBERED_LENGTH:
            return
        with self._lock:
            if value in self._values:
                self._values.move_to_end(value)
                return
            self._values[value] = None
            prefix = value[: self.MIN_REMEMBERED_LENGTH]
            same = (*self._by_prefix.get(prefix, ()), value)
            self._by_prefix[prefix] = tuple(sorted(same, key=len, reverse=True))
            while len(self._values) > self.MAX_REMEMBERED:
                old, _ = self._values.popitem(last=False)
                old_prefix = old[: self.MIN_REMEMBERED_LENGTH]
                rest = tuple(v for v in self._by_prefix.get(old_prefix, ()) if v != old)
                if rest:
                    self._by_prefix[old_prefix] = rest
                else:
                    self._by_prefix.pop(old_prefix, None)

    def forget_all(self) -> None:
        """Drop every remembered value (tests)."""
        with self._lock:
            self._values.clear()
            self._by_prefix = {}

    def _scrub_remembered(self, text: str) -> str:
        index = self._by_prefix
        if not index:
            return text
        width = self.MIN_REMEMBERED_LENGTH
        pieces: list[str] = []
        start = i = 0
        end = len(text) - width
        while i <= end:
            for candidate in index.get(text[i : i + width], ()):
                if text.startswith(candidate, i):
                    pieces.append(text[start:i])
                    pieces.append(MASK)
                    i = start = i + len(candidate)
                    break
            else:
                i += 1
        if not pieces:
            return text
        pieces.append(text[start:])
        return "".join(pieces)

    def scrub(self, text: str) -> str:
        text = self._scrub_remembered(text)
        # every match of TOKEN_PATTERN holds "tov" or "whsec_": two substring tests cost a tenth
        # of the regex, and activity entries (one per callback) are mostly strings without either
        if "tov" not in text and "whsec_" not in text:
            return text
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
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
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
