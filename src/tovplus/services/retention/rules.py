"""What retention keeps, as declarations: one :class:`Rule` per table that records work.

Adding a table is one declaration in :data:`RULES` (and its setting in ``settings.py``). The
one the issue names that does not exist yet would read::

    Rule(RecordTombstone, order="id", prefix="tmb", days="tombstone_retention_days"),

A rule's ``order`` column holds ids made by :func:`tovplus.db.ids.new_id` (time-ordered), so
the index on it orders rows by age: the pruner walks it in ranges of ``prune_batch_size``
rows and never scans a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table

from tovplus.db.models import (
    ActionRun,
    Activity,
    Base,
    CallbackDelivery,
    PlatformEvent,
    SyncRun,
    WebhookAttempt,
    WebhookDelivery,
)
from tovplus.db.states import ActionRunState, DeliveryState, SyncRunState
from tovplus.settings import Settings

FINISHED_SYNC_STATES = (SyncRunState.SUCCEEDED.value, SyncRunState.FAILED.value)
FINISHED_ACTION_STATES = (ActionRunState.SUCCEEDED.value, ActionRunState.FAILED.value)
FINISHED_DELIVERY_STATES = (
    DeliveryState.DELIVERED.value,
    DeliveryState.FAILED.value,
    DeliveryState.CANCELLED.value,
)


@dataclass(frozen=True)
class KeepNewest:
    """Whatever their age, the newest ``setting`` rows (among the rule's ``only``) per ``per`` stay."""

    per: str
    setting: str

    def count(self, settings: Settings) -> int:
        return int(getattr(settings, self.setting))


@dataclass(frozen=True)
class Child:
    """Rows of ``model`` whose ``column`` names a pruned parent row go with it (first)."""

    model: type[Base]
    column: str

    @property
    def table(self) -> Table:
        return cast(Table, self.model.__table__)


@dataclass(frozen=True)
class Rule:
    """Rows of ``model`` older than ``settings.<days>`` days go (0 days: they stay for ever).

    ``order`` is an indexed column of ``new_id(prefix)`` ids (its age and its walking order);
    ``only`` limits pruning to rows whose columns hold one of the given values (finished states),
    ``only_set`` to rows whose columns are not null (a dispatched event);
    ``keep_newest`` protects the newest rows per owner; ``children`` go with their parent.
    """

    model: type[Base]
    order: str
    prefix: str
    days: str
    only: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    only_set: tuple[str, ...] = ()
    keep_newest: KeepNewest | None = None
    children: tuple[Child, ...] = ()
    key: str = "id"

    @property
    def table(self) -> Table:
        return cast(Table, self.model.__table__)

    @property
    def name(self) -> str:
        return self.table.name

    def retention_days(self, settings: Settings) -> float:
        return float(getattr(settings, self.days))


RULES: tuple[Rule, ...] = (
    # the idempotency window of x-tov-delivery-id: a repeat after it is a new callback
    Rule(CallbackDelivery, order="activity_id", prefix="act", days="callback_dedup_days"),
    Rule(Activity, order="id", prefix="act", days="activity_retention_days"),
    Rule(
        WebhookDelivery,
        order="id",
        prefix="msg",
        days="webhook_retention_days",
        only={"state": FINISHED_DELIVERY_STATES},
        children=(Child(WebhookAttempt, "delivery_id"),),
    ),
    Rule(
        SyncRun,
        order="id",
        prefix="run",
        days="sync_run_retention_days",
        only={"state": FINISHED_SYNC_STATES},
        keep_newest=KeepNewest("connection_id", "sync_runs_kept_per_connection"),
    ),
    Rule(
        ActionRun,
        order="id",
        prefix="arun",
        days="action_run_retention_days",
        only={"state": FINISHED_ACTION_STATES},
        keep_newest=KeepNewest("connection_id", "action_runs_kept_per_connection"),
    ),
    # the dispatcher has queued what they caused; a pending one (not dispatched yet) stays
    Rule(
        PlatformEvent,
        order="id",
        prefix="pev",
        days="platform_event_retention_days",
        only_set=("dispatched_at",),
    ),
)
