"""The scripted fake partner and the hook runners, under the name they were first published as.

:mod:`tovplus.testing.fake_partner` holds :class:`FakePartner` and its answers;
:mod:`tovplus.testing.hooks` runs an adapter's hooks the way the framework does.
"""

from tovplus.testing.fake_partner import Answer, FakePartner, Replies, Reply
from tovplus.testing.hooks import (
    CONNECTION_ID,
    OCCASION_ID,
    callback_context,
    default_scope,
    records_by_id,
    run_callback,
    run_sync,
    run_validation,
    sync_context,
)

__all__ = [
    "CONNECTION_ID",
    "OCCASION_ID",
    "Answer",
    "FakePartner",
    "Replies",
    "Reply",
    "callback_context",
    "default_scope",
    "records_by_id",
    "run_callback",
    "run_sync",
    "run_validation",
    "sync_context",
]
