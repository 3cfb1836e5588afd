"""Which master keys the database's sealed values name: every column that holds a key id, in one place.

A new encrypted column belongs in :data:`SEALED_KEY_ID_COLUMNS`, so that start-up refuses to run
(and ``/readyz`` answers 503) while the keyring lacks a key it names.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select, union
from sqlalchemy.orm import InstrumentedAttribute

from tovplus.db.models import (
    ConnectionSecret,
    IntegrationKey,
    OAuthClient,
    OAuthGrant,
    OAuthState,
    WebhookEndpoint,
)

#: The key-id column of every sealed value: connection secrets, webhook signing secrets,
#: callback signing secrets, OAuth clients' secrets, grants' tokens and PKCE verifiers.
SEALED_KEY_ID_COLUMNS: tuple[InstrumentedAttribute[str] | InstrumentedAttribute[str | None], ...] = (
    ConnectionSecret.key_id,
    WebhookEndpoint.secret_key_id,
    WebhookEndpoint.previous_secret_key_id,
    IntegrationKey.callback_secret_key_id,
    OAuthClient.secret_key_id,
    OAuthGrant.access_key_id,
    OAuthGrant.refresh_key_id,
    OAuthState.verifier_key_id,
)


def key_ids_in_use(engine: Engine) -> set[str]:
    """The distinct key ids the stored ciphertexts name; tables or columns not created yet hold none."""
    with engine.connect() as connection:
        inspector = inspect(connection)
        tables = set(inspector.get_table_names())
        wanted = {c.class_.__tablename__ for c in SEALED_KEY_ID_COLUMNS} & tables
        columns = {t: {c["name"] for c in inspector.get_columns(t)} for t in wanted}
        present = [c for c in SEALED_KEY_ID_COLUMNS if c.key in columns.get(c.class_.__tablename__, ())]
        if not present:
            return set()
        query = union(*(select(column).where(column.is_not(None)).distinct() for column in present))
        return {key_id for (key_id,) in connection.execute(query) if key_id is not None}
