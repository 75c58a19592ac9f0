"""Graph analysis: upward and downward ranks, and the Critical Path Method.

Every function here takes the same cost options. A task's cost is
``cost_of(task)`` if ``cost_of`` is given, else the task's own ``cost``, else
the estimate of the ``costs`` model, else :data:`DEFAULT_COST`. An edge cost
``edge_cost(parent, child)`` is a delay between the parent's finish and the
child's start, such as the communication cost in HEFT (Heterogeneous Earliest
Finish Time) scheduling. Without ``edge_cost``, every edge costs zero.

The arithmetic starts from zero and only adds, subtracts and compares, so
costs given as ``int`` or ``fractions.Fraction`` give exact results. Float
costs carry float rounding error, so a value that should be zero can come out
as ``1e-16``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ._costs import DEFAULT_COST, CostModel, check_seconds
from ._graph import TaskGraph
from ._task import Task

__all__ = ["DEFAULT_COST", "CriticalPath", "critical_path", "downward_ranks", "upward_ranks"]

_Delay = Callable[[Hashable, Hashable], float]
"""Edge cost by parent id and child id."""


def upward_ranks(
    graph: TaskGraph,
    cost_of: Callable[[Task], float] | None = None,
    *,
    costs: CostModel | None = None,
    edge_cost: Callable[[Task, Task], float] | None = None,
) -> dict[Hashable, float]:
    """Return each task's upward rank: its cost plus the longest path to an exit.

    This is HEFT's ``rank_u``, also called the b-level. Tasks on the critical
    path have the largest ranks, so running higher ranks first keeps the
    critical path moving. Costs are resolved as the module docstring states.

    Example:
        >>> from dragonscale_lc.runtime import Task, TaskGraph, upward_ranks
        >>> graph = TaskGraph([Task(id="a", fn=print, cost=2.0),
        ...                    Task(id="b", fn=print, cost=3.0, dependencies={"a"})])
        >>> upward_ranks(graph)
        {'b': 3.0, 'a': 5.0}
    """
    order = graph.topological_order()
    weights = _task_costs(graph, order, _cost_function(cost_of, costs))
    return _upward(graph, order, weights, _delay_function(graph, edge_cost))


def downward_ranks(
    graph: TaskGraph,
    cost_of: Callable[[Task], float] | None = None,
    *,
    costs: CostModel | None = None,
    edge_cost: Callable[[Task, Task], float] | None = None,
) -> dict[Hashable, float]:
    """Return each task's downward rank: the longest path from an entry to its start.

    This is HEFT's ``rank_d``, also called the t-level. It excludes the
    task's own cost, so it equals the task's earliest start. Costs are
    resolved as the module docstring states.

    Example:
        >>> from dragonscale_lc.runtime import Task, TaskGraph, downward_ranks
        >>> graph = TaskGraph([Task(id="a", fn=print, cost=2.0),
        ...                    Task(id="b", fn=print, cost=3.0, dependencies={"a"})])
        >>> downward_ranks(graph)
        {'a': 0.0, 'b': 2.0}
    """
    order = graph.topological_order()
    weights = _task_costs(graph, order, _cost_function(cost_of, costs))
    return _downward(graph, order, weights, _delay_function(graph, edge_cost))


@dataclass(frozen=True, slots=True)
class CriticalPath:
    """The Critical Path Method's schedule of a graph, given unlimited workers.

    Times are in the unit of the costs (seconds), measured from the start of
    the graph. Every mapping has one entry per task id and is read-only.

    Attributes:
        length: Duration of the whole graph: the maximum earliest finish,
            which is also the length of :attr:`path`.
        path: Ids of one longest path, from an entry task to an exit task.
            :func:`critical_path` documents which path it picks when there are
            several.
        earliest_start: The earliest time each task can start: the downward
            rank.
        earliest_finish: Earliest start plus the task's cost.
        latest_start: The latest time each task can start without delaying
            the end: ``length`` minus the upward rank.
        latest_finish: Latest start plus the task's cost.
        total_float: Latest start minus earliest start: how long a task can
            slip without delaying the end. Zero on every critical path.
        free_float: How long a task can slip without delaying the earliest
            start of any dependent, or the end for an exit task. It never
            exceeds the total float.
    """

    length: float
    path: tuple[Hashable, ...]
    earliest_start: Mapping[Hashable, float]
    earliest_finish: Mapping[Hashable, float]
    latest_start: Mapping[Hashable, float]
    latest_finish: Mapping[Hashable, float]
    total_float: Mapping[Hashable, float]
    free_float: Mapping[Hashable, float]


def critical_path(
    graph: TaskGraph,
    cost_of: Callable[[Task], float] | None = None,
    *,
    costs: CostModel | None = None,
    edge_cost: Callable[[Task, Task], float] | None = None,
) -> CriticalPath:
    """Schedule ``graph`` by the Critical Path Method and return its critical path.

    Costs are resolved as the module docstring states. A task starts when
    every dependency has finished and each edge's cost has elapsed, so an
    edge cost counts toward the path length but belongs to no task's float.

    When several paths are critical, ties go to the task listed first: the
    path starts at the first critical entry task of
    ``graph.topological_order()``, which lists entry tasks in the order they
    were added. At each step it continues with the first critical task of
    ``graph.dependents()``, which lists children in the order their edges
    were added. So the same graph always gives the same path. An empty graph
    has length 0 and an empty path.

    Example:
        >>> from dragonscale_lc.runtime import Task, TaskGraph, critical_path
        >>> graph = TaskGraph([
        ...     Task(id="A", fn=print, cost=3),
        ...     Task(id="B", fn=print, cost=2),
        ...     Task(id="C", fn=print, cost=4, dependencies={"A", "B"}),
        ...     Task(id="D", fn=print, cost=2, dependencies={"B"}),
        ... ])
        >>> schedule = critical_path(graph)
        >>> schedule.path, schedule.length, schedule.total_float["D"]
        (('A', 'C'), 7, 3)
    """
    order = graph.topological_order()
    weights = _task_costs(graph, order, _cost_function(cost_of, costs))
    delay = _delay_function(graph, edge_cost)
    starts = _downward(graph, order, weights, delay)
    ranks = _upward(graph, order, weights, delay)
    edge_delay = delay or _no_delay

    finishes = {tid: starts[tid] + weights[tid] for tid in order}
    length = max(finishes.values(), default=0.0)
    latest_starts = {tid: length - ranks[tid] for tid in order}
    latest_finishes = {tid: latest_starts[tid] + weights[tid] for tid in order}
    total_floats = {tid: latest_starts[tid] - starts[tid] for tid in order}
    free_floats = _free_floats(
        graph, starts=starts, finishes=finishes, length=length, delay=edge_delay
    )

    return CriticalPath(
        length=length,
        path=_trace_path(graph, order, ranks, edge_delay),
        earliest_start=MappingProxyType(starts),
        earliest_finish=MappingProxyType(finishes),
        latest_start=MappingProxyType(latest_starts),
        latest_finish=MappingProxyType(latest_finishes),
        total_float=MappingProxyType(total_floats),
        free_float=MappingProxyType(free_floats),
    )


def _upward(
    graph: TaskGraph, order: list[Hashable], weights: dict[Hashable, float], delay: _Delay | None
) -> dict[Hashable, float]:
    ranks: dict[Hashable, float] = {}
    # The graph's own dependents lists, read without copies: the executor
    # ranks every graph it runs, so this loop is on its hot path.
    dependents = graph._dependents
    for tid in reversed(order):
        below: float = 0
        for child in dependents.get(tid, ()):
            rank = ranks[child] if delay is None else delay(tid, child) + ranks[child]
            # A comparison rather than max(), which costs a call per edge.
            # Ranks are never NaN, so both keep the same value.
            if rank > below:  # noqa: PLR1730
                below = rank
        ranks[tid] = weights[tid] + below
    return ranks


def _downward(
    graph: TaskGraph, order: list[Hashable], weights: dict[Hashable, float], delay: _Delay | None
) -> dict[Hashable, float]:
    starts: dict[Hashable, float] = {}
    for tid in order:
        parents = graph[tid].dependencies
        # `weights[tid] * 0` starts entries at zero in the costs' own number
        # type: 0.0 for floats, Fraction(0) for fractions.
        zero = weights[tid] * 0
        if delay is None:
            starts[tid] = max((starts[p] + weights[p] for p in parents), default=zero)
        else:
            arrivals = (starts[p] + weights[p] + delay(p, tid) for p in parents)
            starts[tid] = max(arrivals, default=zero)
    return starts


def _free_floats(
    graph: TaskGraph,
    *,
    starts: dict[Hashable, float],
    finishes: dict[Hashable, float],
    length: float,
    delay: _Delay,
) -> dict[Hashable, float]:
    floats: dict[Hashable, float] = {}
    for tid, finish in finishes.items():
        children = graph.dependents(tid)
        slack_end = min((starts[child] - delay(tid, child) for child in children), default=length)
        floats[tid] = slack_end - finish
    return floats


def _trace_path(
    graph: TaskGraph, order: list[Hashable], ranks: dict[Hashable, float], delay: _Delay
) -> tuple[Hashable, ...]:
    # Following the maximum upward rank from the entry with the maximum rank
    # gives a longest path without comparing floats for equality, which
    # rounding would break. `max` returns the first of equal items, which is
    # the documented tie-break.
    entries = [tid for tid in order if not graph[tid].dependencies]
    if not entries:
        return ()
    path = [max(entries, key=ranks.__getitem__)]
    while children := graph.dependents(path[-1]):
        path.append(_next_on_path(path[-1], children, ranks, delay))
    return tuple(path)


def _next_on_path(
    tid: Hashable, children: tuple[Hashable, ...], ranks: dict[Hashable, float], delay: _Delay
) -> Hashable:
    return max(children, key=lambda child: delay(tid, child) + ranks[child])


def _cost_function(
    cost_of: Callable[[Task], float] | None, costs: CostModel | None
) -> Callable[[Task], float]:
    if cost_of is not None:
        return cost_of
    if costs is not None:
        return costs.estimate  # CostModel.estimate checks the task's own cost first
    return _stated_cost


def _stated_cost(task: Task) -> float:
    return DEFAULT_COST if task.cost is None else task.cost


def _task_costs(
    graph: TaskGraph, order: list[Hashable], cost: Callable[[Task], float]
) -> dict[Hashable, float]:
    weights: dict[Hashable, float] = {}
    task_by_id = graph._tasks  # no method call per task: the executor ranks every graph it runs
    for tid in order:
        value = cost(task_by_id[tid])
        # This comparison, false for NaN and infinity too, skips a call per task.
        if not 0 <= value < math.inf:
            check_seconds(value, f"cost of task {tid!r}")
        weights[tid] = value
    return weights


def _delay_function(
    graph: TaskGraph, edge_cost: Callable[[Task, Task], float] | None
) -> _Delay | None:
    # None rather than a function returning zero, so the passes without edge
    # costs (the executor ranks every run) skip one call per edge.
    if edge_cost is None:
        return None

    # Each edge is looked up by every pass, so evaluate and check the user's
    # function once per edge.
    table: dict[tuple[Hashable, Hashable], float] = {}
    for task in graph:
        for parent in task.dependencies:
            value = edge_cost(graph[parent], task)
            check_seconds(value, f"cost of edge {parent!r} -> {task.id!r}")
            table[parent, task.id] = value
    return lambda parent, child: table[parent, child]


def _no_delay(parent: Hashable, child: Hashable) -> float:
    return 0
