"""A task's run-time state inside a run, and the event payloads built from it."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any

from ._checkpoint import CheckpointToken
from ._report import TaskRecord
from ._task import Task

__all__ = ["Node", "event_data", "is_async_callable"]


class Node:
    """One task of a run with what the dispatcher tracks about it.

    ``priority`` starts at the task's priority and grows by the executor's
    aging step at each pre-emption, so a task cannot be starved by a stream of
    more urgent work.

    ``plain`` says whether the task is a local async call with no references
    in its arguments, no timeout, no retry policy of its own and no pre-emption. Such
    a task is awaited and settled directly by its worker when the run's
    settings allow it (see ``Run._work``).
    """

    __slots__ = (
        "entry",
        "executing",
        "is_async",
        "plain",
        "preempting",
        "priority",
        "rank",
        "record",
        "resume",
        "seq",
        "settled",
        "task",
        "token",
        "waiting",
        "worker",
    )

    def __init__(
        self, task: Task, record: TaskRecord, rank: float, seq: int, is_async: bool
    ) -> None:
        self.task = task
        self.record = record
        self.rank = rank
        self.seq = seq
        self.priority = task.priority
        self.waiting = 0
        self.entry: tuple[Any, ...] | None = None  # its ready-queue entry
        self.is_async = is_async  # is_async_callable(task.fn), which callers may cache
        self.plain = (
            is_async
            and not (task.has_refs or task.preemptible or task.remote)
            and task.timeout is None
            and task.retry is None
        )
        self.worker: asyncio.Task[Any] | None = None
        self.token: CheckpointToken | None = None
        self.preempting = False
        self.executing = False
        self.settled = False
        self.resume: asyncio.Future[None] | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys whose pool caps apply: the task's name and its resources.

        Built on demand, since only runs with a pool read them.
        """
        task = self.task
        return (task.name, *task.resources) if task.resources else (task.name,)


def event_data(record: TaskRecord) -> dict[str, Any]:
    """Return the payload of a task's settled event."""
    return {
        "task_id": record.id,
        "name": record.name,
        "status": record.status.value,
        "output": record.output,
        "error": record.error,
        "start": record.start,
        "end": record.end,
    }


@functools.lru_cache(maxsize=1024)
def _is_async_function(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """Return whether calling ``fn`` returns a coroutine to await."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    try:
        return _is_async_function(fn)
    except TypeError:  # an unhashable callable object
        return _is_async_function.__wrapped__(fn)
