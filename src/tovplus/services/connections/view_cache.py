"""Connection views kept per process under their fingerprints, for the lists.

The planner's overview and the admin list used to build every listed connection's view on every
request; loading the rows, their secrets, keys, grants and OAuth grant and making the models took
two thirds of such a request (docs/benchmarks.md, "Lists"). Now a list selects, beside each
connection's id, its :func:`~.fingerprint.view_fingerprint`, and a view built earlier under the
same fingerprint (and the same installed adapter) is used as it is: equal fingerprints mean equal
inputs, whichever process wrote them. Only the others are loaded and built, in one go.

Two things keep that exact:

* the list reads in one snapshot (:meth:`~tovplus.db.session.Database.snapshot`), so the views
  built for the misses come from the data their fingerprints were computed from;
* the callback-rejection counts are a sliding window of the last hour, not a stored input: they
  are read for every list and set on the views that differ.

The cache holds at most :data:`CAPACITY` views per runtime (least recently listed dropped first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tovplus.db.models import Connection
from tovplus.db.sql import one_of
from tovplus.integrations.contract import Adapter
from tovplus.runtime import Runtime
from tovplus.services import callbacks
from tovplus.services.connections.fingerprint import view_fingerprint
from tovplus.services.connections.views import ConnectionModel, build_views, rejections_view

#: Views kept per runtime: a planner's overview or a few admin pages several times over.
CAPACITY = 2048


class ViewCache:
    """Up to ``capacity`` views by connection id, each with its fingerprint and adapter; thread-safe."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[str, Adapter | None, ConnectionModel]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def hit(self, connection_id: str, fingerprint: str, adapter: Adapter | None) -> ConnectionModel | None:
        """The view kept for exactly this fingerprint and adapter, else ``None``."""
        with self._lock:
            entry = self._entries.get(connection_id)
            if entry is None or entry[0] != fingerprint or entry[1] is not adapter:
                return None
            self._entries.move_to_end(connection_id)
            return entry[2]

    def keep(
        self, connection_id: str, fingerprint: str, adapter: Adapter | None, view: ConnectionModel
    ) -> None:
        """Keep ``view`` under ``fingerprint``, dropping the least recently used past the capacity."""
        with self._lock:
            self._entries[connection_id] = (fingerprint, adapter, view)
            self._entries.move_to_end(connection_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)


_caches: WeakKeyDictionary[Runtime, ViewCache] = WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_of(rt: Runtime) -> ViewCache:
    """The runtime's view cache (made on first use)."""
    with _caches_lock:
        cache = _caches.get(rt)
        if cache is None:
            cache = _caches[rt] = ViewCache()
        return cache


def listing(query: Select[Any]) -> Select[str, str, str, str]:
    """``query`` (a ``select(Connection)`` with its conditions and order) as the lists read it:
    each connection's id, fingerprint, integration key and callback rejections of now."""
    return query.with_only_columns(
        Connection.id,
        view_fingerprint(),
        Connection.integration_key,
        callbacks.RecentRejections(),
        maintain_column_froms=True,
    )


def read_listing(
    session: Session, query: Select[str, str, str, str], params: Mapping[str, Any] | None = None
) -> Sequence[Any]:
    """The rows of a :func:`listing` query (``params``: its own parameters, if it has any)."""
    return session.execute(query, {**(params or {}), **callbacks.window_params()}).all()


def listed_views(rt: Runtime, session: Session, listed: Sequence[Any]) -> list[ConnectionModel]:
    """The views of ``listed`` (rows of a :func:`listing` query), in order: kept ones reused, the
    others built in one go and kept; each with the callback rejections the row holds."""
    cache = cache_of(rt)
    rejections: dict[str, callbacks.RejectionCounts] = {}
    found: dict[str, ConnectionModel] = {}
    missing: dict[str, tuple[str, Adapter | None]] = {}
    for connection_id, fingerprint, integration_key, rejected in listed:
        rejections[connection_id] = callbacks.counts_from(rejected)
        adapter = rt.registry.find(integration_key)
        view = cache.hit(connection_id, fingerprint, adapter)
        if view is None:
            missing[connection_id] = (fingerprint, adapter)
        else:
            found[connection_id] = view
    if missing:
        rows = session.scalars(select(Connection).where(one_of(Connection.id, list(missing)))).all()
        for view in build_views(rt, session, rows, rejections=rejections):
            cache.keep(view.id, *missing[view.id], view)
            found[view.id] = view
    return [_with_rejections(found[cid], counts) for cid, counts in rejections.items()]


def _with_rejections(view: ConnectionModel, counts: callbacks.RejectionCounts) -> ConnectionModel:
    current = rejections_view(counts)
    if view.callback_rejections is current or view.callback_rejections == current:
        return view
    return view.model_copy(update={"callback_rejections": current})
