"""Authlib's httpx OAuth2 client, the one import of it.

Authlib 1.9 prefers the ``httpx2`` package and, finding plain ``httpx`` (what every client of ours
is built on), warns on import, with a filter that shows it always: every ``tovplus`` command would
print it. It is silenced here, once; the client itself is the same.
"""

from __future__ import annotations

import warnings

from authlib.deprecate import AuthlibDeprecationWarning  # installs its "always" filter first

with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

__all__ = ["OAuth2Client", "OAuthError"]
