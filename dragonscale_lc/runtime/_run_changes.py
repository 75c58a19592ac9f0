"""Edges added to, and tasks dropped from, the graph of an open run.

:class:`RunChanges` is a mixin of :class:`~dragonscale_lc.runtime.Run`. It keeps
the run's nodes, records and counts in step with each delta of the run's
:class:`TaskGraph`, and publishes ``graph.updated`` and ``graph.compacted``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from .._errors import UsageError
from ._delta import Compaction, Delta, DeltaKind
from ._task import TaskStatus

if TYPE_CHECKING:
    from ._events import EventBus
    from ._graph import TaskGraph
    from ._report import RunReport, TaskRecord

__all__ = ["RunChanges"]


class RunChanges:
    """Mixin of :class:`Run` that adds edges to and drops tasks from an open run."""

    # Set by Run.__init__.
    graph: TaskGraph
    report: RunReport
    _events: EventBus
    _nodes: dict[Hashable, TaskRecord]
    _unsettled: int

    if TYPE_CHECKING:
        # Defined by Run.

        def dispatch(self) -> None: ...

        def _dependency_failed(self, node: TaskRecord) -> None: ...

        def _raise_ancestor_ranks(self, dependencies: Iterable[Hashable], rank: float) -> None: ...

        def _publish(self, topic: str, data: Callable[[], dict[str, Any]]) -> None: ...

        def _wake_idle_waiters(self) -> None: ...

    def add_edge(self, parent: Hashable, child: Hashable) -> None:
        """Add the edge ``parent -> child``, so that ``child`` also waits for ``parent``.

        A ready child goes back to pending until ``parent`` settles. If
        ``parent`` has already failed (or was skipped or cancelled), ``child``
        is treated as a task added after a failed dependency: the failure
        policy decides whether it still runs.

        Args:
            parent: Id of a task of the run.
            child: Id of a task of the run that is pending or ready.

        Raises:
            UsageError: ``child`` has started or settled.
            GraphError: An id is unknown, the edge exists, or it would close a
                cycle (the message shows the cycle).

        Example:
            >>> import asyncio
            >>> from dragonscale_lc.runtime import DagExecutor, Task
            >>> async def main() -> list[str]:
            ...     order: list[str] = []
            ...     async with DagExecutor(max_workers=1).open() as run:
            ...         run.insert(Task(id="b", fn=lambda: order.append("b")))
            ...         run.insert(Task(id="a", fn=lambda: order.append("a")))
            ...         run.add_edge("a", "b")
            ...         run.dispatch()
            ...         await run.wait()
            ...     return order
            >>> asyncio.run(main())
            ['a', 'b']
        """
        node = self._nodes.get(child)
        if node is not None and (node.settled or node.start is not None):
            raise UsageError(
                f"cannot add edge {parent!r} -> {child!r}: task {child!r} has already "
                f"{_progress(node)}; only a pending or ready task can get a new dependency"
            )
        delta = self.graph.add_edge(parent, child)

        node = self._nodes[child]
        node.task = self.graph[child]  # the graph's copy, which lists the new dependency
        node.dependencies = node.task.dependencies
        parent_node = self._nodes[parent]
        if not parent_node.settled:
            node.waiting += 1
            if node.status is TaskStatus.READY:
                node.status = TaskStatus.PENDING
                node.entry = None  # its heap entry goes stale
        elif parent_node.status is not TaskStatus.DONE:
            self._dependency_failed(node)
        self._raise_ancestor_ranks((parent,), node.rank)

        if self._events.active:
            self._publish("graph.updated", lambda: _delta_data(delta))
        self.dispatch()

    def drop(self, task_id: Hashable, *, cascade: bool = False) -> None:
        """Remove a task that has never run from the run and from its report.

        A task that has never run is pending, ready, or settled without
        running (skipped, or cancelled before it started). A task that was
        pre-empted has run, even if it is ready again.

        Args:
            task_id: Id of a task that has never run.
            cascade: Drop every task downstream of ``task_id`` too. None of
                them may have run. Without it, a task that others depend
                on cannot be dropped.

        Raises:
            UsageError: The task, or with ``cascade`` one of its dependents,
                has run. Nothing is dropped then.
            GraphError: The id is unknown, or other tasks depend on it and
                ``cascade`` is false.

        Example:
            >>> import asyncio
            >>> from dragonscale_lc.runtime import DagExecutor, Task
            >>> async def main() -> list[object]:
            ...     async with DagExecutor().open() as run:
            ...         run.insert(Task(id="a", fn=print))
            ...         run.insert(Task(id="b", fn=print, dependencies={"a"}))
            ...         run.drop("a", cascade=True)
            ...         report = await run.wait()
            ...     return list(report.records)
            >>> asyncio.run(main())
            []
        """
        if task_id in self._nodes:
            self._check_never_ran(task_id, cascade=cascade)
        delta = self.graph.drop(task_id, cascade=cascade)

        for dropped_id in delta.ids:
            dropped = self._nodes.pop(dropped_id)  # and from the report, the same dict
            dropped.entry = None  # its heap entry goes stale
            if not dropped.settled:
                self._unsettled -= 1

        if self._events.active:
            self._publish("graph.updated", lambda: _delta_data(delta))
        if self._unsettled == 0:
            self._wake_idle_waiters()

    def _check_never_ran(self, task_id: Hashable, *, cascade: bool) -> None:
        # Without cascade, the graph rejects a task that has dependents.
        checked = [task_id]
        seen = {task_id}
        for current in checked:  # the list grows while it is walked
            node = self._nodes[current]
            if node.start is not None:
                subject = "it" if current == task_id else f"its dependent {current!r}"
                raise UsageError(
                    f"cannot drop task {task_id!r}: {subject} has already {_progress(node)}; "
                    "only tasks that have never run can be dropped"
                )
            if cascade:
                fresh = [child for child in self.graph.dependents(current) if child not in seen]
                seen.update(fresh)
                checked.extend(fresh)

    def _publish_graph_update(self, kind: DeltaKind, ids: tuple[Hashable, ...]) -> None:
        self._publish(
            "graph.updated", lambda: {"kind": kind.value, "ids": ids, "version": self.graph.version}
        )

    def _publish_compaction(self, summary: Compaction) -> None:
        if self._events.active:
            self._publish(
                "graph.compacted",
                lambda: {
                    "previous_base_version": summary.previous_base_version,
                    "base_version": summary.base_version,
                    "deltas": summary.deltas,
                    "tasks": summary.tasks,
                },
            )


def _progress(node: TaskRecord) -> str:
    """Describe a task that has run or settled, as in "started (status running)"."""
    state = "settled" if node.start is None else "started"
    status = node.status.value
    if not node.settled and node.status is not TaskStatus.RUNNING:
        status += ", pre-empted"  # it ran, then was requeued or paused
    return f"{state} (status {status})"


def _delta_data(delta: Delta) -> dict[str, Any]:
    return {"kind": delta.kind.value, "ids": delta.ids, "version": delta.version}
