"""Execution backends: where the call of a task marked ``remote`` runs.

The dispatcher always stays in the run: it orders ready tasks, resolves
their arguments and settles them. A backend only performs the call. The
default, :class:`LocalBackend`, runs it where the run runs unmarked tasks: an
async function on the event loop, a sync one in the run's worker threads.
Adapters for clusters (``dragonscale_lc.backends``) implement the same
protocol outside the runtime core.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Call", "ExecutionBackend", "LocalBackend"]


@dataclass(frozen=True, slots=True)
class Call:
    """One attempt of a task, with its arguments resolved, handed to a backend.

    Attributes:
        task_id: The task's id.
        name: The task's name (its tool or function name).
        fn: The task's function, sync or async.
        args: Positional arguments, with every reference replaced by its output.
        kwargs: Keyword arguments, resolved the same way.
        is_async: Whether calling ``fn`` returns a coroutine.
        priority: The task's effective priority: its own plus the aging of
            its pre-emptions. Higher runs first.
        rank: The task's upward rank in seconds (its cost plus the longest
            path below it). Among equal priorities, higher runs first.
        run_in_thread: Runs a sync zero-argument function in one of the run's
            worker threads; for backends that call sync functions locally.
    """

    task_id: Hashable
    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    is_async: bool
    priority: int
    rank: float
    run_in_thread: Callable[[Callable[[], Any]], Awaitable[Any]]


@runtime_checkable
class ExecutionBackend(Protocol):
    """Performs the calls of tasks marked ``remote=True``.

    ``execute`` returns the call's output or raises its error, which fails the
    task. When the run cancels the awaiting coroutine (a timeout, a
    cancelled run), ``execute`` should stop or abandon the call and let the
    ``CancelledError`` propagate.
    """

    @property
    def name(self) -> str:
        """What the run report's ``worker`` field shows for tasks this backend ran."""
        ...

    async def execute(self, call: Call) -> Any:
        """Run ``call`` and return its output."""
        ...


class LocalBackend:
    """Runs calls in the run itself: async functions on the event loop, sync ones in threads.

    This is the default backend, so ``remote=True`` changes nothing for an
    executor that has no other backend. Sync calls take a copy of the caller's
    context, as unmarked tasks do.
    """

    @property
    def name(self) -> str:
        return "local"

    async def execute(self, call: Call) -> Any:
        if call.is_async:
            return await call.fn(*call.args, **call.kwargs)
        context = contextvars.copy_context()
        return await call.run_in_thread(
            functools.partial(context.run, call.fn, *call.args, **call.kwargs)
        )
