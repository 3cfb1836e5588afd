"""Folding the connection counts' delta rows (the admin summary's counts, migration 0011).

Triggers append ``+1``/``-1`` rows to ``connection_counts`` as connections change
(``services.connections.counts`` reads their sums); the leading process folds them here, on
each scheduler tick (``schedule.Pruner``), into one row per (state, health), so a read sums a
few rows, not every change since the last fold.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, func, insert, select

from tovplus.db.models import ConnectionCount
from tovplus.db.session import Database

#: Fold once there are more rows than this (16 pairs at most, once folded).
FOLD_ABOVE = 64


def fold_counts(db: Database, *, above: int = FOLD_ABOVE) -> int:
    """Replace the delta rows by one row per pair once there are more than ``above``; returns
    how many rows were folded (0 when there were too few to bother).

    ``DELETE … RETURNING`` takes exactly the rows it removes, so a row a concurrent transaction
    has not committed yet is neither removed nor summed (it is folded next time), and two
    folds at once never sum the same row twice: the count stays exact.
    """
    with db.read() as session:
        rows = session.scalar(select(func.count()).select_from(ConnectionCount)) or 0
    if rows <= above:
        return 0
    with db.write() as session:
        taken = session.execute(
            delete(ConnectionCount)
            .returning(ConnectionCount.state, ConnectionCount.health, ConnectionCount.n)
            .execution_options(synchronize_session=False)
        ).all()
        sums: Counter[tuple[str, str]] = Counter()
        for state, health, n in taken:
            sums[(state, health)] += n
        folded = [{"state": s, "health": h, "n": n} for (s, h), n in sorted(sums.items()) if n]
        if folded:
            session.execute(insert(ConnectionCount), folded)
        return len(taken)
