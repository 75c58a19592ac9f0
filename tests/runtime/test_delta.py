"""The delta log of a TaskGraph: versions, deltas_since and compaction."""

from __future__ import annotations

import re
from collections.abc import Hashable

import pytest

from dragonscale_lc._errors import GraphError, UsageError
from dragonscale_lc.runtime import Compaction, Delta, DeltaKind, Task, TaskGraph


def noop() -> None:
    return None


def task(task_id: object, *deps: object) -> Task:
    return Task(id=task_id, fn=noop, dependencies=frozenset(deps))


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


def shape(graph: TaskGraph) -> list[tuple[Hashable, list[str]]]:
    return [(t.id, sorted(map(repr, t.dependencies))) for t in graph]


# -- versions and the log -------------------------------------------------------------


def test_constructor_tasks_are_the_base() -> None:
    graph = TaskGraph([task("a"), task("b", "a")])

    assert graph.version == 0
    assert graph.base_version == 0
    assert graph.deltas_since(0) == []


def test_every_change_is_one_delta() -> None:
    a, b, c = task("a"), task("b"), task("c", "a")
    graph = TaskGraph([a])

    graph.add(b)
    graph.add(c)
    graph.add_edge("b", "c")
    graph.drop("b", cascade=True)

    assert graph.version == 4
    assert graph.deltas_since(0)[:3] == [
        Delta(kind=DeltaKind.ADD_TASK, ids=("b",), version=1, tasks=(b,)),
        Delta(kind=DeltaKind.ADD_TASK, ids=("c",), version=2, tasks=(c,)),
        Delta(kind=DeltaKind.ADD_EDGE, ids=("b", "c"), version=3),
    ]
    drop = graph.deltas_since(3)[0]
    assert drop.kind is DeltaKind.DROP
    assert drop.ids == ("b", "c")
    assert drop.version == 4
    # The dropped tasks are recorded as they were, c with the edge from b.
    assert [(t.id, t.dependencies) for t in drop.tasks] == [
        ("b", frozenset()),
        ("c", frozenset({"a", "b"})),
    ]


def test_add_edge_and_drop_return_delta() -> None:
    graph = TaskGraph([task("a"), task("b")])

    edge = graph.add_edge("a", "b")
    drop = graph.drop("b")

    assert graph.deltas_since(0) == [edge, drop]


def test_rejected_changes_record_nothing() -> None:
    graph = TaskGraph([task("a"), task("b", "a")])

    for change in (
        lambda: graph.add(task("a")),
        lambda: graph.add(task("c", "x")),
        lambda: graph.add_edge("b", "a"),
        lambda: graph.drop("a"),
    ):
        with pytest.raises(GraphError):
            change()

    assert graph.version == 0


def test_deltas_since_lists_later_deltas() -> None:
    graph = TaskGraph()
    for name in "abcd":
        graph.add(task(name))

    assert [d.ids for d in graph.deltas_since(2)] == [("c",), ("d",)]
    assert [d.version for d in graph.deltas_since(2)] == [3, 4]
    assert graph.deltas_since(4) == []


def test_deltas_since_a_future_version() -> None:
    graph = TaskGraph()
    graph.add(task("a"))
    expected = "cannot list the deltas since version 2: the graph is at version 1"

    with pytest.raises(GraphError, match=exact(expected)):
        graph.deltas_since(2)


# -- compaction -----------------------------------------------------------------------


def test_compact_empties_log_keeps_graph() -> None:
    graph = TaskGraph([task("a")])
    graph.add(task("b", "a"))
    graph.add(task("c"))
    graph.add_edge("c", "b")
    shape_before, hash_before = shape(graph), graph.structure_hash()
    order_before = graph.topological_order()

    summary = graph.compact()

    assert summary == Compaction(previous_base_version=0, base_version=3, deltas=3, tasks=3)
    assert graph.version == 3
    assert graph.base_version == 3
    assert graph.deltas_since(3) == []
    assert shape(graph) == shape_before
    assert graph.structure_hash() == hash_before
    assert graph.topological_order() == order_before


def test_versions_continue_after_compaction() -> None:
    graph = TaskGraph()
    graph.add(task("a"))
    graph.compact()

    graph.add(task("b"))

    assert [(d.ids, d.version) for d in graph.deltas_since(1)] == [(("b",), 2)]


def test_deltas_before_the_base_are_gone() -> None:
    graph = TaskGraph()
    graph.add(task("a"))
    graph.add(task("b"))
    graph.compact()
    expected = (
        "cannot list the deltas since version 1: the log was compacted up to version 2; "
        "read the graph itself, or ask from version 2 on"
    )

    with pytest.raises(GraphError, match=exact(expected)):
        graph.deltas_since(1)


def test_compact_empty_log() -> None:
    summaries: list[Compaction] = []
    graph = TaskGraph([task("a")], on_compact=summaries.append)

    summary = graph.compact()

    assert summary == Compaction(previous_base_version=0, base_version=0, deltas=0, tasks=1)
    assert summaries == []


def test_full_log_compacts_on_change() -> None:
    summaries: list[Compaction] = []
    graph = TaskGraph(compact_after=3, on_compact=summaries.append)
    for name in "abc":
        graph.add(task(name))

    assert graph.base_version == 0
    assert summaries == []

    graph.add(task("d"))

    assert summaries == [Compaction(previous_base_version=0, base_version=3, deltas=3, tasks=3)]
    # The delta of the change that triggered the compaction is still listed.
    assert [d.ids for d in graph.deltas_since(3)] == [("d",)]


def test_each_change_kind_compacts() -> None:
    graph = TaskGraph([task("a"), task("b")], compact_after=1)

    graph.add(task("c"))
    graph.add_edge("a", "c")
    graph.drop("c")

    assert graph.base_version == 2
    assert graph.version == 3
    assert [d.kind for d in graph.deltas_since(2)] == [DeltaKind.DROP]


def test_automatic_compaction_keeps_graph() -> None:
    tasks = [task(0), *(task(i, i - 1, i // 2) for i in range(1, 50))]
    compacted = TaskGraph(compact_after=4)
    whole = TaskGraph(compact_after=None)
    for t in tasks:
        compacted.add(t)
        whole.add(t)

    assert compacted.base_version == 48
    assert whole.base_version == 0
    assert compacted.version == whole.version == 50
    assert shape(compacted) == shape(whole)
    assert compacted.structure_hash() == whole.structure_hash()


def test_failing_hook_stops_change() -> None:
    def failing_hook(summary: Compaction) -> None:
        raise RuntimeError("hook failed")

    graph = TaskGraph(compact_after=1, on_compact=failing_hook)
    graph.add(task("a"))

    with pytest.raises(RuntimeError, match="hook failed"):
        graph.add(task("b"))

    assert "b" not in graph
    assert graph.version == 1


@pytest.mark.parametrize("value", [0, -1])
def test_compact_after_must_be_positive(value: int) -> None:
    expected = f"compact_after must be at least 1 or None, got {value}"

    with pytest.raises(UsageError, match=exact(expected)):
        TaskGraph(compact_after=value)
