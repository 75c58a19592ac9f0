"""TaskGraph validation and order, Task construction, and upward ranks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dragonscale_lc._errors import GraphError
from dragonscale_lc.runtime import DEFAULT_COST, Ref, Task, TaskGraph, Template, upward_ranks


def noop(*args: object, **kwargs: object) -> None:
    return None


def task(task_id: object, *deps: object, cost: float | None = None) -> Task:
    return Task(id=task_id, fn=noop, dependencies=frozenset(deps), cost=cost)


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


# -- validation ---------------------------------------------------------------


def test_duplicate_id_in_constructor() -> None:
    with pytest.raises(
        GraphError, match=exact("duplicate task id 'a': every task needs its own id")
    ):
        TaskGraph([task("a"), task("a")])


def test_duplicate_id_on_add() -> None:
    graph = TaskGraph([task("a")])

    with pytest.raises(
        GraphError, match=exact("duplicate task id 'a': every task needs its own id")
    ):
        graph.add(task("a"))


def test_self_dependency() -> None:
    with pytest.raises(GraphError, match=exact("task 'a' depends on itself")):
        TaskGraph([task("a", "a")])


def test_self_dependency_through_ref() -> None:
    with pytest.raises(GraphError, match=exact("task 1 depends on itself")):
        TaskGraph([Task(id=1, fn=noop, args=(Ref(1),))])


def test_unknown_dependency() -> None:
    expected = (
        "task 'b' depends on unknown task 'x', 'y': "
        "add the dependency before the task that needs it"
    )

    with pytest.raises(GraphError, match=exact(expected)):
        TaskGraph([task("a"), task("b", "a", "y", "x")])


def test_unknown_dependency_on_add() -> None:
    graph = TaskGraph([task("a")])
    expected = (
        "task 'b' depends on unknown task 'c': add the dependency before the task that needs it"
    )

    with pytest.raises(GraphError, match=exact(expected)):
        graph.add(task("b", "c"))


def test_rejected_add_leaves_graph_unchanged() -> None:
    graph = TaskGraph([task("a")])

    with pytest.raises(GraphError):
        graph.add(task("b", "c"))

    assert "b" not in graph


def test_constructor_accepts_any_task_order() -> None:
    graph = TaskGraph([task("b", "a"), task("a")])

    assert graph.topological_order() == ["a", "b"]


def test_cycle_names_its_path() -> None:
    expected = "the graph has a cycle: 'a' -> 'b' -> 'c' -> 'a'"

    with pytest.raises(GraphError, match=exact(expected)):
        TaskGraph([task("a", "c"), task("b", "a"), task("c", "b")])


def test_cycle_path_omits_tasks_leading_into_it() -> None:
    expected = "the graph has a cycle: 'x' -> 'y' -> 'x'"

    with pytest.raises(GraphError, match=exact(expected)):
        TaskGraph([task("root"), task("x", "root", "y"), task("y", "x")])


def first_fault(tasks: list[Task]) -> str | None:
    """Return the expected constructor error for ``tasks``, checking each task in list order."""
    ids = {t.id for t in tasks}
    seen: set[object] = set()
    for t in tasks:
        if t.id in seen:
            return f"duplicate task id {t.id!r}: every task needs its own id"
        seen.add(t.id)
        if t.id in t.dependencies:
            return f"task {t.id!r} depends on itself"
        missing = sorted((dep for dep in t.dependencies if dep not in ids), key=repr)
        if missing:
            names = ", ".join(map(repr, missing))
            return (
                f"task {t.id!r} depends on unknown task {names}: "
                "add the dependency before the task that needs it"
            )
    return None


@given(
    st.lists(st.tuples(st.integers(0, 5), st.frozensets(st.integers(0, 6), max_size=3)), max_size=7)
)
def test_constructor_names_first_invalid_task(specs: list[tuple[int, frozenset[int]]]) -> None:
    tasks = [task(task_id, *deps) for task_id, deps in specs]
    fault = first_fault(tasks)

    if fault is not None:
        with pytest.raises(GraphError, match=exact(fault)):
            TaskGraph(tasks)
        return
    try:
        graph = TaskGraph(tasks)
    except GraphError as error:
        assert str(error).startswith("the graph has a cycle: ")
        return
    for t in tasks:
        children = [other.id for other in tasks if t.id in other.dependencies]
        assert graph.dependents(t.id) == tuple(children)


# -- order and structure --------------------------------------------------------


@pytest.fixture
def diamond() -> TaskGraph:
    # a and b are roots; c needs both, d needs b, e needs c and d.
    return TaskGraph(
        [task("e", "c", "d"), task("c", "a", "b"), task("d", "b"), task("a"), task("b")]
    )


def test_topological_order_puts_dependencies_first(diamond: TaskGraph) -> None:
    order = diamond.topological_order()
    position = {tid: i for i, tid in enumerate(order)}

    late = [
        (t.id, dep) for t in diamond for dep in t.dependencies if position[dep] > position[t.id]
    ]

    assert late == []


def test_topological_order_lists_every_task_once(diamond: TaskGraph) -> None:
    assert sorted(diamond.topological_order()) == ["a", "b", "c", "d", "e"]


def test_dependents(diamond: TaskGraph) -> None:
    assert sorted(diamond.dependents("b")) == ["c", "d"]


def test_dependents_of_exit_task(diamond: TaskGraph) -> None:
    assert diamond.dependents("e") == ()


def test_dependents_grow_with_add(diamond: TaskGraph) -> None:
    diamond.add(task("f", "e"))

    assert diamond.dependents("e") == ("f",)


def test_len_contains_getitem(diamond: TaskGraph) -> None:
    assert len(diamond) == 5
    assert "c" in diamond
    assert "z" not in diamond
    assert diamond["d"].id == "d"


# -- Task ---------------------------------------------------------------------------


def test_task_dependencies_include_refs() -> None:
    t = Task(
        id=9,
        fn=noop,
        args=([Ref(1)], Template(("x", Ref(2)))),
        kwargs={"k": {"nested": (Ref(3),)}},
        dependencies=frozenset({4}),
    )

    assert t.dependencies == frozenset({1, 2, 3, 4})


def test_task_name_defaults_to_function_name() -> None:
    assert Task(id=1, fn=noop).name == "noop"


def test_task_name_of_callable_object() -> None:
    class Tool:
        def __call__(self) -> None:
            return None

    assert Task(id=1, fn=Tool()).name == "Tool"


def test_task_name_given() -> None:
    assert Task(id=1, fn=noop, name="search").name == "search"


# -- upward ranks -------------------------------------------------------------------


def test_upward_ranks_exact() -> None:
    # A(3) and B(2) feed C(4); B also feeds D(2). The critical path is A -> C.
    graph = TaskGraph(
        [task("A", cost=3), task("B", cost=2), task("C", "A", "B", cost=4), task("D", "B", cost=2)]
    )

    assert upward_ranks(graph) == {"A": 7.0, "B": 6.0, "C": 4.0, "D": 2.0}


def test_upward_ranks_binary_fractions() -> None:
    graph = TaskGraph(
        [task(1, cost=0.5), task(2, 1, cost=0.25), task(3, 1, cost=0.125), task(4, 2, 3, cost=1.5)]
    )

    assert upward_ranks(graph) == {1: 2.25, 2: 1.75, 3: 1.625, 4: 1.5}


def test_upward_ranks_default_cost() -> None:
    graph = TaskGraph([task("a"), task("b", "a")])

    assert upward_ranks(graph) == {"a": 2 * DEFAULT_COST, "b": DEFAULT_COST}


def test_upward_ranks_cost_function() -> None:
    graph = TaskGraph([task("a"), task("b", "a"), task("c", "a")])
    costs = {"a": 0.5, "b": 4.0, "c": 0.25}

    assert upward_ranks(graph, lambda t: costs[t.id]) == {"a": 4.5, "b": 4.0, "c": 0.25}


def test_long_cycle_is_reported_shortened() -> None:
    size = 5000
    tasks = [Task(id=i, fn=print, dependencies={(i - 1) % size}) for i in range(size)]

    with pytest.raises(GraphError) as caught:
        TaskGraph(tasks)

    message = str(caught.value)
    assert message.startswith("the graph has a cycle: 0 -> 1 -> 2")
    assert message.endswith(f"-> {size - 1} -> 0 ({size} tasks)")


# -- add_edge -----------------------------------------------------------------------


def test_add_edge_makes_child_depend_on_parent() -> None:
    graph = TaskGraph([task("a"), task("b")])

    graph.add_edge("a", "b")

    assert graph["b"].dependencies == frozenset({"a"})
    assert graph.dependents("a") == ("b",)
    assert graph.topological_order() == ["a", "b"]


def test_add_edge_from_later_task() -> None:
    graph = TaskGraph([task("early")])
    graph.add(task("late"))

    graph.add_edge("late", "early")

    assert graph.topological_order() == ["late", "early"]


def test_add_edge_keeps_other_fields() -> None:
    graph = TaskGraph([task("a"), Task(id="b", fn=noop, args=(1,), priority=3, cost=2.0)])

    graph.add_edge("a", "b")

    assert graph["b"].args == (1,)
    assert graph["b"].priority == 3
    assert graph["b"].cost == 2.0


def test_add_edge_unknown_task() -> None:
    graph = TaskGraph([task("a")])
    expected = "cannot add edge 'a' -> 'x': unknown task 'x': add the task before the edge"

    with pytest.raises(GraphError, match=exact(expected)):
        graph.add_edge("a", "x")


def test_add_edge_names_all_unknown_tasks() -> None:
    expected = "cannot add edge 'y' -> 'x': unknown task 'x', 'y': add the task before the edge"

    with pytest.raises(GraphError, match=exact(expected)):
        TaskGraph().add_edge("y", "x")


def test_add_edge_to_itself() -> None:
    graph = TaskGraph([task("a")])
    expected = "cannot add edge 'a' -> 'a': a task cannot depend on itself"

    with pytest.raises(GraphError, match=exact(expected)):
        graph.add_edge("a", "a")


def test_add_edge_twice_is_an_error() -> None:
    graph = TaskGraph([task("a"), task("b", "a")])
    expected = "cannot add edge 'a' -> 'b': task 'b' already depends on 'a'"

    with pytest.raises(GraphError, match=exact(expected)):
        graph.add_edge("a", "b")

    assert graph.version == 0


def test_add_edge_cycle_names_its_path() -> None:
    graph = TaskGraph([task("a"), task("b", "a"), task("c", "b")])
    expected = "cannot add edge 'c' -> 'a': it would close the cycle 'c' -> 'a' -> 'b' -> 'c'"

    with pytest.raises(GraphError, match=exact(expected)):
        graph.add_edge("c", "a")

    assert graph["a"].dependencies == frozenset()
    assert graph.dependents("c") == ()
    assert graph.version == 0


def test_add_edge_reports_shortest_cycle() -> None:
    # Two routes lead from a to d; the direct one closes the shorter cycle.
    graph = TaskGraph([task("a"), task("b", "a"), task("c", "b"), task("d", "c", "a")])
    expected = "cannot add edge 'd' -> 'a': it would close the cycle 'd' -> 'a' -> 'd'"

    with pytest.raises(GraphError, match=exact(expected)):
        graph.add_edge("d", "a")


def test_add_edge_long_cycle_shortened() -> None:
    size = 5000
    graph = TaskGraph([task(0), *(task(i, i - 1) for i in range(1, size))])

    with pytest.raises(GraphError) as caught:
        graph.add_edge(size - 1, 0)

    message = str(caught.value)
    assert message.startswith(f"cannot add edge {size - 1} -> 0: it would close the cycle ")
    assert message.endswith(f"-> {size - 1} ({size} tasks)")


# -- drop ---------------------------------------------------------------------------


def test_drop_exit_task(diamond: TaskGraph) -> None:
    diamond.drop("e")

    assert "e" not in diamond
    assert diamond.dependents("c") == ()
    assert diamond.dependents("d") == ()
    assert sorted(diamond.topological_order(), key=str) == ["a", "b", "c", "d"]


def test_dropped_id_can_return(diamond: TaskGraph) -> None:
    diamond.drop("e")

    diamond.add(task("e", "a"))

    assert diamond.dependents("a") == ("c", "e")
    assert diamond.dependents("c") == ()


def test_drop_task_others_depend_on() -> None:
    graph = TaskGraph([task("a"), task("b", "a")])
    expected = (
        "cannot drop task 'a': task 'b' depends on it; "
        "drop those first, or pass cascade=True to drop them too"
    )

    with pytest.raises(GraphError, match=exact(expected)):
        graph.drop("a")

    assert len(graph) == 2


def test_drop_task_many_depend_on(diamond: TaskGraph) -> None:
    expected = (
        "cannot drop task 'b': tasks 'c', 'd' depend on it; "
        "drop those first, or pass cascade=True to drop them too"
    )

    with pytest.raises(GraphError, match=exact(expected)):
        diamond.drop("b")


def test_drop_cascade_drops_descendants(diamond: TaskGraph) -> None:
    delta = diamond.drop("b", cascade=True)

    assert delta.ids == ("b", "c", "d", "e")
    assert [t.id for t in diamond] == ["a"]
    assert diamond.dependents("a") == ()


def test_drop_cascade_keeps_other_branches() -> None:
    graph = TaskGraph([task("a"), task("b", "a"), task("c", "a"), task("d", "c")])

    graph.drop("b", cascade=True)

    assert graph.dependents("a") == ("c",)
    assert graph.topological_order() == ["a", "c", "d"]


def test_drop_unknown_task() -> None:
    with pytest.raises(GraphError, match=exact("cannot drop task 'x': it is not in the graph")):
        TaskGraph().drop("x")


# -- structure hash -----------------------------------------------------------------


def diamond_tasks() -> list[Task]:
    return [
        task("a", cost=1),
        task("b", cost=2.5),
        task("c", "a", "b"),
        task("d", "b"),
        task("e", "c", "d"),
    ]


def test_structure_hash_ignores_build_order() -> None:
    tasks = diamond_tasks()
    built_by_adds = TaskGraph()
    for t in tasks:
        built_by_adds.add(t)
    # The same edges, one of them added after both tasks.
    built_with_edge = TaskGraph([task("b", cost=2.5), task("a", cost=1), task("d")])
    built_with_edge.add(task("c", "a", "b"))
    built_with_edge.add(task("e", "c", "d"))
    built_with_edge.add_edge("b", "d")

    hashes = {
        TaskGraph(tasks).structure_hash(),
        TaskGraph(reversed(tasks)).structure_hash(),
        built_by_adds.structure_hash(),
        built_with_edge.structure_hash(),
    }

    assert len(hashes) == 1


def test_structure_hash_changes_per_delta() -> None:
    graph = TaskGraph(diamond_tasks())
    seen = [graph.structure_hash()]

    graph.add(task("f"))
    seen.append(graph.structure_hash())
    graph.add_edge("f", "e")
    seen.append(graph.structure_hash())
    graph.drop("e")
    seen.append(graph.structure_hash())

    assert len(set(seen)) == 4


def test_structure_hash_after_drop_and_readd() -> None:
    graph = TaskGraph(diamond_tasks())
    before = graph.structure_hash()

    graph.drop("e")
    graph.add(task("e", "c", "d"))

    assert graph.structure_hash() == before


def test_structure_hash_covers_costs() -> None:
    assert (
        TaskGraph([task("a", cost=2)]).structure_hash()
        != TaskGraph([task("a", cost=3)]).structure_hash()
    )
    assert (
        TaskGraph([task("a")]).structure_hash() != TaskGraph([task("a", cost=1)]).structure_hash()
    )


def test_structure_hash_equal_costs() -> None:
    assert TaskGraph([task("a", cost=1)]).structure_hash() == (
        TaskGraph([task("a", cost=1.0)]).structure_hash()
    )


def test_structure_hash_int_and_str_ids() -> None:
    assert TaskGraph([task(1)]).structure_hash() != TaskGraph([task("1")]).structure_hash()
