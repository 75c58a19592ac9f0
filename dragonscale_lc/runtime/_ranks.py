"""IncrementalRanks: upward ranks kept up to date as a graph changes.

A task's upward rank is its cost plus the largest rank among its dependents,
so a change can only alter the ranks of the tasks it touches and of their
ancestors. After each batch of deltas, the tasks whose dependents changed are
recomputed, deepest first, and a task's dependencies are revisited only when
its rank actually moved.

Deepest first needs an order in which every dependent comes before its
dependencies. Each task keeps a level, an integer larger than the level of
every task it depends on. An added task takes one more than its deepest
dependency; an added edge lifts the child (and, where needed, its
descendants) below the parent. Levels never go down, since a drop leaves them
valid, so they are kept without a topological sort per change.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping

from ._analysis import upward_ranks
from ._costs import DEFAULT_COST, CostModel, check_seconds
from ._delta import Delta, DeltaKind
from ._graph import TaskGraph
from ._task import Task

__all__ = ["IncrementalRanks"]


class IncrementalRanks(Mapping[Hashable, float]):
    """A graph's upward ranks, brought up to date by :meth:`refresh` after changes.

    Equal to :func:`upward_ranks` with the same cost options after every
    refresh. Costs are read when a task is recomputed, so if they change
    (a :class:`CostModel` that learned more), call :meth:`recompute`.

    Args:
        graph: The graph to follow through its delta log.
        cost_of: Cost of a task, as for :func:`upward_ranks`.
        costs: Cost model consulted when ``cost_of`` is not given.
        edge_cost: Delay between a parent's finish and a child's start.

    Attributes:
        recomputed: How many ranks the last :meth:`refresh` or
            :meth:`recompute` calculated; a refresh after a local change
            calculates far fewer than the graph has.

    Example:
        >>> from dragonscale_lc.runtime import IncrementalRanks, Task, TaskGraph
        >>> graph = TaskGraph([Task(id="a", fn=print, cost=2.0)])
        >>> ranks = IncrementalRanks(graph)
        >>> graph.add(Task(id="b", fn=print, cost=3.0, dependencies={"a"}))
        >>> ranks.refresh()
        2
        >>> ranks["a"]
        5.0
    """

    def __init__(
        self,
        graph: TaskGraph,
        cost_of: Callable[[Task], float] | None = None,
        *,
        costs: CostModel | None = None,
        edge_cost: Callable[[Task, Task], float] | None = None,
    ) -> None:
        self._graph = graph
        self._cost_of = cost_of
        self._costs = costs
        self._edge_cost = edge_cost
        self._ranks: dict[Hashable, float] = {}
        self._levels: dict[Hashable, int] = {}
        self._version = graph.version
        self.recomputed = 0
        self.recompute()

    def __getitem__(self, task_id: Hashable) -> float:
        return self._ranks[task_id]

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._ranks)

    def __len__(self) -> int:
        return len(self._ranks)

    @property
    def version(self) -> int:
        """The graph version these ranks reflect."""
        return self._version

    def recompute(self) -> int:
        """Recompute every rank from scratch and return how many there are."""
        graph = self._graph
        self._ranks = upward_ranks(
            graph, self._cost_of, costs=self._costs, edge_cost=self._edge_cost
        )
        self._levels = {}
        for tid in graph.topological_order():
            self._levels[tid] = self._level_below(graph[tid].dependencies)
        self._version = graph.version
        self.recomputed = len(self._ranks)
        return self.recomputed

    def refresh(self) -> int:
        """Apply the changes since the last refresh and return how many ranks were recalculated.

        If the graph compacted its log past the version these ranks reflect,
        the deltas are gone and every rank is recomputed.
        """
        graph = self._graph
        if self._version < graph.base_version:
            return self.recompute()

        dirty = self._replay(graph.deltas_since(self._version))
        self._version = graph.version
        self.recomputed = self._propagate(dirty)
        return self.recomputed

    def _replay(self, deltas: Iterable[Delta]) -> set[Hashable]:
        # Levels follow the deltas in order, so each added task finds its
        # dependencies' levels set. The result contains every task whose
        # own cost or set of dependents changed. Some may have been dropped since.
        levels = self._levels
        dirty: set[Hashable] = set()
        for delta in deltas:
            if delta.kind is DeltaKind.ADD_TASK:
                task = delta.tasks[0]
                levels[task.id] = self._level_below(task.dependencies)
                dirty.add(task.id)
                dirty.update(task.dependencies)
            elif delta.kind is DeltaKind.ADD_EDGE:
                parent, child = delta.ids
                dirty.add(parent)
                self._lift(child, above=levels[parent])
            else:
                for task in delta.tasks:
                    levels.pop(task.id, None)
                    self._ranks.pop(task.id, None)
                    dirty.update(task.dependencies)
        return dirty

    def _level_below(self, dependencies: Iterable[Hashable]) -> int:
        return 1 + max((self._levels[dep] for dep in dependencies), default=0)

    def _lift(self, task_id: Hashable, *, above: int) -> None:
        # Walks the current graph's edges. A task met here that the replay
        # has not added yet has no level and is skipped: it takes its level
        # from its dependencies when its own delta comes.
        levels = self._levels
        stack = [(task_id, above)]
        while stack:
            tid, floor = stack.pop()
            level = levels.get(tid)
            if level is None or level > floor:
                continue
            levels[tid] = floor + 1
            stack.extend((child, floor + 1) for child in self._graph.dependents(tid))

    def _propagate(self, dirty: set[Hashable]) -> int:
        # Deepest first: every dependent of a task is settled before the task
        # is recomputed, so each task is recomputed at most once per refresh.
        graph, ranks, levels = self._graph, self._ranks, self._levels
        heap = [(-levels[tid], seq, tid) for seq, tid in enumerate(dirty) if tid in graph]
        heapq.heapify(heap)
        queued = {tid for _, _, tid in heap}
        seq = len(dirty)
        count = 0
        while heap:
            _, _, tid = heapq.heappop(heap)
            rank = self._rank_of(tid)
            count += 1
            if tid in ranks and ranks[tid] == rank:
                continue  # unchanged, so nothing above it changes either
            ranks[tid] = rank
            for parent in graph[tid].dependencies:
                if parent not in queued:
                    queued.add(parent)
                    heapq.heappush(heap, (-levels[parent], seq, parent))
                    seq += 1
        return count

    def _rank_of(self, task_id: Hashable) -> float:
        # The same sum as upward_ranks, in the same order, so both give equal
        # floats.
        graph, ranks, edge_cost = self._graph, self._ranks, self._edge_cost
        task = graph[task_id]
        children = graph.dependents(task_id)
        if edge_cost is None:
            below = max((ranks[child] for child in children), default=0)
        else:
            below = max(
                (_delay(edge_cost, task, graph[child]) + ranks[child] for child in children),
                default=0,
            )
        return self._cost(task) + below

    def _cost(self, task: Task) -> float:
        if self._cost_of is not None:
            value = self._cost_of(task)
        elif self._costs is not None:
            value = self._costs.estimate(task)
        else:
            value = DEFAULT_COST if task.cost is None else task.cost
        check_seconds(value, f"cost of task {task.id!r}")
        return value


def _delay(edge_cost: Callable[[Task, Task], float], parent: Task, child: Task) -> float:
    value = edge_cost(parent, child)
    check_seconds(value, f"cost of edge {parent.id!r} -> {child.id!r}")
    return value
