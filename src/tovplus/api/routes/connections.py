"""The planner's lifecycle routes for an occasion's integrations."""

from __future__ import annotations

from fastapi import APIRouter, Security

from tovplus.api.deps import BearerTokenDep, CallerDep, RuntimeDep
from tovplus.api.responses import ModelJSONResponse, model_json
from tovplus.api.schemas import (
    BEARER,
    ActivityPageOut,
    CheckOut,
    ConnectionCreatedOut,
    ConnectionCreateIn,
    ConnectionOut,
    ConnectionPatchIn,
    CursorQuery,
    IdQuery,
    IncludeDeletedQuery,
    LimitQuery,
    OccasionIntegrationsOut,
    RecordsOut,
    ShowQuery,
    SyncRequestedOut,
    SyncRequestIn,
)
from tovplus.services import connections
from tovplus.services.connections import ConnectionCreate, ConnectionPatch, ScopeInput

router = APIRouter(
    prefix="/v1/occasions/{occasion_id}/integrations", tags=["connections"], dependencies=[Security(BEARER)]
)
Limit = LimitQuery
Cursor = CursorQuery


@router.get("", response_model=OccasionIntegrationsOut)
def overview(occasion_id: str, rt: RuntimeDep, token: BearerTokenDep) -> ModelJSONResponse:
    """Catalog, the occasion's connections and its 20 most recent activity entries."""
    # one thread hop and one read session: the bearer token is looked up in the overview's own
    # session (the route has no query parameters, so the errors come in the same order as with
    # ``CallerDep``). The views pass through as they are; only the catalog entries are checked here.
    overview = connections.occasion_overview_for_token(rt, token, occasion_id)
    return model_json(OccasionIntegrationsOut.model_validate(overview, from_attributes=True))


@router.post(
    "/connections", status_code=201, response_model=ConnectionCreatedOut, response_model_exclude_unset=True
)
def create(
    occasion_id: str, body: ConnectionCreateIn, rt: RuntimeDep, caller: CallerDep
) -> ConnectionCreatedOut:
    """Create a connection; ``issued_key`` (and, for adapters whose partners sign callbacks,
    ``callback_signing_secret``) is shown here and after rotation only."""
    scope = body.scope or ScopeInput()
    result = connections.create_connection(
        rt,
        caller,
        occasion_id,
        ConnectionCreate(
            integration_key=body.integration_key,
            config=body.config,
            secrets=body.secrets,
            scope=ScopeInput(scope.type, scope.event_id),
            action_keys=body.action_keys,
            state=body.state,
            sync_interval_seconds=body.sync_interval_seconds,
            label=body.label,
        ),
    )
    assert result.issued_key is not None, "a new connection always has a key"
    # unset fields are left out: ``callback_signing_secret`` only for adapters whose partner signs
    if result.callback_signing_secret:
        return ConnectionCreatedOut(
            connection=result.connection,
            issued_key=result.issued_key,
            callback_signing_secret=result.callback_signing_secret,
        )
    return ConnectionCreatedOut(connection=result.connection, issued_key=result.issued_key)


@router.get("/connections/{connection_id}", response_model=ConnectionOut)
def read(occasion_id: str, connection_id: str, rt: RuntimeDep, caller: CallerDep) -> ConnectionOut:
    """One connection of the occasion."""
    return ConnectionOut(connection=connections.get_connection(rt, caller, occasion_id, connection_id))


@router.patch("/connections/{connection_id}", response_model=ConnectionOut, response_model_exclude_unset=True)
def patch(
    occasion_id: str, connection_id: str, body: ConnectionPatchIn, rt: RuntimeDep, caller: CallerDep
) -> ConnectionOut:
    """Change state, config, secrets or action keys, or rotate the key."""
    result = connections.update_connection(
        rt,
        caller,
        occasion_id,
        connection_id,
        ConnectionPatch(
            state=body.state,
            config=body.config,
            secrets=body.secrets,
            action_keys=body.action_keys,
            rotate_key=body.rotate_key,
            label=body.label_change(),
        ),
    )
    # unset fields are left out of the answer: ``issued_key`` appears only after a rotation,
    # ``callback_signing_secret`` only after one for an adapter whose partner signs callbacks
    if result.callback_signing_secret:
        return ConnectionOut(
            connection=result.connection,
            issued_key=result.issued_key,
            callback_signing_secret=result.callback_signing_secret,
        )
    if result.issued_key:
        return ConnectionOut(connection=result.connection, issued_key=result.issued_key)
    return ConnectionOut(connection=result.connection)


@router.post("/connections/{connection_id}/sync", status_code=202, response_model=SyncRequestedOut)
def sync_now(
    occasion_id: str, connection_id: str, rt: RuntimeDep, caller: CallerDep, body: SyncRequestIn | None = None
) -> SyncRequestedOut:
    """Queue a sync now (enabled connections of adapters with background sync; else 409);
    ``{"full": true}`` asks for everything again and marks what the partner no longer has deleted."""
    full = body is not None and body.full
    return SyncRequestedOut(
        sync_run_id=connections.request_sync(rt, caller, occasion_id, connection_id, full=full)
    )


@router.post("/connections/{connection_id}/check", response_model=CheckOut)
def check(occasion_id: str, connection_id: str, rt: RuntimeDep, caller: CallerDep) -> CheckOut:
    """Test the stored credentials against the partner now (drafts too): ``ok``, when, and why not;
    records ``connection.checked`` and updates health. 409 for a revoked connection or an adapter
    without a check."""
    return CheckOut(check=connections.check_connection(rt, caller, occasion_id, connection_id))


@router.get("/connections/{connection_id}/records", response_model=RecordsOut)
def records(
    occasion_id: str,
    connection_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    limit: Limit = None,
    cursor: Cursor = None,
    include_deleted: IncludeDeletedQuery = False,
) -> RecordsOut:
    """What sync and callbacks stored for the connection (deleted ones with ``include_deleted=true``)."""
    page = connections.list_records(
        rt, caller, occasion_id, connection_id, limit=limit, cursor=cursor, include_deleted=include_deleted
    )
    return RecordsOut(records=page.items, next_cursor=page.next_cursor)


@router.get("/activity", response_model=ActivityPageOut)
def occasion_activity(
    occasion_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    connection_id: IdQuery = None,
    show: ShowQuery = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> ActivityPageOut:
    """The occasion's activity, newest first, or one connection's; ``show`` narrows it."""
    page = connections.occasion_activity(
        rt, caller, occasion_id, connection_id=connection_id, limit=limit, cursor=cursor, show=show
    )
    return ActivityPageOut(activity=page.items, next_cursor=page.next_cursor)
