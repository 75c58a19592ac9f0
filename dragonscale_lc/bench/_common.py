"""Pieces shared by the benchmarks: random graphs, critical paths, timing."""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

__all__ = ["Dag", "critical_path", "random_dag", "timed", "topological_order"]

_T = TypeVar("_T")
_NodeT = TypeVar("_NodeT", bound=Hashable)

Dag = tuple[tuple[int, ...], ...]
"""Parents of each node of a graph with nodes ``0 .. n-1``; each parent of ``i`` is below ``i``."""


def random_dag(nodes: int, *, seed: int = 0, max_parents: int = 3) -> Dag:
    """Return a random DAG of ``nodes`` nodes, each with 0 to ``max_parents`` earlier parents.

    The same ``nodes``, ``seed`` and ``max_parents`` always give the same graph.
    Parents are drawn uniformly from all earlier nodes, so the graph is
    acyclic by construction.

    Example:
        >>> random_dag(4, seed=1)[0]
        ()
    """
    if nodes < 0:
        raise ValueError(f"nodes must be 0 or more, got {nodes}")
    rng = random.Random(seed)
    parents = []
    for index in range(nodes):
        count = rng.randint(0, min(max_parents, index))
        parents.append(tuple(sorted(rng.sample(range(index), count))))
    return tuple(parents)


def critical_path(
    durations: Mapping[_NodeT, float],
    parents: Mapping[_NodeT, Sequence[_NodeT]],
    order: Iterable[_NodeT],
) -> float:
    """Return the length of the longest path, summing ``durations`` along it.

    ``order`` lists every node after its parents (a topological order).
    """
    finish: dict[_NodeT, float] = {}
    for node in order:
        start = max((finish[parent] for parent in parents[node]), default=0.0)
        finish[node] = start + durations[node]
    return max(finish.values(), default=0.0)


def topological_order(parents: Mapping[_NodeT, Sequence[_NodeT]]) -> list[_NodeT]:
    """Return every node after its parents (Kahn's algorithm, ties in mapping order).

    Raises:
        ValueError: A parent is not a key of ``parents``, or the graph has a cycle.
    """
    waiting = {node: len(node_parents) for node, node_parents in parents.items()}
    children: dict[_NodeT, list[_NodeT]] = {node: [] for node in parents}
    for node, node_parents in parents.items():
        for parent in node_parents:
            if parent not in children:
                raise ValueError(f"node {node!r} has an unknown parent {parent!r}")
            children[parent].append(node)

    order = [node for node, count in waiting.items() if count == 0]
    for node in order:  # the list grows while it is walked
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                order.append(child)

    if len(order) < len(parents):
        stuck = [repr(node) for node, count in waiting.items() if count]
        raise ValueError(
            f"the graph has a cycle: {len(stuck)} nodes are on it or after it, "
            f"among them {', '.join(stuck[:5])}"
        )
    return order


async def timed(run: Callable[[], Awaitable[_T]]) -> tuple[float, _T]:
    """Await ``run()`` and return the wall-clock seconds it took, and its result.

    A full garbage collection runs first, so that garbage left by the previous
    measurement is not collected, and charged, during this one.
    """
    gc.collect()
    start = time.perf_counter()
    result = await run()
    return time.perf_counter() - start, result
