"""Retention: bounded tables. Rules say what goes when; the pruner deletes it in small batches.

* :data:`RULES` (``rules.py``): one declaration per table that records work;
* :func:`plan` / :func:`prune` (``pruning.py``): what would go / delete it (``tovplus db prune``);
* :class:`Pruner` (``schedule.py``): the leading process's periodic, time-budgeted passes;
* :func:`fold_counts` (``counts.py``): the connection counts' delta rows folded, each tick.
"""

from tovplus.services.retention.counts import fold_counts
from tovplus.services.retention.pruning import PrunePass, PruneReport, TableCount, cutoff, plan, prune
from tovplus.services.retention.rules import RULES, Child, KeepNewest, Rule
from tovplus.services.retention.schedule import Pruner

__all__ = [
    "RULES",
    "Child",
    "KeepNewest",
    "PrunePass",
    "PruneReport",
    "Pruner",
    "Rule",
    "TableCount",
    "cutoff",
    "fold_counts",
    "plan",
    "prune",
]
