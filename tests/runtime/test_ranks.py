"""IncrementalRanks: equal to a full upward_ranks after any deltas, computed partially."""

from __future__ import annotations

from collections.abc import Hashable
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from dragonscale_lc._errors import GraphError
from dragonscale_lc.runtime import CostModel, IncrementalRanks, Task, TaskGraph, upward_ranks


def noop() -> None:
    return None


def task(task_id: Hashable, *deps: Hashable, cost: float | None = None) -> Task:
    return Task(id=task_id, fn=noop, dependencies=frozenset(deps), cost=cost)


def chains(count: int, length: int) -> TaskGraph:
    """``count`` separate chains; chain c runs (c, 0) -> (c, 1) -> ... -> (c, length - 1)."""
    tasks = []
    for c in range(count):
        tasks.append(task((c, 0)))
        tasks.extend(task((c, i), (c, i - 1)) for i in range(1, length))
    return TaskGraph(tasks)


# -- examples -------------------------------------------------------------------------


def test_starts_equal_to_upward_ranks() -> None:
    graph = chains(3, 4)

    ranks = IncrementalRanks(graph)

    assert dict(ranks) == upward_ranks(graph)
    assert ranks.recomputed == len(graph)


def test_refresh_without_changes_recomputes_nothing() -> None:
    ranks = IncrementalRanks(chains(3, 4))

    assert ranks.refresh() == 0


def test_distant_leaf_recomputes_ancestors() -> None:
    graph = chains(50, 20)
    ranks = IncrementalRanks(graph)

    graph.add(task("leaf", (0, 19)))
    recomputed = ranks.refresh()

    assert dict(ranks) == upward_ranks(graph)
    assert recomputed == 21  # the leaf and the 20 tasks of its chain, of 1001
    assert ranks.version == graph.version


def test_recompute_stops_at_unchanged_rank() -> None:
    # top -> mid; mid -> long chain of 5 and mid -> short. A small leaf under
    # short cannot outgrow the long chain, so mid keeps its rank and top is
    # not recomputed.
    graph = TaskGraph(
        [
            task("top"),
            task("mid", "top"),
            task("short", "mid"),
            task("long0", "mid"),
            *(task(f"long{i}", f"long{i - 1}") for i in range(1, 5)),
        ]
    )
    ranks = IncrementalRanks(graph)

    graph.add(task("leaf", "short", cost=2))

    assert ranks.refresh() == 3  # leaf, short, mid
    assert dict(ranks) == upward_ranks(graph)


def test_add_edge_updates_ranks() -> None:
    graph = chains(2, 3)
    ranks = IncrementalRanks(graph)

    graph.add_edge((1, 2), (0, 0))
    ranks.refresh()

    assert dict(ranks) == upward_ranks(graph)
    assert ranks[(1, 0)] == 6.0


def test_drop_updates_ancestors() -> None:
    graph = chains(2, 3)
    ranks = IncrementalRanks(graph)

    graph.drop((0, 1), cascade=True)
    recomputed = ranks.refresh()

    assert dict(ranks) == upward_ranks(graph)
    assert (0, 1) not in ranks
    assert recomputed == 1  # only (0, 0) lost a dependent


def test_many_deltas_in_one_refresh() -> None:
    graph = chains(2, 3)
    ranks = IncrementalRanks(graph)

    graph.add(task("x", (0, 2), cost=4))
    graph.add_edge("x", (1, 0))
    graph.drop((1, 2))
    graph.add(task((1, 2), "x"))
    ranks.refresh()

    assert dict(ranks) == upward_ranks(graph)


def test_compaction_forces_full_recompute() -> None:
    graph = TaskGraph([task("a")], compact_after=2)
    ranks = IncrementalRanks(graph)
    for name in "bcd":
        graph.add(task(name, "a"))

    assert ranks.refresh() == 4
    assert len(graph) == 4
    assert dict(ranks) == upward_ranks(graph)


def test_cost_options_match_upward_ranks() -> None:
    model = CostModel()
    model.observe("noop", 0.5)
    costs = {"a": Fraction(1, 3), "b": Fraction(1, 7), "c": Fraction(2, 5)}
    graph = TaskGraph([task("a"), task("b", "a")])

    def cost_of(t: Task) -> Fraction:
        return costs[t.id]  # type: ignore[index]

    def edge_cost(parent: Task, child: Task) -> float:
        return 0.25

    options = [
        {"cost_of": cost_of},
        {"costs": model},
        {"edge_cost": edge_cost},
    ]
    followers = [IncrementalRanks(graph, **opts) for opts in options]  # type: ignore[arg-type]
    graph.add(task("c", "a"))
    graph.add_edge("b", "c")

    for opts, ranks in zip(options, followers, strict=True):
        ranks.refresh()
        assert dict(ranks) == upward_ranks(graph, **opts)  # type: ignore[arg-type]


# -- random sequences of deltas -------------------------------------------------------

IDS = st.integers(0, 9)
COSTS = st.sampled_from([None, 0.0, 0.5, 1.0, 2.25, 3.0])

OPERATIONS = st.one_of(
    st.tuples(st.just("add"), IDS, st.sets(IDS, max_size=3), COSTS),
    st.tuples(st.just("edge"), IDS, IDS),
    st.tuples(st.just("drop"), IDS, st.booleans()),
    st.tuples(st.just("refresh")),
    st.tuples(st.just("compact")),
)


def apply(graph: TaskGraph, operation: tuple[object, ...]) -> None:
    kind, *args = operation
    try:
        if kind == "add":
            tid, deps, cost = args
            known = {d for d in deps if d in graph}  # type: ignore[attr-defined]
            graph.add(task(tid, *known, cost=cost))  # type: ignore[arg-type]
        elif kind == "edge":
            graph.add_edge(*args)
        elif kind == "drop":
            graph.drop(args[0], cascade=bool(args[1]))
        elif kind == "compact":
            graph.compact()
    except GraphError:
        pass  # an invalid change leaves the graph as it was


@settings(max_examples=150, deadline=None)
@given(
    st.lists(OPERATIONS, max_size=40),
    st.sampled_from([1, 3, 8, None]),
)
def test_incremental_ranks_equal_full_ranks(
    operations: list[tuple[object, ...]], compact_after: int | None
) -> None:
    graph = TaskGraph(compact_after=compact_after)
    ranks = IncrementalRanks(graph)

    for operation in operations:
        apply(graph, operation)
        if operation[0] == "refresh":
            assert ranks.refresh() <= len(graph)  # each task at most once
            assert dict(ranks) == upward_ranks(graph)

    ranks.refresh()
    assert dict(ranks) == upward_ranks(graph)
