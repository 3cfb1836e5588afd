"""Which master keys the database's sealed values name: every column that holds a key id, in one place.

A new encrypted column belongs in :data:`SEALED_KEY_ID_COLUMNS`, so that start-up refuses to run
(and ``/readyz`` answers 503) while the keyring lacks a key it names.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select, union
from sqlalchemy.orm import InstrumentedAttribute

from tovplus.db.models import ConnectionSecret, WebhookEndpoint

#: The key-id column of every sealed value: connection secrets and webhook signing secrets.
SEALED_KEY_ID_COLUMNS: tuple[InstrumentedAttribute[str], ...] = (
    ConnectionSecret.key_id,
    WebhookEndpoint.secret_key_id,
)


def key_ids_in_use(engine: Engine) -> set[str]:
    """The distinct key ids the stored ciphertexts name; tables not created yet hold none."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        present = [c for c in SEALED_KEY_ID_COLUMNS if c.class_.__tablename__ in tables]
        if not present:
            return set()
        query = union(*(select(column).distinct() for column in present))
        return {key_id for (key_id,) in connection.execute(query)}
