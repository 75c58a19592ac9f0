"""Graph analysis: upward rank, the executor's critical-path ordering."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ._graph import TaskGraph
from ._task import Task

__all__ = ["DEFAULT_COST", "upward_ranks"]

DEFAULT_COST = 1.0
"""Seconds assumed for a task that states no cost estimate."""


def upward_ranks(
    graph: TaskGraph, cost_of: Callable[[Task], float] | None = None
) -> dict[Hashable, float]:
    """Return each task's upward rank: its cost plus the longest path to an exit.

    This is HEFT's ``rank_u`` with zero communication cost. Tasks on the
    critical path have the largest ranks, so running higher ranks first keeps
    the critical path moving.
    """
    cost = cost_of or _stated_cost
    ranks: dict[Hashable, float] = {}
    for tid in reversed(graph.topological_order()):
        below = max((ranks[child] for child in graph.dependents(tid)), default=0.0)
        ranks[tid] = cost(graph[tid]) + below
    return ranks


def _stated_cost(task: Task) -> float:
    return DEFAULT_COST if task.cost is None else task.cost
