"""The benchmark graphs as LangGraph ``StateGraph``s, for comparison with the runtime.

LangGraph runs a graph in supersteps: every node triggered in one step runs,
and the next step starts only when all of them have finished. A node with
several parents is reached through a multi-source edge
(``add_edge([p1, p2], child)``), which waits for all of those parents.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Annotated, Any, Protocol, TypedDict, TypeVar

from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

__all__ = ["LangGraphGraph", "build_langgraph", "run_langgraph"]


class _State(TypedDict):
    # A reducer channel, because many nodes of one superstep write to it at once.
    done: Annotated[list[Hashable], operator.add]


class _Step(Protocol):
    # The parameter is named `state`, as LangGraph's node protocols name it.
    def __call__(self, state: _State) -> Awaitable[dict[str, list[Hashable]]]: ...


_NodeT = TypeVar("_NodeT", bound=Hashable)

LangGraphGraph = CompiledStateGraph[_State, None, _State, _State]
"""A compiled graph made by :func:`build_langgraph`."""


def build_langgraph(
    parents: Mapping[_NodeT, Sequence[_NodeT]],
    work: Callable[[_NodeT], Awaitable[object]],
) -> LangGraphGraph:
    """Build a LangGraph graph with one node per key of ``parents``.

    Node ``n`` awaits ``work(n)``, then appends ``n`` to the ``done`` list of
    the state. Each node runs once, after all of its parents. Node names are
    ``str(n)``, so they must be distinct and must not contain ``|`` or ``:``,
    which LangGraph reserves.
    """
    builder = StateGraph(_State)
    for node in parents:
        builder.add_node(str(node), _make_step(node, work))

    for node, node_parents in parents.items():
        if not node_parents:
            builder.add_edge(START, str(node))
        elif len(node_parents) == 1:
            builder.add_edge(str(node_parents[0]), str(node))
        else:
            builder.add_edge([str(parent) for parent in node_parents], str(node))

    return builder.compile()


async def run_langgraph(graph: LangGraphGraph, nodes: int) -> list[Hashable]:
    """Run a graph of ``nodes`` nodes and return the ids in the order their writes were applied."""
    # LangGraph's recursion limit counts supersteps, and a graph needs at most one per node.
    final: dict[str, Any] = await graph.ainvoke({"done": []}, {"recursion_limit": nodes + 2})
    done: list[Hashable] = final["done"]
    return done


def _make_step(node: _NodeT, work: Callable[[_NodeT], Awaitable[object]]) -> _Step:
    async def step(state: _State) -> dict[str, list[Hashable]]:
        await work(node)
        return {"done": [node]}

    return step
