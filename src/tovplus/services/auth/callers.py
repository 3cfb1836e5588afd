"""Who is calling: a user (planner or admin) or an integration principal."""

from __future__ import annotations

from dataclasses import dataclass

from tovplus.errors import Forbidden
from tovplus.integrations.contract import Scope

#: The roles a user can have.
ROLES = ("planner", "admin")


@dataclass(frozen=True, slots=True)
class UserCaller:
    """A signed-in planner or admin."""

    user_id: str
    email: str
    role: str

    @property
    def subject_id(self) -> str:
        return f"user:{self.user_id}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class IntegrationCaller:
    """A connection's integration principal, calling with its issued key."""

    principal_id: str
    subject_id: str
    connection_id: str
    key_id: str
    scope: Scope
    #: Action keys from the principal's active grant rows: what is enforced.
    action_keys: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return False


Caller = UserCaller | IntegrationCaller


def require_user(caller: Caller) -> UserCaller:
    """The caller as a user, or :class:`Forbidden` for an integration key."""
    if not isinstance(caller, UserCaller):
        raise Forbidden("Integration keys cannot use this route.")
    return caller


def require_admin(caller: Caller) -> UserCaller:
    """The caller as an admin, or :class:`Forbidden`."""
    user = require_user(caller)
    if not user.is_admin:
        raise Forbidden("Only administrators can see this or do this.")
    return user
