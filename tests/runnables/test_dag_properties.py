"""Property-based checks of DagRunnable on random small graphs."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.runnables import RunnableLambda

from dragonscale_lc import DagNode, DagRunnable


@dataclass(frozen=True)
class Case:
    """A random graph: node ``n{i}`` depends on the nodes ``n{j}`` for j in ``deps[i]``."""

    deps: tuple[tuple[int, ...], ...]
    max_concurrency: int
    sync: bool


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 7))
    deps = tuple(
        tuple(sorted(draw(st.sets(st.integers(0, i - 1), max_size=3)))) if i else ()
        for i in range(n)
    )
    return Case(deps, draw(st.integers(1, 4)), draw(st.booleans()))


def expected_output(name: str, deps: tuple[str, ...], node_input: Any) -> str:
    """Return what node ``name`` outputs: its name and its dependencies' outputs, or the input."""
    if not deps:
        return f"{name}({node_input})"
    return f"{name}({', '.join(node_input[dep] for dep in deps)})"


@settings(max_examples=60, deadline=None)
@given(cases())
def test_outputs_follow_dependencies(case: Case) -> None:
    calls = Counter[str]()
    lock = threading.Lock()
    names = [f"n{i}" for i in range(len(case.deps))]

    def node(name: str, deps: tuple[str, ...]) -> DagNode:
        def run(node_input: Any) -> str:
            with lock:
                calls.update([name])
            return expected_output(name, deps, node_input)

        return DagNode(RunnableLambda(run), depends_on=deps)

    dag = DagRunnable(
        nodes={
            name: node(name, tuple(names[j] for j in deps))
            for name, deps in zip(names, case.deps, strict=True)
        }
    )
    config = {"max_concurrency": case.max_concurrency}

    result = dag.invoke("x", config) if case.sync else asyncio.run(dag.ainvoke("x", config))

    expected: dict[str, str] = {}
    for name, deps in zip(names, case.deps, strict=True):
        dep_names = tuple(names[j] for j in deps)
        node_input = {dep: expected[dep] for dep in dep_names} if dep_names else "x"
        expected[name] = expected_output(name, dep_names, node_input)
    assert result == expected
    assert calls == dict.fromkeys(names, 1)
