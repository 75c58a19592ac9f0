"""A task's state inside a run, kept on its record, and the event payloads built from it."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._checkpoint import CheckpointToken
from ._task import Task

if TYPE_CHECKING:
    from ._report import TaskRecord

__all__ = ["RunState", "event_data", "is_async_callable"]


_RUN_SLOTS = (
    "entry",
    "executing",
    "is_async",
    "plain",
    "preempting",
    "priority",
    "rank",
    "resume",
    "seq",
    "settled",
    "task",
    "token",
    "waiting",
    "worker_task",
)


class RunState:
    """What a run tracks about one of its tasks, as slots of the task's record.

    :class:`TaskRecord` derives from this class, so a run keeps one object per
    task: its record. These slots are not dataclass fields, so they are left
    out of the record's repr, equality, ``dataclasses.replace`` and pickled
    state, and they are unset on records made outside a run.

    ``priority`` starts at the task's priority and grows by the executor's
    aging step at each pre-emption, so a task cannot be starved by a stream of
    more urgent work.

    :func:`~dragonscale_lc.runtime._run.new_node` sets them for a task added
    to a run.

    ``plain`` says whether the task is a local async call with no references
    in its arguments, no timeout, no retry policy of its own and no pre-emption. Such
    a task is awaited and settled directly by its worker when the run's
    settings allow it (see ``Run._work``).
    """

    # Named, not written out: mypy checks slots only when they are literals,
    # and its dataclass plugin gives TaskRecord its fields alone as slots, so
    # it would reject every write to these on a record.
    __slots__ = _RUN_SLOTS

    task: Task
    rank: float
    seq: int
    priority: int
    waiting: int
    entry: tuple[Any, ...] | None  # its ready-queue entry
    is_async: bool  # is_async_callable(task.fn), which callers may cache
    plain: bool
    worker_task: asyncio.Task[Any] | None  # the worker coroutine running it
    token: CheckpointToken | None
    preempting: bool
    executing: bool
    settled: bool
    resume: asyncio.Future[None] | None

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
