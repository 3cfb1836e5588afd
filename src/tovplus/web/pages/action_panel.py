"""The data of the connection page's actions section: each action's form (with what was typed
and its errors when it was refused) and the latest runs in words. The routes that act on it are
``connection_actions``; ``connection`` renders the page that holds it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tovplus.services import actions
from tovplus.services.actions import ActionRunModel
from tovplus.services.catalog import ActionSpecModel, adapter_view
from tovplus.web import forms, lookups
from tovplus.web.urls import connection_url
from tovplus.web.visit import Readable, Visit

RUNS_SHOWN = 10
_STATES = {"queued": "Waiting", "running": "Running", "succeeded": "Succeeded", "failed": "Failed"}
_EVENTS = {"guest.created": "a guest was added", "guest.updated": "a guest was changed"}


@dataclass(frozen=True, slots=True)
class RunLine:
    """One run as the page says it, in words."""

    id: str
    state: str
    state_label: str
    label: str
    trigger: str
    when: str
    attempts: int
    outcome: str | None
    failed: bool


@dataclass(frozen=True, slots=True)
class ActionForm:
    """One action's form sent back with what was typed and why it was refused."""

    action_key: str
    values: dict[str, Any]
    errors: forms.FormErrors


@dataclass(frozen=True, slots=True)
class ActionPanel:
    """What the actions partial shows."""

    specs: list[ActionSpecModel]
    runs: list[RunLine]
    active: bool
    poll_url: str
    missing: dict[str, list[str]]
    #: Sent with each form as its idempotency key: a form sent twice queues one run.
    form_key: str
    #: The form of the action whose input was refused, if any.
    refused: ActionForm | None = None

    def values_for(self, action_key: str) -> dict[str, Any]:
        """What to put in the inputs of ``action_key``'s form (empty unless it was refused)."""
        return self.refused.values if self.refused and self.refused.action_key == action_key else {}

    def errors_for(self, action_key: str) -> forms.FormErrors:
        """The errors to show on ``action_key``'s form."""
        if self.refused and self.refused.action_key == action_key:
            return self.refused.errors
        return forms.FormErrors()


def _trigger(trigger: str, names: dict[str, str]) -> str:
    if trigger.startswith("event:"):
        event = trigger.removeprefix("event:")
        return "By itself: " + _EVENTS.get(event, event)
    return "Asked by " + names.get(trigger, trigger)


def _line(run: ActionRunModel, labels: dict[str, str], names: dict[str, str]) -> RunLine:
    outcome = run.error if run.state == "failed" else run.summary
    if run.state == "queued" and run.error:
        outcome = f"Attempt {run.attempts} failed: {run.error} Trying again soon."
    return RunLine(
        id=run.id,
        state=run.state,
        state_label=_STATES.get(run.state, run.state),
        label=labels.get(run.action_key, run.action_key),
        trigger=_trigger(run.trigger, names),
        when=run.finished_at or run.started_at or run.created_at,
        attempts=run.attempts,
        outcome=outcome,
        failed=run.state == "failed",
    )


def action_panel(v: Visit, view: Readable, refused: ActionForm | None = None) -> ActionPanel | None:
    """The section's data for a connection whose adapter has actions (``None`` otherwise)."""
    adapter = v.rt.registry.find(view["integration_key"])
    if adapter is None or not adapter.actions:
        return None
    occasion_id, connection_id = view["occasion_id"], view["id"]
    specs = list(adapter_view(adapter).actions)
    page_ = actions.list_runs(v.rt, v.signed_in, occasion_id, connection_id, limit=RUNS_SHOWN)
    names = lookups.actor_names(v.rt, [r.trigger for r in page_.items])
    labels = {s.key: s.label for s in specs}
    granted = {g["action_key"] for g in view["grants"]}
    return ActionPanel(
        specs=specs,
        runs=[_line(r, labels, names) for r in page_.items],
        active=any(r.state in ("queued", "running") for r in page_.items),
        poll_url=connection_url(occasion_id, connection_id) + "/action-runs.json",
        missing={s.key: [k for k in s.requires if k not in granted] for s in specs},
        form_key="page-" + secrets.token_urlsafe(12),
        refused=refused,
    )
