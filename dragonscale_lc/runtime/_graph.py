"""TaskGraph: a validated directed acyclic graph of tasks."""

from __future__ import annotations

from collections.abc import Container, Hashable, Iterable, Iterator

from .._errors import GraphError
from ._task import Task

__all__ = ["TaskGraph"]


class TaskGraph:
    """Tasks and their dependencies, valid after every change.

    Unknown dependencies, duplicate ids, self-dependencies and cycles are
    rejected with a :class:`GraphError` that names the ids involved.

    Example:
        >>> from dragonscale_lc.runtime import Task, TaskGraph
        >>> graph = TaskGraph([Task(id="a", fn=print), Task(id="b", fn=print, dependencies={"a"})])
        >>> graph.dependents("a")
        ('b',)
    """

    def __init__(self, tasks: Iterable[Task] = ()) -> None:
        self._tasks: dict[Hashable, Task] = {}
        self._dependents: dict[Hashable, list[Hashable]] = {}
        self._add_all(list(tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __getitem__(self, task_id: Hashable) -> Task:
        return self._tasks[task_id]

    def add(self, task: Task) -> None:
        """Add ``task``, whose dependencies must already be in the graph."""
        self._check_new(task, known=self._tasks.keys())
        self._insert(task)

    def dependents(self, task_id: Hashable) -> tuple[Hashable, ...]:
        """Return the ids of the tasks that depend directly on ``task_id``."""
        return tuple(self._dependents.get(task_id, ()))

    def topological_order(self) -> list[Hashable]:
        """Return every id, each after all of its dependencies (Kahn's algorithm)."""
        waiting = {tid: len(task.dependencies) for tid, task in self._tasks.items()}
        order = [tid for tid, count in waiting.items() if count == 0]
        for tid in order:  # the list grows while it is walked
            for child in self._dependents.get(tid, ()):
                waiting[child] -= 1
                if waiting[child] == 0:
                    order.append(child)
        return order

    def _add_all(self, tasks: list[Task]) -> None:
        ids = {task.id for task in tasks}
        seen: set[Hashable] = set()
        for task in tasks:
            if task.id in seen:
                raise GraphError(f"duplicate task id {task.id!r}: every task needs its own id")
            seen.add(task.id)
            self._check_new(task, known=ids)
        for task in tasks:
            self._insert(task)
        if len(self.topological_order()) < len(self._tasks):
            raise GraphError(f"the graph has a cycle: {_describe_path(self._find_cycle())}")

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

    def _insert(self, task: Task) -> None:
        self._tasks[task.id] = task
        for dep in task.dependencies:
            self._dependents.setdefault(dep, []).append(task.id)

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


def _describe_path(path: list[Hashable], *, shown: int = 12) -> str:
    if len(path) <= shown:
        return " -> ".join(map(repr, path))
    head = " -> ".join(map(repr, path[: shown // 2]))
    tail = " -> ".join(map(repr, path[-shown // 2 :]))
    return f"{head} -> ... -> {tail} ({len(path) - 1} tasks)"
