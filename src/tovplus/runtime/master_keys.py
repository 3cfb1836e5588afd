"""The keyring a process may run with: one that opens every key id the database's secrets name.

A lost key file must not be silently replaced: :func:`open_keyring` generates a key only for a
database that holds no sealed value, and refuses (:class:`MissingKeys`, one line naming the key
ids and where to supply them) while the database names key ids the keyring lacks.
:func:`missing_key_ids` is the same check for ``/readyz``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy.exc import SQLAlchemyError

from tovplus.db.sealed import key_ids_in_use
from tovplus.db.session import Database, describe_database_error
from tovplus.errors import ConfigurationError
from tovplus.runtime.keyring import KEY_FILE_NAME, Keyring
from tovplus.settings import Settings

log = logging.getLogger(__name__)
_NAMED = 5  # key ids named in the message; more are counted


class MissingKeys(ConfigurationError):
    """The database holds secrets sealed under key ids the keyring lacks."""

    code = "missing_secret_keys"


def missing_key_ids(db: Database, keyring: Keyring) -> list[str]:
    """The key ids the database's sealed values name that ``keyring`` lacks (sorted)."""
    return sorted(key_ids_in_use(db.engine) - set(keyring.key_ids))


def given_keyring(settings: Settings) -> Keyring | None:
    """The keys supplied: ``TOVPLUS_SECRET_KEYS``, else the key file if there is one, else ``None``.

    Read before the database is opened, so a malformed value stops the process before anything
    is created.
    """
    if settings.secret_keys or (settings.data_dir / KEY_FILE_NAME).exists():
        return Keyring.load(settings.secret_keys, settings.data_dir)
    return None


def open_keyring(settings: Settings, db: Database, given: Keyring | None) -> Keyring:
    """``given`` (see :func:`given_keyring`), refused if it cannot open what ``db`` holds.

    Without keys given, a new key file is created only when the database holds no sealed value
    (a fresh install). A database that cannot be reached is no reason to refuse keys that were
    given (``/readyz`` reports both), but it is to generate one.
    """
    path = settings.data_dir / KEY_FILE_NAME
    if given is None:
        in_use = sorted(key_ids_in_use(db.engine))  # a database error propagates: no key made blind
        if in_use:
            raise MissingKeys(
                f"{_holds(in_use)}, but there is no key file at {path} and TOVPLUS_SECRET_KEYS is "
                f"unset: restore {path} from a backup or set TOVPLUS_SECRET_KEYS to the keys "
                "(key_id:base64url, newest first); no new key was generated"
            )
        return Keyring.load(None, settings.data_dir)  # creates the key file (or reads a racing one's)
    try:
        missing = missing_key_ids(db, given)
    except SQLAlchemyError as exc:
        log.warning("could not check the stored secrets' keys: %s", describe_database_error(exc))
        return given
    if missing:
        raise MissingKeys(_lacking(missing, settings, str(path)))
    return given


def _holds(key_ids: Collection[str]) -> str:
    ids = sorted(key_ids)
    named = ", ".join(ids[:_NAMED]) + (f" and {len(ids) - _NAMED} more" if len(ids) > _NAMED else "")
    return f"the database holds secrets sealed with key id{'s' if len(ids) > 1 else ''} {named}"


def _lacking(missing: list[str], settings: Settings, path: str) -> str:
    if settings.secret_keys:
        return (
            f"{_holds(missing)}, which TOVPLUS_SECRET_KEYS lacks: add {'them' if len(missing) > 1 else 'it'} "
            f"to TOVPLUS_SECRET_KEYS (key_id:base64url, newest first), or unset it to use the key file {path}"
        )
    return (
        f"{_holds(missing)}, which the key file {path} lacks: put the key back in {path} "
        "(restore it from a backup) or set TOVPLUS_SECRET_KEYS to the keys (key_id:base64url, newest first)"
    )
