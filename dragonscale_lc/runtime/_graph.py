"""TaskGraph: a validated directed acyclic graph of tasks that may change while it runs.

Every change (a task added, an edge added, tasks dropped) is a delta: the graph's
``version`` goes up by one and the change is appended to a log that readers
follow with :meth:`TaskGraph.deltas_since`. Compaction empties the log and makes
the current graph the new base, at ``base_version``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections import defaultdict
from collections.abc import Callable, Container, Hashable, Iterable, Iterator
from typing import NoReturn

from .._errors import GraphError, UsageError
from ._delta import Compaction, Delta, DeltaKind
from ._task import Task

__all__ = ["TaskGraph"]

DEFAULT_COMPACT_AFTER = 1024
"""Log length at which the next change compacts the log first."""


class TaskGraph:
    """Tasks and their dependencies, valid after every change.

    Unknown dependencies, duplicate ids, self-dependencies and cycles are
    rejected with a :class:`GraphError` that names the ids involved. The tasks
    given to the constructor are the base at version 0; each later change is a
    :class:`Delta` in the log.

    Args:
        tasks: The initial tasks, in any order.
        compact_after: When a change finds this many deltas in the log, the log
            is compacted before the change is recorded. So the log never contains
            more than ``compact_after`` deltas, and the delta of the latest
            change is always in it. ``None`` compacts only on request.
        on_compact: Called with the summary of every compaction that folds at
            least one delta, requested or automatic. If it raises during an
            automatic compaction, the change that triggered it is not made.

    Example:
        >>> from dragonscale_lc.runtime import Task, TaskGraph
        >>> graph = TaskGraph([Task(id="a", fn=print), Task(id="b", fn=print, dependencies={"a"})])
        >>> graph.dependents("a")
        ('b',)
        >>> graph.add(Task(id="c", fn=print))
        >>> graph.add_edge("b", "c").version
        2
    """

    def __init__(
        self,
        tasks: Iterable[Task] = (),
        *,
        compact_after: int | None = DEFAULT_COMPACT_AFTER,
        on_compact: Callable[[Compaction], object] | None = None,
    ) -> None:
        if compact_after is not None and compact_after < 1:
            raise UsageError(f"compact_after must be at least 1 or None, got {compact_after}")
        self._tasks: dict[Hashable, Task] = {}
        # A defaultdict, so `add` appends without building a spare list per
        # dependency the way `setdefault(dep, [])` would.
        self._dependents: defaultdict[Hashable, list[Hashable]] = defaultdict(list)
        self._order_cache: tuple[tuple[int, int], list[Hashable]] | None = None
        # An added task is logged as the Task itself, the cheapest record of
        # the whole change. Its Delta is built only when someone reads it.
        self._log: list[Task | Delta] = []
        self._base_version = 0
        self._compact_after = sys.maxsize if compact_after is None else compact_after
        self._on_compact = on_compact
        self._hash: tuple[int, str] | None = None
        self._add_all(list(tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __getitem__(self, task_id: Hashable) -> Task:
        return self._tasks[task_id]

    @property
    def version(self) -> int:
        """The number of changes since the graph was built."""
        return self._base_version + len(self._log)

    @property
    def base_version(self) -> int:
        """The version of the last compaction. Deltas up to it are no longer listed."""
        return self._base_version

    def add(self, task: Task) -> None:
        """Add ``task``, whose dependencies must already be in the graph.

        Nothing is returned, to keep this call cheap: read the change back with
        ``deltas_since(version - 1)`` when it is needed.
        """
        # Plain membership tests on this hot path. _check_new builds the
        # exact error message, and runs only when one of them fails.
        tasks = self._tasks
        if task.id in tasks or task.id in task.dependencies:
            self._check_new(task, known=tasks)
        for dep in task.dependencies:
            if dep not in tasks:
                self._check_new(task, known=tasks)
        log = self._log
        if len(log) >= self._compact_after:
            self.compact()
        self._insert(task)
        log.append(task)

    def add_edge(self, parent: Hashable, child: Hashable) -> Delta:
        """Make ``child`` depend on ``parent``, both already in the graph.

        The task stored under ``child`` is replaced by a copy whose
        dependencies include ``parent``, since tasks are frozen. Adding an edge
        that exists is an error, so that every delta is a real change.

        Raises:
            GraphError: An id is unknown, the edge is a self edge or exists
                already, or it would close a cycle (the message shows it).

        Example:
            >>> from dragonscale_lc.runtime import Task, TaskGraph
            >>> graph = TaskGraph([Task(id="a", fn=print), Task(id="b", fn=print)])
            >>> graph.add_edge("a", "b").ids
            ('a', 'b')
            >>> graph["b"].dependencies
            frozenset({'a'})
        """
        self._check_edge(parent, child)
        self._make_room()

        old = self._tasks[child]
        self._tasks[child] = dataclasses.replace(old, dependencies=old.dependencies | {parent})
        self._dependents[parent].append(child)

        delta = Delta(kind=DeltaKind.ADD_EDGE, ids=(parent, child), version=self.version + 1)
        self._log.append(delta)
        return delta

    def drop(self, task_id: Hashable, *, cascade: bool = False) -> Delta:
        """Remove ``task_id`` and the edges into it.

        A task that others depend on is dropped only with ``cascade=True``,
        which drops every task downstream of it as well. The graph does not
        track whether a task has started, so the caller checks that.

        Raises:
            GraphError: The id is unknown, or other tasks depend on it and
                ``cascade`` is false.

        Example:
            >>> from dragonscale_lc.runtime import Task, TaskGraph
            >>> graph = TaskGraph([Task(id="a", fn=print),
            ...                    Task(id="b", fn=print, dependencies={"a"})])
            >>> graph.drop("a", cascade=True).ids
            ('a', 'b')
            >>> len(graph)
            0
        """
        order = self._drop_order(task_id, cascade=cascade)
        self._make_room()

        dropped = set(order)
        tasks = tuple(self._tasks.pop(tid) for tid in order)
        for tid in order:
            self._dependents.pop(tid, None)
        parents = {dep for task in tasks for dep in task.dependencies} - dropped
        for parent in parents:
            kept = [child for child in self._dependents[parent] if child not in dropped]
            if kept:
                self._dependents[parent] = kept
            else:
                del self._dependents[parent]

        delta = Delta(kind=DeltaKind.DROP, ids=order, version=self.version + 1, tasks=tasks)
        self._log.append(delta)
        return delta

    def deltas_since(self, version: int) -> list[Delta]:
        """Return the deltas recorded after ``version``, oldest first.

        Raises:
            GraphError: ``version`` is older than :attr:`base_version` (those
                deltas were compacted away) or newer than :attr:`version`.

        Example:
            >>> from dragonscale_lc.runtime import Task, TaskGraph
            >>> graph = TaskGraph()
            >>> graph.add(Task(id="a", fn=print))
            >>> graph.add(Task(id="b", fn=print))
            >>> [delta.ids for delta in graph.deltas_since(1)]
            [('b',)]
        """
        base = self._base_version
        if version < base:
            raise GraphError(
                f"cannot list the deltas since version {version}: the log was compacted "
                f"up to version {base}; read the graph itself, or ask from version {base} on"
            )
        if version > self.version:
            raise GraphError(
                f"cannot list the deltas since version {version}: "
                f"the graph is at version {self.version}"
            )
        return [self._delta_at(index) for index in range(version - base, len(self._log))]

    def compact(self) -> Compaction:
        """Fold the delta log into the base: the log empties, the graph stays as it is.

        Example:
            >>> from dragonscale_lc.runtime import Task, TaskGraph
            >>> graph = TaskGraph()
            >>> graph.add(Task(id="a", fn=print))
            >>> summary = graph.compact()
            >>> (summary.base_version, graph.version, graph.deltas_since(1))
            (1, 1, [])
        """
        summary = Compaction(
            previous_base_version=self._base_version,
            base_version=self.version,
            deltas=len(self._log),
            tasks=len(self._tasks),
        )
        self._base_version = summary.base_version
        self._log.clear()
        if summary.deltas and self._on_compact is not None:
            self._on_compact(summary)
        return summary

    def dependents(self, task_id: Hashable) -> tuple[Hashable, ...]:
        """Return the ids of the tasks that depend directly on ``task_id``."""
        return tuple(self._dependents.get(task_id, ()))

    def topological_order(self) -> list[Hashable]:
        """Return every id, each after all of its dependencies (Kahn's algorithm).

        The order is computed once per version of the graph; the returned list
        is a copy, so callers may change it.
        """
        cached = self._order_cache
        if cached is None or cached[0] != (self.version, len(self._tasks)):
            cached = ((self.version, len(self._tasks)), self._compute_order())
            self._order_cache = cached
        return list(cached[1])

    def _compute_order(self) -> list[Hashable]:
        waiting = {tid: len(task.dependencies) for tid, task in self._tasks.items()}
        order = [tid for tid, count in waiting.items() if count == 0]
        children_of = self._dependents.get
        for tid in order:  # the list grows while it is walked
            for child in children_of(tid, ()):
                count = waiting[child] - 1
                waiting[child] = count
                if count == 0:
                    order.append(child)
        return order

    def structure_hash(self) -> str:
        """Return a hex digest of the ids, edges and stated costs, whatever the build order.

        Two graphs with the same tasks, dependencies and costs have the same
        hash, which makes it a key for caching analysis results. Ids are read
        through ``repr()``, so they need a repr that is stable and
        distinguishes them (ints and strings have one).

        Example:
            >>> from dragonscale_lc.runtime import Task, TaskGraph
            >>> a, b = Task(id="a", fn=print), Task(id="b", fn=print)
            >>> TaskGraph([a, b]).structure_hash() == TaskGraph([b, a]).structure_hash()
            True
        """
        # The version names the state exactly, so the digest is reused until
        # the next change.
        if self._hash is not None and self._hash[0] == self.version:
            return self._hash[1]
        records = sorted(_structure_record(task) for task in self._tasks.values())
        digest = hashlib.blake2b("\n".join(records).encode(), digest_size=16).hexdigest()
        self._hash = (self.version, digest)
        return digest

    def _add_all(self, tasks: list[Task]) -> None:
        # One pass of plain membership tests finds whether any task is
        # invalid. Only then does _check_all name the first invalid task.
        by_id = self._tasks
        for task in tasks:
            by_id[task.id] = task
        known = by_id.keys()
        dependents = self._dependents
        valid = len(by_id) == len(tasks)
        for task in tasks if valid else ():
            dependencies = task.dependencies
            if not dependencies:
                continue
            if task.id in dependencies or not known >= dependencies:
                valid = False
                break
            for dep in dependencies:
                dependents[dep].append(task.id)
        if not valid:
            by_id.clear()
            dependents.clear()
            self._check_all(tasks)
        if len(self.topological_order()) < len(self._tasks):
            raise GraphError(f"the graph has a cycle: {_describe_path(self._find_cycle())}")

    def _check_all(self, tasks: list[Task]) -> NoReturn:
        ids = {task.id for task in tasks}
        seen: set[Hashable] = set()
        for task in tasks:
            if task.id in seen:
                raise GraphError(f"duplicate task id {task.id!r}: every task needs its own id")
            seen.add(task.id)
            self._check_new(task, known=ids)
        raise AssertionError("unreachable: _add_all found an invalid task in this list")

    def _check_new(self, task: Task, *, known: Container[Hashable]) -> None:
        if task.id in self._tasks:
            raise GraphError(f"duplicate task id {task.id!r}: every task needs its own id")
        if task.id in task.dependencies:
            raise GraphError(f"task {task.id!r} depends on itself")
        missing = sorted((dep for dep in task.dependencies if dep not in known), key=repr)
        if missing:
            names = ", ".join(map(repr, missing))
            raise GraphError(
                f"task {task.id!r} depends on unknown task {names}: "
                "add the dependency before the task that needs it"
            )

    def _check_edge(self, parent: Hashable, child: Hashable) -> None:
        edge = f"cannot add edge {parent!r} -> {child!r}"
        missing = sorted({tid for tid in (parent, child) if tid not in self._tasks}, key=repr)
        if missing:
            names = ", ".join(map(repr, missing))
            raise GraphError(f"{edge}: unknown task {names}: add the task before the edge")
        if parent == child:
            raise GraphError(f"{edge}: a task cannot depend on itself")
        if parent in self._tasks[child].dependencies:
            raise GraphError(f"{edge}: task {child!r} already depends on {parent!r}")
        # The edge closes a cycle exactly when the parent is already
        # downstream of the child, so only the child's descendants are searched.
        path = self._path(child, parent)
        if path:
            raise GraphError(f"{edge}: it would close the cycle {_describe_path([parent, *path])}")

    def _path(self, start: Hashable, goal: Hashable) -> list[Hashable]:
        # Breadth-first, so the cycle an error reports is a shortest one.
        came_from: dict[Hashable, Hashable] = {start: start}
        frontier = [start]
        for node in frontier:  # the list grows while it is walked
            for child in self._dependents.get(node, ()):
                if child in came_from:
                    continue
                came_from[child] = node
                if child == goal:
                    path = [child]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                frontier.append(child)
        return []

    def _drop_order(self, task_id: Hashable, *, cascade: bool) -> tuple[Hashable, ...]:
        if task_id not in self._tasks:
            raise GraphError(f"cannot drop task {task_id!r}: it is not in the graph")
        children = self._dependents.get(task_id, ())
        if children and not cascade:
            names = ", ".join(map(repr, sorted(children, key=repr)))
            verb = "depends" if len(children) == 1 else "depend"
            noun = "task" if len(children) == 1 else "tasks"
            raise GraphError(
                f"cannot drop task {task_id!r}: {noun} {names} {verb} on it; "
                "drop those first, or pass cascade=True to drop them too"
            )
        order = [task_id]
        seen = {task_id}
        for tid in order:  # the list grows while it is walked
            for child in self._dependents.get(tid, ()):
                if child not in seen:
                    seen.add(child)
                    order.append(child)
        return tuple(order)

    def _make_room(self) -> None:
        if len(self._log) >= self._compact_after:
            self.compact()

    def _insert(self, task: Task) -> None:
        self._tasks[task.id] = task
        dependents = self._dependents
        for dep in task.dependencies:
            dependents[dep].append(task.id)

    def _delta_at(self, index: int) -> Delta:
        entry = self._log[index]
        if isinstance(entry, Delta):
            return entry
        version = self._base_version + index + 1
        return Delta(kind=DeltaKind.ADD_TASK, ids=(entry.id,), version=version, tasks=(entry,))

    def _find_cycle(self) -> list[Hashable]:
        # Iterative depth-first search, so long cycles cannot exhaust the
        # recursion limit. `path` is the current path from the root, and
        # the first edge back into it closes a cycle.
        done: set[Hashable] = set()
        for root in self._tasks:
            if root in done:
                continue
            path: list[Hashable] = [root]
            on_path = {root}
            children = [iter(self._dependents.get(root, ()))]
            while children:
                child = next(children[-1], None)
                if child is None:
                    finished = path.pop()
                    on_path.discard(finished)
                    done.add(finished)
                    children.pop()
                    continue
                if child in on_path:
                    return [*path[path.index(child) :], child]
                if child not in done:
                    path.append(child)
                    on_path.add(child)
                    children.append(iter(self._dependents.get(child, ())))
        return []


def _structure_record(task: Task) -> str:
    # A repr of a tuple of strings cannot be confused with another one, and a
    # cost of 1 hashes like 1.0 because it ranks the same.
    cost = None if task.cost is None else float(task.cost)
    return repr((repr(task.id), repr(cost), sorted(map(repr, task.dependencies))))


def _describe_path(path: list[Hashable], *, shown: int = 12) -> str:
    if len(path) <= shown:
        return " -> ".join(map(repr, path))
    head = " -> ".join(map(repr, path[: shown // 2]))
    tail = " -> ".join(map(repr, path[-shown // 2 :]))
    return f"{head} -> ... -> {tail} ({len(path) - 1} tasks)"
