"""Calling a task's function: arguments, retries, timeouts and worker threads.

:class:`RunCalls` is a mixin of :class:`~dragonscale_lc.runtime.Run`. Async
functions are awaited on the worker coroutine. Sync functions run in the
run's own thread pool, one thread per worker slot, with a copy of the
worker's context. Tasks marked ``remote`` go to the executor's backend.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from .._errors import TaskTimeoutError
from ._backend import Call, LocalBackend
from ._refs import resolve
from ._report import TaskRecord
from ._task import Task
from ._threads import DaemonThreadPool

if TYPE_CHECKING:
    from ._events import EventBus
    from ._executor import DagExecutor

__all__ = ["RunCalls"]

logger = logging.getLogger(__name__)


class RunCalls:
    """Mixin of :class:`Run` that calls a task's function for each attempt."""

    # Set by Run.__init__.
    _executor: DagExecutor
    _events: EventBus
    _threads: DaemonThreadPool | None

    if TYPE_CHECKING:
        # Defined by Run.

        def output(self, task_id: Hashable) -> Any: ...

        def _publish(self, topic: str, data: Callable[[], dict[str, Any]]) -> None: ...

    async def _attempts(self, node: TaskRecord) -> Any:
        task = node.task
        # Arguments are built inside the worker, so one that cannot be built
        # (a list output used as a dict key) fails this task instead of
        # raising out of the dispatcher and leaving the run waiting forever.
        args = resolve(task.args, self.output) if task.has_refs else task.args
        kwargs = resolve(task.kwargs, self.output) if task.has_refs else task.kwargs
        node.args, node.kwargs = args, kwargs
        if self._events.active:
            self._publish("task.started", lambda: _started_data(task, args, kwargs))
        policy = task.retry or self._executor.retry
        if policy is None or policy.attempts == 1:
            node.attempts += 1
            if (
                node.is_async
                and not self._executor.is_remote(task)
                and task.timeout is None
                and self._executor.default_timeout is None
            ):
                return await task.fn(*args, **kwargs)  # the common case, without two calls
            return await self._call(node, args, kwargs)
        async for attempt in policy.retrying(
            sleep=self._executor.sleep, before_sleep=functools.partial(self._retrying, node)
        ):
            with attempt:
                node.attempts += 1
                return await self._call(node, args, kwargs)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _retrying(self, node: TaskRecord, state: Any) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.info("retrying task %r (%s) after %r", node.task.id, node.task.name, error)
        self._publish(
            "task.retrying",
            lambda: {
                "task_id": node.task.id,
                "name": node.task.name,
                "attempt": state.attempt_number,
                "error": error,
            },
        )

    async def _call(self, node: TaskRecord, args: tuple[Any, ...], kwargs: Any) -> Any:
        task = node.task
        timeout = task.timeout if task.timeout is not None else self._executor.default_timeout
        if timeout is None:
            return await self._invoke(node, args, kwargs)
        try:
            async with asyncio.timeout(timeout) as scope:
                return await self._invoke(node, args, kwargs)
        except TimeoutError:
            if not scope.expired():
                raise  # the tool itself raised TimeoutError
            message = f"task {task.id!r} ({task.name}) timed out after {timeout:g} s"
            raise TaskTimeoutError(message, task_id=task.id, tool=task.name) from None

    async def _invoke(self, node: TaskRecord, args: tuple[Any, ...], kwargs: Any) -> Any:
        fn = node.task.fn
        if self._executor.is_remote(node.task):
            return await self._send(node, args, kwargs)
        if node.is_async:
            return await fn(*args, **kwargs)
        # A copy of the worker's context goes with the call, so context
        # variables (LangChain callbacks and the checkpoint token among them)
        # follow it into the thread.
        return await self._run_in_thread(
            functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        )

    async def _send(self, node: TaskRecord, args: tuple[Any, ...], kwargs: Any) -> Any:
        """Hand a remote task's call to the executor's backend."""
        task = node.task
        backend = self._executor.backend
        if not isinstance(backend, LocalBackend):
            node.worker = backend.name  # the local backend keeps event-loop or thread
        call = Call(
            task_id=task.id,
            name=task.name,
            fn=task.fn,
            args=args,
            kwargs=kwargs,
            is_async=node.is_async,
            priority=node.priority,
            rank=node.rank,
            run_in_thread=self._run_in_thread,
        )
        return await backend.execute(call)

    async def _run_in_thread(self, call: Callable[[], Any]) -> Any:
        if self._threads is None:
            # One thread per worker slot, so max_workers sync calls really run
            # at once (the loop's default pool has only min(32, CPUs + 4)).
            self._threads = DaemonThreadPool(
                max_workers=self._executor.max_workers, thread_name_prefix="dragonscale-worker"
            )
        threads = self._threads
        try:
            return await asyncio.get_running_loop().run_in_executor(threads, call)
        except asyncio.CancelledError:
            # A sync call cannot be interrupted, so its thread stays busy until
            # the call returns. Later calls get a fresh pool instead of
            # queueing behind it; the old pool ends once its calls return.
            if self._threads is threads:
                threads.shutdown(wait=False)
                self._threads = None
            raise


def _started_data(task: Task, args: tuple[Any, ...], kwargs: Any) -> dict[str, Any]:
    return {"task_id": task.id, "name": task.name, "args": args, "kwargs": kwargs}
