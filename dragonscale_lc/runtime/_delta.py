"""Deltas: the recorded changes of a dynamic task graph, and compaction summaries."""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass

from ._task import Task

__all__ = ["Compaction", "Delta", "DeltaKind"]


class DeltaKind(enum.Enum):
    """The kind of change a delta records."""

    ADD_TASK = "add_task"
    ADD_EDGE = "add_edge"
    DROP = "drop"


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    """One change to a :class:`TaskGraph`, as recorded in its log.

    Args:
        kind: The kind of change.
        ids: ``(task_id,)`` for an added task, ``(parent, child)`` for an added
            edge (the child now depends on the parent), and every dropped id for
            a drop: the requested id first, then its dropped descendants.
        version: The graph's version right after this change.
        tasks: The task added, or the tasks dropped as they were when dropped
            (in the order of ``ids``); empty for an edge.

    Example:
        >>> from dragonscale_lc.runtime import Task, TaskGraph
        >>> graph = TaskGraph()
        >>> graph.add(Task(id="a", fn=print))
        >>> graph.deltas_since(0)[0].ids
        ('a',)
    """

    kind: DeltaKind
    ids: tuple[Hashable, ...]
    version: int
    tasks: tuple[Task, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Compaction:
    """Summary of one compaction of a graph's delta log.

    Args:
        previous_base_version: The base version before the compaction.
        base_version: The new base version: the graph's version when it was
            compacted. Deltas up to it are no longer listed.
        deltas: How many deltas were folded into the base.
        tasks: How many tasks the graph held.

    Example:
        >>> from dragonscale_lc.runtime import Task, TaskGraph
        >>> graph = TaskGraph()
        >>> graph.add(Task(id="a", fn=print))
        >>> graph.compact().deltas
        1
    """

    previous_base_version: int
    base_version: int
    deltas: int
    tasks: int
