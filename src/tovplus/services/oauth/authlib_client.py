"""Authlib's OAuth2 client, imported in one place.

Authlib 1.7+ warns at import that its httpx integration should move to the ``httpx2`` fork; the
integration works with ``httpx`` (what the whole project uses) and the warning would otherwise
print on every CLI command's stderr. It is silenced here, for that one message only.
"""

from __future__ import annotations

import warnings

import authlib.deprecate  # noqa: F401 - installs Authlib's own "always" filter before ours goes in front of it

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

__all__ = ["OAuth2Client", "OAuthError"]
