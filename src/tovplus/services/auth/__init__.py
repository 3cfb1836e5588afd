"""Who is calling, and may they do this?

Two kinds of callers carry bearer tokens: users (planners and admins, token
``tovu_…``) and integration principals (the issued key ``tov_<key_id>_<secret>``).
Tokens and keys are stored only as SHA-256 hashes. :func:`authorize` is the one
function that answers "may this caller do action A on occasion O (event E)".

Modules: ``callers`` (who), ``users``, ``tokens`` (user tokens, integration keys, hashing,
last use), ``bearer`` (a request's token to a caller), ``authorization`` (:func:`authorize`),
``principals`` (integration principals, keys, grants), ``web_sessions`` (passwords, browser
sessions), ``throttle`` (sign-in limits), ``one_time`` (tickets good once, for flash
messages). This package re-exports their public names; import them from here, not from the
modules (``bearer``, ``principals``, ``throttle`` and ``web_sessions`` stay reachable as
attributes for callers that still use them).
"""

from __future__ import annotations

from tovplus.db.ids import is_id
from tovplus.services.auth import bearer, principals, throttle, web_sessions
from tovplus.services.auth.authorization import (
    MANAGE,
    OCCASION_WIDE_ACTIONS,
    authorize,
    event_of_occasion,
    plans,
    scope_allows,
)
from tovplus.services.auth.bearer import (
    Authentication,
    authenticate,
    authenticate_bearer,
    authenticate_in,
    record_use,
)
from tovplus.services.auth.callers import (
    ROLES,
    Caller,
    IntegrationCaller,
    UserCaller,
    require_admin,
    require_user,
)
from tovplus.services.auth.one_time import ONE_TIME_PURPOSE, issue_ticket, use_ticket
from tovplus.services.auth.principals import (
    PRINCIPAL_TYPE,
    IssuedKey,
    create_principal,
    issue_key,
    revoke_keys,
    revoke_principal,
    rotate_key,
    set_grants,
    subject_for,
)
from tovplus.services.auth.tokens import (
    INTEGRATION_KEY_PREFIX,
    LAST_USED_GRANULARITY,
    USER_TOKEN_PREFIX,
    ResolvedKey,
    active_action_keys,
    issue_user_token,
    needs_touch,
    new_integration_key,
    parse_integration_key,
    resolve_integration_key,
    revoke_user_token,
    sha256_hex,
    touch_integration_key,
    touch_user_token,
)
from tovplus.services.auth.users import create_user, normalise_email, user_emails
from tovplus.services.auth.web_sessions import (
    SESSION_COOKIE,
    SESSION_TTL,
    SignedIn,
    hash_password,
    session_caller,
    set_password,
    sign_in,
    sign_out,
)

__all__ = [
    "INTEGRATION_KEY_PREFIX",
    "LAST_USED_GRANULARITY",
    "MANAGE",
    "OCCASION_WIDE_ACTIONS",
    "ONE_TIME_PURPOSE",
    "PRINCIPAL_TYPE",
    "ROLES",
    "SESSION_COOKIE",
    "SESSION_TTL",
    "USER_TOKEN_PREFIX",
    "Authentication",
    "Caller",
    "IntegrationCaller",
    "IssuedKey",
    "ResolvedKey",
    "SignedIn",
    "UserCaller",
    "active_action_keys",
    "authenticate",
    "authenticate_bearer",
    "authenticate_in",
    "authorize",
    "bearer",
    "create_principal",
    "create_user",
    "event_of_occasion",
    "hash_password",
    "is_id",
    "issue_key",
    "issue_ticket",
    "issue_user_token",
    "needs_touch",
    "new_integration_key",
    "normalise_email",
    "parse_integration_key",
    "plans",
    "principals",
    "record_use",
    "require_admin",
    "require_user",
    "resolve_integration_key",
    "revoke_keys",
    "revoke_principal",
    "revoke_user_token",
    "rotate_key",
    "scope_allows",
    "session_caller",
    "set_grants",
    "set_password",
    "sha256_hex",
    "sign_in",
    "sign_out",
    "subject_for",
    "throttle",
    "touch_integration_key",
    "touch_user_token",
    "use_ticket",
    "user_emails",
    "web_sessions",
]
