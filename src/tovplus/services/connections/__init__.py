"""Connections: create, read, change state, edit, rotate, revoke; the admin's list.

Modules by operation: ``inputs`` (checks of what a planner sends), ``store`` (row access and
conditional writes), ``views`` (the typed views), ``lifecycle`` (create, patch, revoke), ``sync_now``
(the "Sync now" request), ``listing`` (what a planner reads), ``admin`` (the admin's list and feed),
``search`` (the admin list's text search and sort), ``labels`` (the planner's label), ``run_history``
(sync runs and "Retry now"), ``upkeep`` (stored health after an adapter upgrade), ``check`` (the
live credential check, "Test connection") and ``authorization`` (connecting an ``oauth2`` connection:
authorize and the partner's callback).
"""

from tovplus.services.connections.admin import AdminFilters, admin_activity, admin_list
from tovplus.services.connections.authorization import authorize_connection, finish_authorization
from tovplus.services.connections.check import CHECK_REASON_PREFIX, CheckOutcome, check_connection
from tovplus.services.connections.inputs import (
    STATES,
    ConnectionCreate,
    ConnectionPatch,
    ScopeInput,
    storable_text,
)
from tovplus.services.connections.lifecycle import (
    ALLOWED_TRANSITIONS,
    ConnectionResult,
    create_connection,
    update_connection,
)
from tovplus.services.connections.listing import (
    get_connection,
    list_records,
    occasion_activity,
    occasion_overview,
    occasion_overview_for_token,
)
from tovplus.services.connections.run_history import (
    SyncScheduleModel,
    connection_sync_runs,
    retry_run_now,
    sync_schedule,
)
from tovplus.services.connections.search import MAX_SEARCH_LENGTH, SORTS
from tovplus.services.connections.store import StaleWrite
from tovplus.services.connections.sync_now import request_sync
from tovplus.services.connections.upkeep import refresh_health
from tovplus.services.connections.views import (
    AdminSummary,
    AuthorizationModel,
    CallbackRejectionsModel,
    ConnectionModel,
    FieldIssueModel,
    GrantModel,
    HealthName,
    OccasionOverview,
    PrincipalModel,
    ScopeModel,
    ScopeName,
    StateName,
    ValidationModel,
    build_views,
    whoami,
)

# kept here for callers not yet moved to ``tovplus.services.health``

__all__ = [
    "ALLOWED_TRANSITIONS",
    "CHECK_REASON_PREFIX",
    "MAX_SEARCH_LENGTH",
    "SORTS",
    "STATES",
    "AdminFilters",
    "AdminSummary",
    "AuthorizationModel",
    "CallbackRejectionsModel",
    "CheckOutcome",
    "ConnectionCreate",
    "ConnectionModel",
    "ConnectionPatch",
    "ConnectionResult",
    "FieldIssueModel",
    "GrantModel",
    "HealthName",
    "OccasionOverview",
    "PrincipalModel",
    "ScopeInput",
    "ScopeModel",
    "ScopeName",
    "StaleWrite",
    "StateName",
    "SyncScheduleModel",
    "ValidationModel",
    "admin_activity",
    "admin_list",
    "authorize_connection",
    "build_views",
    "check_connection",
    "connection_sync_runs",
    "create_connection",
    "finish_authorization",
    "get_connection",
    "list_records",
    "occasion_activity",
    "occasion_overview",
    "occasion_overview_for_token",
    "refresh_health",
    "request_sync",
    "retry_run_now",
    "storable_text",
    "sync_schedule",
    "update_connection",
    "whoami",
]
