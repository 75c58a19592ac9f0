"""DagNode: one Runnable of a DagRunnable, and the checks on a whole set of nodes."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import Runnable
from langchain_core.runnables.base import coerce_to_runnable

from .._errors import ConfigurationError, GraphError
from ..runtime import Task, TaskGraph

__all__ = ["DagNode", "RunnableLike", "build_nodes", "check_outputs"]

RunnableLike = Runnable[Any, Any] | Callable[..., Any] | Mapping[str, Any]
"""Values a node may wrap: anything ``coerce_to_runnable`` accepts."""


@dataclass(frozen=True, slots=True, init=False)
class DagNode:
    """A Runnable in a :class:`DagRunnable`, with its dependencies and scheduling hints.

    Args:
        runnable: A Runnable, or a callable or dict that LangChain's
            ``coerce_to_runnable`` turns into one.
        depends_on: Names of the nodes whose outputs this node receives. A
            single name may be given as a string.
        priority: Higher starts first among ready nodes.
        cost: Estimated run time in seconds. The executor ranks each node by
            the longest chain of costs from it to the end of the graph and
            starts the highest rank first; nodes without a cost count as
            ``dragonscale_lc.runtime.DEFAULT_COST``.
        timeout: Seconds before the node is cancelled and fails with
            :class:`~dragonscale_lc.TaskTimeoutError`, or ``None``. A node
            called through ``invoke`` runs in a thread, which cannot be
            interrupted, so its thread stays busy until the call returns.

    Example:
        >>> from langchain_core.runnables import RunnableLambda
        >>> DagNode(RunnableLambda(len), depends_on="search", priority=5).depends_on
        ('search',)
    """

    runnable: Runnable[Any, Any]
    depends_on: tuple[str, ...]
    priority: int
    cost: float | None
    timeout: float | None

    def __init__(
        self,
        runnable: RunnableLike,
        depends_on: str | Iterable[str] = (),
        *,
        priority: int = 0,
        cost: float | None = None,
        timeout: float | None = None,
    ) -> None:
        # Frozen, so the fields are set through object.__setattr__.
        set_field = object.__setattr__
        set_field(self, "runnable", _coerce(runnable))
        set_field(self, "depends_on", _names(depends_on))
        set_field(self, "priority", _priority(priority))
        set_field(self, "cost", _seconds("cost", cost, allow_zero=True))
        set_field(self, "timeout", _seconds("timeout", timeout, allow_zero=False))


def build_nodes(
    nodes: Mapping[Any, DagNode | RunnableLike], *, input_key: str
) -> dict[str, DagNode]:
    """Return ``nodes`` with every value a :class:`DagNode`, after checking the graph.

    Raises:
        ConfigurationError: There is no node, a name is not a non-empty string
            or equals ``input_key``, or a value is not a Runnable.
        GraphError: A node depends on an unknown node or on itself, or the
            dependencies form a cycle.
    """
    if not nodes:
        raise ConfigurationError(
            "DagRunnable needs at least one node: pass nodes={'name': runnable, ...}"
        )
    built: dict[str, DagNode] = {}
    for name, value in nodes.items():
        _check_name(name, input_key)
        try:
            built[name] = value if isinstance(value, DagNode) else DagNode(value)
        except ConfigurationError as error:
            raise ConfigurationError(f"node {name!r}: {error}") from None
    _check_graph(built)
    return built


def check_outputs(outputs: Collection[str], nodes: Mapping[str, DagNode]) -> None:
    """Raise :class:`ConfigurationError` unless ``outputs`` names at least one known node."""
    if not outputs:
        raise ConfigurationError("outputs is empty: list at least one node name, or leave it unset")
    unknown = [name for name in outputs if name not in nodes]
    if unknown:
        raise ConfigurationError(
            f"outputs names unknown node {_quoted(unknown)}; the nodes are {_quoted(nodes)}"
        )


def _check_name(name: object, input_key: str) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"node names must be non-empty strings, got {name!r}")
    if name == input_key:
        raise ConfigurationError(
            f"node name {name!r} is the key under which nodes receive the DAG's input; "
            "rename the node, or set input_key to another key"
        )


def _check_graph(nodes: Mapping[str, DagNode]) -> None:
    for name, node in nodes.items():
        unknown = [dep for dep in node.depends_on if dep not in nodes]
        if unknown:
            raise GraphError(
                f"node {name!r} depends on unknown node {_quoted(unknown)}; the nodes are "
                f"{_quoted(nodes)}. Fix the name in depends_on or add the node"
            )
    # TaskGraph rejects self-dependencies and cycles and names the path.
    try:
        TaskGraph(
            Task(id=name, fn=_unused, dependencies=frozenset(node.depends_on))
            for name, node in nodes.items()
        )
    except GraphError as error:
        raise GraphError(
            f"the DagRunnable's nodes are not acyclic: {error}. "
            "Remove a name from depends_on to break the cycle"
        ) from None


def _unused() -> None:
    """Stand-in callable of the tasks built only to check the graph."""


def _coerce(runnable: RunnableLike) -> Runnable[Any, Any]:
    try:
        return coerce_to_runnable(runnable)
    except TypeError:
        raise ConfigurationError(
            f"a node needs a Runnable, a callable or a dict of them, "
            f"got {type(runnable).__name__} {runnable!r}"
        ) from None


def _names(depends_on: str | Iterable[str]) -> tuple[str, ...]:
    names = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
    for name in names:
        if not isinstance(name, str):
            raise ConfigurationError(
                f"depends_on must contain node names (strings), got {type(name).__name__} {name!r}"
            )
    return tuple(dict.fromkeys(names))  # duplicates dropped, order kept


def _priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigurationError(f"priority must be an int, got {priority!r}")
    return priority


def _seconds(what: str, value: float | None, *, allow_zero: bool) -> float | None:
    if value is None:
        return None
    valid = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not valid:
        bound = "zero or more" if allow_zero else "more than zero"
        raise ConfigurationError(f"{what} must be a number of seconds, {bound}, got {value!r}")
    return float(value)


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(map(repr, names))
