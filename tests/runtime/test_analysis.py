"""Graph analysis: the Critical Path Method, upward and downward ranks, and CostModel.

Two worked examples anchor the exact values:

* The textbook CPM example: tasks A (3 s), B (2 s), C (4 s) and D (2 s) with
  edges A→C, B→C and B→D. Every schedule value below was worked out by hand.
* The 10-task DAG of Fig. 2 in H. Topcuoglu, S. Hariri and M.-Y. Wu,
  "Performance-effective and low-complexity task scheduling for heterogeneous
  computing", IEEE Transactions on Parallel and Distributed Systems 13(3),
  2002. The computation costs on its three processors and the edge
  (communication) costs are copied from the test data of the open-source
  ``heft`` package by mackncheesiest on GitHub
  (``test/canonicalgraph_task_exe_time.csv`` and
  ``test/canonicalgraph_task_connectivity.csv``). As in the paper, a task's
  cost is its mean over the processors. The expected upward ranks (rank_u of
  n1 to n10: 108, 77, 80, 80, 69, 63.333, 42.667, 35.667, 44.333, 14.667) and
  the critical path n1→n2→n9→n10 of length 108 are the values the paper gives
  for this example. Fractions keep the thirds exact, so no float ties arise.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import statistics
from collections.abc import Callable, Hashable, Iterator
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dragonscale_lc._errors import UsageError
from dragonscale_lc.runtime import (
    DEFAULT_COST,
    CostModel,
    CriticalPath,
    RunReport,
    Task,
    TaskGraph,
    TaskRecord,
    TaskStatus,
    critical_path,
    downward_ranks,
    upward_ranks,
)


def noop(*args: object, **kwargs: object) -> None:
    return None


def task(task_id: Hashable, *deps: Hashable, cost: float | None = None, name: str = "tool") -> Task:
    return Task(id=task_id, fn=noop, dependencies=frozenset(deps), cost=cost, name=name)


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


# -- the textbook CPM example ---------------------------------------------------


def textbook_graph() -> TaskGraph:
    return TaskGraph(
        [task("A", cost=3), task("B", cost=2), task("C", "A", "B", cost=4), task("D", "B", cost=2)]
    )


def test_textbook_length_and_path() -> None:
    schedule = critical_path(textbook_graph())

    assert schedule.length == 7
    assert schedule.path == ("A", "C")


def test_textbook_earliest_times() -> None:
    schedule = critical_path(textbook_graph())

    assert schedule.earliest_start == {"A": 0, "B": 0, "C": 3, "D": 2}
    assert schedule.earliest_finish == {"A": 3, "B": 2, "C": 7, "D": 4}


def test_textbook_latest_times() -> None:
    schedule = critical_path(textbook_graph())

    assert schedule.latest_start == {"A": 0, "B": 1, "C": 3, "D": 5}
    assert schedule.latest_finish == {"A": 3, "B": 3, "C": 7, "D": 7}


def test_textbook_floats() -> None:
    schedule = critical_path(textbook_graph())

    assert schedule.total_float == {"A": 0, "B": 1, "C": 0, "D": 3}
    # B can slip 1 s before the end moves, but any slip delays D's earliest start.
    assert schedule.free_float == {"A": 0, "B": 0, "C": 0, "D": 3}


def test_textbook_ranks() -> None:
    graph = textbook_graph()

    assert upward_ranks(graph) == {"A": 7, "B": 6, "C": 4, "D": 2}
    assert downward_ranks(graph) == {"A": 0, "B": 0, "C": 3, "D": 2}


# -- the HEFT paper's example ---------------------------------------------------

HEFT_COMPUTATION = {
    1: (14, 16, 9),
    2: (13, 19, 18),
    3: (11, 13, 19),
    4: (13, 8, 17),
    5: (12, 13, 10),
    6: (13, 16, 9),
    7: (7, 15, 11),
    8: (5, 11, 14),
    9: (18, 12, 20),
    10: (21, 7, 16),
}
"""Run time of each task on processors P1, P2 and P3."""

HEFT_COMMUNICATION = {
    (1, 2): 18,
    (1, 3): 12,
    (1, 4): 9,
    (1, 5): 11,
    (1, 6): 14,
    (2, 8): 19,
    (2, 9): 16,
    (3, 7): 23,
    (4, 8): 27,
    (4, 9): 23,
    (5, 9): 13,
    (6, 8): 15,
    (7, 10): 17,
    (8, 10): 11,
    (9, 10): 13,
}
"""Communication cost of each edge (parent, child)."""

HEFT_AVERAGE = {tid: Fraction(sum(costs), len(costs)) for tid, costs in HEFT_COMPUTATION.items()}

HEFT_UPWARD_RANKS = {
    1: Fraction(108),
    2: Fraction(77),
    3: Fraction(80),
    4: Fraction(80),
    5: Fraction(69),
    6: Fraction(190, 3),
    7: Fraction(128, 3),
    8: Fraction(107, 3),
    9: Fraction(133, 3),
    10: Fraction(44, 3),
}
"""The paper's ranks, which it prints to three decimals (63.333 is 190/3)."""


def heft_graph() -> TaskGraph:
    parents: dict[int, set[int]] = {tid: set() for tid in HEFT_COMPUTATION}
    for parent, child in HEFT_COMMUNICATION:
        parents[child].add(parent)
    return TaskGraph(task(tid, *sorted(parents[tid])) for tid in HEFT_COMPUTATION)


def heft_cost(t: Task) -> Fraction:
    return HEFT_AVERAGE[t.id]


def heft_edge_cost(parent: Task, child: Task) -> int:
    return HEFT_COMMUNICATION[parent.id, child.id]


def test_heft_average_costs() -> None:
    thirds = [39, 50, 43, 38, 35, 38, 33, 30, 50, 44]

    expected = {tid: Fraction(n, 3) for tid, n in enumerate(thirds, start=1)}

    assert expected == HEFT_AVERAGE


def test_heft_upward_ranks() -> None:
    ranks = upward_ranks(heft_graph(), heft_cost, edge_cost=heft_edge_cost)

    assert ranks == HEFT_UPWARD_RANKS
    assert all(isinstance(rank, Fraction) for rank in ranks.values())


def test_heft_critical_path() -> None:
    schedule = critical_path(heft_graph(), heft_cost, edge_cost=heft_edge_cost)

    assert schedule.path == (1, 2, 9, 10)
    assert schedule.length == 108


def test_heft_critical_tasks_have_rank_sum_108() -> None:
    graph = heft_graph()
    up = upward_ranks(graph, heft_cost, edge_cost=heft_edge_cost)
    down = downward_ranks(graph, heft_cost, edge_cost=heft_edge_cost)

    # CPOP's test: a task is critical when rank_u + rank_d equals the path length.
    critical = {tid for tid in HEFT_COMPUTATION if up[tid] + down[tid] == 108}

    assert critical == {1, 2, 9, 10}


def test_heft_schedule_is_consistent() -> None:
    graph = heft_graph()
    schedule = critical_path(graph, heft_cost, edge_cost=heft_edge_cost)

    zero_float = {tid for tid, slack in schedule.total_float.items() if slack == 0}

    assert zero_float == {1, 2, 9, 10}
    assert schedule.earliest_start == downward_ranks(graph, heft_cost, edge_cost=heft_edge_cost)
    assert schedule.earliest_start[2] == 13 + 18
    assert schedule.free_float[3] == 0
    assert schedule.total_float[3] == 3


# -- tie-breaks, edge cases and options ----------------------------------------


def test_tie_goes_to_task_added_first() -> None:
    first = TaskGraph([task("a", cost=1), task("b", "a", cost=1), task("c", "a", cost=1)])
    second = TaskGraph([task("a", cost=1), task("c", "a", cost=1), task("b", "a", cost=1)])

    assert critical_path(first).path == ("a", "b")
    assert critical_path(second).path == ("a", "c")


def test_tie_follows_edge_order() -> None:
    graph = TaskGraph([task("a", cost=1), task("b", cost=1), task("c", cost=1)])
    graph.add_edge("a", "c")
    graph.add_edge("a", "b")

    assert critical_path(graph).path == ("a", "c")


def test_tie_between_entries_goes_to_first() -> None:
    graph = TaskGraph([task("x", cost=2), task("y", cost=2), task("z", "y", cost=0)])

    assert critical_path(graph).path == ("x",)


def test_empty_graph() -> None:
    schedule = critical_path(TaskGraph())

    assert schedule.length == 0
    assert schedule.path == ()
    assert dict(schedule.total_float) == {}


def test_single_task() -> None:
    schedule = critical_path(TaskGraph([task("only", cost=2.5)]))

    assert schedule.length == 2.5
    assert schedule.path == ("only",)
    assert schedule.total_float == {"only": 0}
    assert schedule.free_float == {"only": 0}


def test_zero_cost_tasks() -> None:
    graph = TaskGraph([task("a", cost=0), task("b", "a", cost=0)])

    schedule = critical_path(graph)

    assert schedule.length == 0
    assert schedule.path == ("a", "b")


def test_float_costs_keep_float_zero() -> None:
    schedule = critical_path(TaskGraph([task("a", cost=0.5), task("b", "a", cost=0.25)]))

    assert schedule.earliest_start["a"] == 0.0
    assert isinstance(schedule.earliest_start["a"], float)
    assert schedule.length == 0.75


def test_edge_cost_delays_the_child() -> None:
    graph = TaskGraph([task("a", cost=1), task("b", "a", cost=1), task("c", cost=2)])

    schedule = critical_path(graph, edge_cost=lambda parent, child: 5)

    assert schedule.length == 7
    assert schedule.path == ("a", "b")
    assert schedule.earliest_start == {"a": 0, "c": 0, "b": 6}
    assert schedule.free_float == {"a": 0, "c": 5, "b": 0}


def test_default_cost_when_none_given() -> None:
    graph = TaskGraph([task("a"), task("b", "a")])

    assert critical_path(graph).length == 2 * DEFAULT_COST


def test_cost_of_overrides_task_cost() -> None:
    graph = TaskGraph([task("a", cost=100), task("b", "a", cost=100)])

    assert critical_path(graph, lambda t: 1).length == 2


def test_cost_model_fills_missing_costs() -> None:
    model = CostModel(default=0.5)
    model.observe("fetch", 4.0)
    graph = TaskGraph(
        [
            task("seen", name="fetch"),
            task("stated", "seen", cost=2.0, name="fetch"),
            task("unseen", "stated", name="parse"),
        ]
    )

    schedule = critical_path(graph, costs=model)

    assert schedule.earliest_finish == {"seen": 4.0, "stated": 6.0, "unseen": 6.5}
    assert upward_ranks(graph, costs=model) == {"unseen": 0.5, "stated": 2.5, "seen": 6.5}


def test_cost_of_overrides_cost_model() -> None:
    model = CostModel()
    model.observe("tool", 9.0)

    assert critical_path(TaskGraph([task("a")]), lambda t: 1, costs=model).length == 1


def test_negative_task_cost_rejected() -> None:
    graph = TaskGraph([task("a", cost=-1)])

    with pytest.raises(
        UsageError,
        match=exact("cost of task 'a' is -1 seconds: pass a finite number of zero or more"),
    ):
        critical_path(graph)


@pytest.mark.parametrize("analysis", [critical_path, upward_ranks, downward_ranks])
def test_nan_task_cost_rejected(analysis: Callable[..., object]) -> None:
    graph = TaskGraph([task("a", cost=math.nan)])

    with pytest.raises(
        UsageError,
        match=exact("cost of task 'a' is nan seconds: pass a finite number of zero or more"),
    ):
        analysis(graph)


def test_negative_edge_cost_rejected() -> None:
    graph = TaskGraph([task("a", cost=1), task("b", "a", cost=1)])

    with pytest.raises(
        UsageError,
        match=exact("cost of edge 'a' -> 'b' is -2 seconds: pass a finite number of zero or more"),
    ):
        critical_path(graph, edge_cost=lambda parent, child: -2)


def test_edge_cost_called_once_per_edge() -> None:
    graph = TaskGraph([task("a", cost=1), task("b", "a", cost=1), task("c", "a", "b", cost=1)])
    calls: list[tuple[Hashable, Hashable]] = []

    def edge_cost(parent: Task, child: Task) -> float:
        calls.append((parent.id, child.id))
        return 1.0

    critical_path(graph, edge_cost=edge_cost)

    assert sorted(calls) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_schedule_is_read_only() -> None:
    schedule = critical_path(textbook_graph())

    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.length = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        schedule.total_float["A"] = 5  # type: ignore[index]


# -- properties on random graphs ------------------------------------------------

Graph = tuple[TaskGraph, Callable[[Task, Task], float] | None]


@st.composite
def costed_graphs(draw: st.DrawFn) -> Graph:
    """A random DAG with integer task costs, maybe integer edge costs, in random order."""
    n = draw(st.integers(0, 9))
    tasks = []
    for i in range(n):
        deps = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        tasks.append(task(i, *deps, cost=draw(st.integers(0, 20))))
    graph = TaskGraph(draw(st.permutations(tasks)))
    if not draw(st.booleans()):
        return graph, None
    edges = {(dep, t.id): draw(st.integers(0, 10)) for t in tasks for dep in sorted(t.dependencies)}
    return graph, lambda parent, child: edges[parent.id, child.id]


def all_paths(graph: TaskGraph) -> Iterator[tuple[Hashable, ...]]:
    """Yield every path from an entry task to an exit task."""

    def extend(path: tuple[Hashable, ...]) -> Iterator[tuple[Hashable, ...]]:
        children = graph.dependents(path[-1])
        if not children:
            yield path
        for child in children:
            yield from extend((*path, child))

    for tid in graph.topological_order():
        if not graph[tid].dependencies:
            yield from extend((tid,))


def path_length(
    graph: TaskGraph,
    path: tuple[Hashable, ...],
    edge_cost: object,
    cost: Callable[[Task], float] = lambda t: t.cost or 0,
) -> float:
    total = sum(cost(graph[tid]) for tid in path)
    if callable(edge_cost):
        total += sum(edge_cost(graph[a], graph[b]) for a, b in itertools.pairwise(path))
    return total


def tie_break_key(graph: TaskGraph, path: tuple[Hashable, ...]) -> tuple[int, ...]:
    """Positions of the path's tasks in topological order, then in each parent's dependents."""
    entry = graph.topological_order().index(path[0])
    steps = [graph.dependents(a).index(b) for a, b in itertools.pairwise(path)]
    return (entry, *steps)


def analyse(case: Graph) -> CriticalPath:
    graph, edge_cost = case
    return critical_path(graph, edge_cost=edge_cost)


@settings(max_examples=200, deadline=None)
@given(costed_graphs())
def test_floats_are_never_negative(case: Graph) -> None:
    schedule = analyse(case)

    for tid in schedule.total_float:
        assert schedule.total_float[tid] >= 0, tid
        assert schedule.free_float[tid] >= 0, tid
        assert schedule.free_float[tid] <= schedule.total_float[tid], tid


@settings(max_examples=200, deadline=None)
@given(costed_graphs())
def test_times_are_ordered(case: Graph) -> None:
    schedule = analyse(case)

    for tid in schedule.earliest_start:
        assert schedule.earliest_start[tid] <= schedule.latest_start[tid], tid
        assert schedule.earliest_finish[tid] <= schedule.latest_finish[tid], tid
        assert schedule.latest_finish[tid] <= schedule.length, tid


@settings(max_examples=200, deadline=None)
@given(costed_graphs())
def test_path_is_critical_chain(case: Graph) -> None:
    graph, edge_cost = case
    schedule = analyse(case)

    path = schedule.path
    if len(graph) == 0:
        assert path == ()
        return
    assert not graph[path[0]].dependencies
    assert not graph.dependents(path[-1])
    for parent, child in itertools.pairwise(path):
        assert parent in graph[child].dependencies
    for tid in path:
        assert schedule.total_float[tid] == 0, tid
    assert path_length(graph, path, edge_cost) == schedule.length


@settings(max_examples=200, deadline=None)
@given(costed_graphs())
def test_length_matches_ranks_and_costs(case: Graph) -> None:
    graph, edge_cost = case
    schedule = analyse(case)
    up = upward_ranks(graph, edge_cost=edge_cost)
    down = downward_ranks(graph, edge_cost=edge_cost)

    assert schedule.length == max(schedule.earliest_finish.values(), default=0)
    assert schedule.length == max(up.values(), default=0)
    assert schedule.earliest_start == down
    for t in graph:
        assert schedule.length >= (t.cost or 0), t.id
        assert schedule.latest_start[t.id] == schedule.length - up[t.id], t.id


@settings(max_examples=200, deadline=None)
@given(costed_graphs())
def test_path_is_first_longest_path(case: Graph) -> None:
    graph, edge_cost = case
    schedule = analyse(case)

    paths = list(all_paths(graph))
    longest = max((path_length(graph, p, edge_cost) for p in paths), default=0)
    first = min(
        (p for p in paths if path_length(graph, p, edge_cost) == longest),
        key=lambda p: tie_break_key(graph, p),
        default=(),
    )

    assert schedule.length == longest
    assert schedule.path == first


@settings(max_examples=200, deadline=None)
@given(costed_graphs(), st.lists(st.floats(0, 100), min_size=9, max_size=9))
def test_float_costs_close_to_exact(case: Graph, costs: list[float]) -> None:
    graph, edge_cost = case
    exact_schedule = critical_path(graph, lambda t: Fraction(costs[t.id]), edge_cost=edge_cost)
    float_schedule = critical_path(graph, lambda t: costs[t.id], edge_cost=edge_cost)

    assert float_schedule.length == pytest.approx(exact_schedule.length)
    float_length = path_length(graph, float_schedule.path, edge_cost, lambda t: costs[t.id])
    assert float_length == pytest.approx(float_schedule.length)
    for tid, slack in float_schedule.total_float.items():
        assert slack == pytest.approx(exact_schedule.total_float[tid], abs=1e-9), tid


# -- CostModel --------------------------------------------------------------------


def test_cost_model_running_mean() -> None:
    model = CostModel()

    for seconds in (1.0, 2.0, 6.0):
        model.observe("search", seconds)

    assert model.average("search") == 3.0


def test_cost_model_plain_mean_with_zero_smoothing() -> None:
    model = CostModel(smoothing=0)
    samples = [float(i % 7) for i in range(100)]

    for seconds in samples:
        model.observe("search", seconds)

    assert model.average("search") == pytest.approx(statistics.fmean(samples))


def test_cost_model_moving_average_after_warm_up() -> None:
    model = CostModel(smoothing=0.5)

    model.observe("search", 1.0)
    model.observe("search", 3.0)
    model.observe("search", 6.0)

    # Weights: 1, then max(1/2, 0.5) = 0.5, then max(1/3, 0.5) = 0.5.
    assert model.average("search") == 4.0


def test_cost_model_full_smoothing_keeps_last() -> None:
    model = CostModel(smoothing=1)

    model.observe("search", 1.0)
    model.observe("search", 7.5)

    assert model.average("search") == 7.5


def test_cost_model_tools_are_separate() -> None:
    model = CostModel()

    model.observe("search", 2.0)
    model.observe("math", 0.5)

    assert model.average("search") == 2.0
    assert model.average("math") == 0.5
    assert model.average("other") is None


def test_cost_model_default() -> None:
    assert CostModel().estimate(task("a", name="new")) == DEFAULT_COST
    assert CostModel(default=0.25).estimate(task("a", name="new")) == 0.25


def test_cost_model_task_cost_wins() -> None:
    model = CostModel()
    model.observe("search", 5.0)

    assert model.estimate(task("a", name="search")) == 5.0
    assert model.estimate(task("a", name="search", cost=1.5)) == 1.5
    assert model.estimate(task("a", name="search", cost=0.0)) == 0.0


def test_cost_model_observe_report() -> None:
    report = RunReport()
    rows = [
        ("a", "search", TaskStatus.DONE, 1.0, 3.0),
        ("b", "search", TaskStatus.DONE, 2.0, 6.0),
        ("c", "search", TaskStatus.FAILED, 0.0, 100.0),
        ("d", "math", TaskStatus.CANCELLED, None, None),
    ]
    for tid, name, status, start, end in rows:
        record = TaskRecord(id=tid, name=name, dependencies=(), status=status, start=start, end=end)
        report.records[tid] = record

    model = CostModel()
    model.observe_report(report)

    assert model.average("search") == 3.0
    assert model.average("math") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"smoothing": 1.5}, "smoothing 1.5 is invalid: pass a weight from 0 to 1"),
        ({"smoothing": -0.1}, "smoothing -0.1 is invalid: pass a weight from 0 to 1"),
        ({"default": -1.0}, "default cost is -1.0 seconds: pass a finite number of zero or more"),
    ],
)
def test_cost_model_invalid_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(UsageError, match=exact(message)):
        CostModel(**kwargs)


@pytest.mark.parametrize("seconds", [-0.5, math.inf, math.nan])
def test_cost_model_invalid_observation(seconds: float) -> None:
    model = CostModel()
    message = (
        f"observed duration of 'search' is {seconds!r} seconds: "
        "pass a finite number of zero or more"
    )

    with pytest.raises(UsageError, match=exact(message)):
        model.observe("search", seconds)

    assert model.average("search") is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1e6), min_size=1, max_size=50),
    st.floats(0, 1),
)
def test_cost_model_average_within_observed_range(samples: list[float], smoothing: float) -> None:
    model = CostModel(smoothing=smoothing)

    for seconds in samples:
        model.observe("tool", seconds)

    average = model.average("tool")
    assert average is not None
    assert min(samples) - 1e-6 <= average <= max(samples) + 1e-6
