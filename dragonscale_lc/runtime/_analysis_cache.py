"""Analysis cache: a graph's upward ranks, kept by its structural hash and cost estimates."""

from __future__ import annotations

import collections
from collections.abc import Hashable, Mapping

from .._errors import UsageError
from ._analysis import upward_ranks
from ._costs import CostModel
from ._graph import TaskGraph

__all__ = ["AnalysisCache"]


class AnalysisCache:
    """Upward ranks of graphs already analysed, least recently used first out.

    The key is the graph's :meth:`~TaskGraph.structure_hash` (ids, edges and
    stated costs) together with the current estimate of every tool whose
    tasks state no cost. A graph run again, such as a scheduled job's, gets
    its ranks without a pass over its edges, and a changed estimate (the
    cost model learned from a run) computes them afresh.

    The hash is cached by the graph per version, so lookups pay off for a
    :class:`TaskGraph` that is reused; for a graph built anew from tasks,
    computing the hash costs about as much as the ranks.

    Args:
        maxsize: Graphs whose ranks are kept.

    Example:
        >>> from dragonscale_lc.runtime import AnalysisCache, CostModel, Task, TaskGraph
        >>> graph = TaskGraph([Task(id="a", fn=print, cost=2.0)])
        >>> cache = AnalysisCache()
        >>> cache.upward_ranks(graph, CostModel()) is cache.upward_ranks(graph, CostModel())
        True
    """

    def __init__(self, maxsize: int = 64) -> None:
        if maxsize < 1:
            raise UsageError(f"maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._ranks: collections.OrderedDict[tuple[object, ...], Mapping[Hashable, float]] = (
            collections.OrderedDict()
        )
        # Names of the tools whose tasks state no cost, by structure hash.
        self._unstated: dict[str, tuple[str, ...]] = {}

    def upward_ranks(self, graph: TaskGraph, costs: CostModel) -> Mapping[Hashable, float]:
        """Return the graph's upward ranks under ``costs``, computing them on a miss.

        The mapping returned is shared between callers; do not change it.
        """
        digest = graph.structure_hash()
        names = self._unstated.get(digest)
        if names is None:
            names = tuple(sorted({task.name for task in graph if task.cost is None}))
            self._unstated[digest] = names
        key = (digest, *(costs.average(name) for name in names), costs.default)
        ranks = self._ranks.get(key)
        if ranks is not None:
            self.hits += 1
            self._ranks.move_to_end(key)
            return ranks
        self.misses += 1
        ranks = upward_ranks(graph, costs=costs)
        self._ranks[key] = ranks
        while len(self._ranks) > self.maxsize:
            evicted, _ = self._ranks.popitem(last=False)
            if not any(other[0] == evicted[0] for other in self._ranks):
                self._unstated.pop(str(evicted[0]), None)
        return ranks
