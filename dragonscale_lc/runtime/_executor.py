"""DagExecutor: dependency-driven, priority-ordered execution of task graphs.

A task is dispatched the moment its last dependency settles and a worker slot
is free. There is no polling loop and no superstep: every task's completion
callback updates its dependents, pushes the ones that became ready onto a
binary heap and starts as many as the free slots allow. A slow task therefore
holds up only the tasks that depend on it.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import heapq
import inspect
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from .._errors import RunError, TaskTimeoutError, UsageError
from ._analysis import upward_ranks
from ._events import Event, EventBus
from ._graph import TaskGraph
from ._refs import ErrorObservation, resolve
from ._report import RunReport, TaskRecord
from ._task import Task, TaskStatus

__all__ = ["DagExecutor", "FailurePolicy", "Run"]

logger = logging.getLogger(__name__)


class FailurePolicy(enum.Enum):
    """Policy for the dependents of a task that failed.

    ``CONTINUE`` runs them with an :class:`ErrorObservation` in place of the
    failed output (LLMCompiler's behaviour: the planner's tools and the joiner
    see the error). ``SKIP_DEPENDENTS`` marks every task downstream of the
    failure as skipped. ``FAIL_FAST`` cancels the whole run.
    """

    CONTINUE = "continue"
    SKIP_DEPENDENTS = "skip_dependents"
    FAIL_FAST = "fail_fast"


class DagExecutor:
    """Run tasks concurrently in dependency order with at most ``max_workers`` at once.

    Args:
        max_workers: Maximum number of tasks running at the same time.
        failure_policy: What happens downstream of a failed task.
        default_timeout: Timeout in seconds for tasks that set none.
        events: Bus on which task and run events are published.
        clock: Monotonic clock in seconds, injectable for tests.

    Example:
        >>> import asyncio
        >>> from dragonscale_lc.runtime import DagExecutor, Ref, Task
        >>> tasks = [Task(id=1, fn=lambda: 20), Task(id=2, fn=lambda x: x + 1, args=(Ref(1),))]
        >>> asyncio.run(DagExecutor().run(tasks))[2].output
        21
    """

    def __init__(
        self,
        *,
        max_workers: int = 16,
        failure_policy: FailurePolicy | str = FailurePolicy.CONTINUE,
        default_timeout: float | None = None,
        events: EventBus | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_workers < 1:
            raise UsageError(f"max_workers must be at least 1, got {max_workers}")
        if default_timeout is not None and default_timeout <= 0:
            raise UsageError(f"default_timeout must be positive seconds, got {default_timeout}")
        try:
            policy = FailurePolicy(failure_policy)
        except ValueError:
            choices = ", ".join(p.value for p in FailurePolicy)
            raise UsageError(
                f"failure_policy must be one of {choices}, got {failure_policy!r}"
            ) from None
        self.max_workers = max_workers
        self.failure_policy = policy
        self.default_timeout = default_timeout
        self.events = events if events is not None else EventBus()
        self.clock = clock

    def open(self) -> Run:
        """Return a new run, to use as ``async with executor.open() as run:``."""
        return Run(self)

    async def run(self, tasks: TaskGraph | Iterable[Task]) -> RunReport:
        """Run a complete graph and return its report.

        Ready tasks start in order of user priority, then upward rank
        (critical path first), then insertion order.
        """
        graph = tasks if isinstance(tasks, TaskGraph) else TaskGraph(tasks)
        ranks = upward_ranks(graph)
        async with self.open() as run:
            # Queue the whole graph before dispatching, so the first tasks
            # added cannot take the workers ahead of higher-priority ones.
            for task_id in graph.topological_order():
                run._insert(graph[task_id], rank=ranks[task_id])
            run._dispatch()
            return await run.wait()


class _Node:
    __slots__ = ("asyncio_task", "rank", "record", "seq", "task", "waiting")

    def __init__(self, task: Task, record: TaskRecord, rank: float, seq: int) -> None:
        self.task = task
        self.record = record
        self.rank = rank
        self.seq = seq
        self.waiting = 0
        self.asyncio_task: asyncio.Task[Any] | None = None

    def __lt__(self, other: _Node) -> bool:
        # Heap order: higher priority first, then higher rank, then first added.
        return (-self.task.priority, -self.rank, self.seq) < (
            -other.task.priority,
            -other.rank,
            other.seq,
        )


class Run:
    """One execution of a growing task graph.

    Tasks may be added while earlier ones run, which is how streamed plans
    start executing before the planner has finished writing them. Leaving the
    ``async with`` block cancels and awaits whatever is still running.
    """

    def __init__(self, executor: DagExecutor) -> None:
        self._executor = executor
        self._clock = executor.clock
        self._events = executor.events
        self.graph = TaskGraph()
        self.report = RunReport()
        self._nodes: dict[Hashable, _Node] = {}
        self._ready: list[_Node] = []
        self._running = 0
        self._unsettled = 0
        self._seq = 0
        self._closed = False
        self._cancelled = False
        self._cancel_reason: str | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._threads: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Run:
        self.report.started_at = self._clock()
        self._publish("run.started", lambda: {})
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._unsettled:
            await self.cancel()
        if self._threads is not None:
            # A sync call cannot be interrupted; its thread ends when the call
            # returns, without holding up the caller here.
            self._threads.shutdown(wait=False, cancel_futures=True)
        self._finish()

    def add(self, task: Task, *, rank: float = 0.0) -> None:
        """Add ``task``; it starts as soon as its dependencies settle and a worker is free.

        Raises:
            GraphError: The id is taken, or a dependency is not in the run yet.
            UsageError: The run was closed or cancelled.
        """
        self._insert(task, rank=rank)
        self._dispatch()

    def _insert(self, task: Task, *, rank: float) -> None:
        if self._closed:
            raise UsageError(f"cannot add task {task.id!r}: the run is closed")
        self.graph.add(task)
        record = TaskRecord(
            id=task.id,
            name=task.name,
            dependencies=tuple(task.dependencies),
            args=task.args,
            kwargs=dict(task.kwargs),
        )
        self.report.records[task.id] = record
        node = _Node(task, record, rank, self._seq)
        self._seq += 1
        self._nodes[task.id] = node
        self._unsettled += 1
        if self._cancelled:
            # fail_fast cancelled the run: later tasks are recorded, not run.
            self._settle(node, TaskStatus.CANCELLED)
            return
        for dep in task.dependencies:
            dep_status = self._nodes[dep].record.status
            if not dep_status.is_terminal:
                node.waiting += 1
            elif dep_status is not TaskStatus.DONE and record.status is TaskStatus.PENDING:
                # Only the first failed dependency settles the task; a second
                # settle would count it twice and end the run too early.
                self._dependency_failed(node)
        if record.status is TaskStatus.PENDING and node.waiting == 0:
            self._make_ready(node)

    def output(self, task_id: Hashable) -> Any:
        """Return a settled task's output, or an :class:`ErrorObservation` if it did not finish."""
        record = self.report.records[task_id]
        if record.status is TaskStatus.DONE:
            return record.output
        error = record.error or RunError(f"task {task_id!r} was {record.status.value}")
        return ErrorObservation(task_id, error, cause=self._root_failure(task_id))

    def _root_failure(self, task_id: Hashable) -> str | None:
        """Describe the first failure upstream of ``task_id``, where its trouble began."""
        root = None
        pending = list(self.report.records[task_id].dependencies)
        seen = set()
        while pending:
            dep = pending.pop()
            if dep in seen:
                continue
            seen.add(dep)
            record = self.report.records[dep]
            if record.status is not TaskStatus.DONE:
                root = record
                pending.extend(record.dependencies)
        if root is None:
            return None
        error = root.error or RunError(f"task {root.id!r} was {root.status.value}")
        return f"task {root.id} ({root.name}) {type(error).__name__}: {error}"

    def close(self) -> None:
        """Declare that no more tasks will be added."""
        self._closed = True

    async def wait_idle(self) -> None:
        """Wait until every task added so far has settled; the run stays open."""
        if self._unsettled == 0:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            await self.cancel()
            raise

    async def wait(self) -> RunReport:
        """Close the run, wait for every task to settle and return the report.

        Cancelling the caller cancels every task of the run and awaits them
        before the cancellation propagates.
        """
        self.close()
        await self.wait_idle()
        self._finish()
        return self.report

    async def cancel(self) -> None:
        """Cancel every task that has not settled, await them, and close the run."""
        self._closed = True
        started = self._cancel_all()
        if started:
            await asyncio.gather(*started, return_exceptions=True)

    def _cancel_all(self, reason: str | None = None) -> list[asyncio.Task[Any]]:
        # Tasks that have not started settle at once; running ones settle in
        # their done callbacks once the cancellation reaches them.
        self._cancelled = True
        self._cancel_reason = reason
        started = []
        for node in self._nodes.values():
            if node.asyncio_task is not None:
                node.asyncio_task.cancel()
                started.append(node.asyncio_task)
            elif not node.record.status.is_terminal:
                self._settle(node, TaskStatus.CANCELLED)
        return started

    def _make_ready(self, node: _Node) -> None:
        node.record.status = TaskStatus.READY
        heapq.heappush(self._ready, node)
        self._publish("task.ready", lambda: {"task_id": node.task.id, "name": node.task.name})

    def _dispatch(self) -> None:
        if self._cancelled:
            return
        limit = self._executor.max_workers
        while self._ready and self._running < limit:
            node = heapq.heappop(self._ready)
            if node.record.status is TaskStatus.READY:
                self._start(node)

    def _start(self, node: _Node) -> None:
        record = node.record
        record.status = TaskStatus.RUNNING
        record.start = self._clock() - self.report.started_at
        record.attempts += 1
        self._running += 1
        is_async = _is_async_callable(node.task.fn)
        record.worker = "event-loop" if is_async else "thread"
        node.asyncio_task = asyncio.get_running_loop().create_task(self._call(node, is_async))
        node.asyncio_task.add_done_callback(functools.partial(self._on_task_done, node))

    async def _call(self, node: _Node, is_async: bool) -> Any:
        task, record = node.task, node.record
        # Arguments are built inside the asyncio task, so one that cannot be
        # built (a list output used as a dict key) fails this task instead of
        # raising out of the dispatcher and leaving the run waiting forever.
        args = resolve(task.args, self.output)
        kwargs = resolve(task.kwargs, self.output)
        record.args, record.kwargs = args, dict(kwargs)
        self._publish(
            "task.started",
            lambda: {"task_id": task.id, "name": task.name, "args": args, "kwargs": kwargs},
        )
        timeout = task.timeout if task.timeout is not None else self._executor.default_timeout
        if timeout is None:
            return await self._invoke(task.fn, args, kwargs, is_async)
        try:
            async with asyncio.timeout(timeout) as scope:
                return await self._invoke(task.fn, args, kwargs, is_async)
        except TimeoutError:
            if not scope.expired():
                raise  # the tool itself raised TimeoutError
            message = f"task {task.id!r} ({task.name}) timed out after {timeout:g} s"
            raise TaskTimeoutError(message, task_id=task.id, tool=task.name) from None

    def _on_task_done(self, node: _Node, asyncio_task: asyncio.Task[Any]) -> None:
        node.asyncio_task = None
        self._running -= 1
        node.record.end = self._clock() - self.report.started_at
        if asyncio_task.cancelled():
            self._settle(node, TaskStatus.CANCELLED)
        elif (error := asyncio_task.exception()) is not None:
            node.record.error = error
            logger.debug("task %r (%s) failed: %r", node.task.id, node.task.name, error)
            self._settle(node, TaskStatus.FAILED)
            if self._executor.failure_policy is FailurePolicy.FAIL_FAST and not self._cancelled:
                task = node.task
                self._cancel_all(f"task {task.id!r} ({task.name}) failed: {error!r}")
        else:
            node.record.output = asyncio_task.result()
            self._settle(node, TaskStatus.DONE)
        self._dispatch()

    def _settle(self, node: _Node, status: TaskStatus) -> None:
        record = node.record
        record.status = status
        if status is TaskStatus.CANCELLED and record.error is None and self._cancel_reason:
            record.error = RunError(f"cancelled because {self._cancel_reason}")
        self._unsettled -= 1
        self._publish(f"task.{_TOPIC_BY_STATUS[status]}", lambda: _event_data(record))
        for child_id in self.graph.dependents(node.task.id):
            child = self._nodes[child_id]
            if child.record.status.is_terminal:
                continue
            child.waiting -= 1
            if status is not TaskStatus.DONE:
                self._dependency_failed(child)
            if child.waiting == 0 and child.record.status is TaskStatus.PENDING:
                self._make_ready(child)
        if self._unsettled == 0:
            self._wake_idle_waiters()

    def _dependency_failed(self, node: _Node) -> None:
        if self._cancelled:
            self._settle(node, TaskStatus.CANCELLED)
        elif self._executor.failure_policy is FailurePolicy.SKIP_DEPENDENTS:
            self._settle(node, TaskStatus.SKIPPED)

    def _wake_idle_waiters(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _finish(self) -> None:
        if self.report.ended_at is not None:
            return
        self.report.ended_at = self._clock()
        topic = "run.cancelled" if self._cancelled else "run.completed"
        self._publish(topic, lambda: {"ok": self.report.ok})

    def _publish(self, topic: str, data: Callable[[], dict[str, Any]]) -> None:
        # The payload is built only when someone listens to the topic.
        if self._events.wants(topic):
            self._events.publish(Event(topic, data(), self._clock() - self.report.started_at))

    async def _invoke(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any, is_async: bool
    ) -> Any:
        if is_async:
            return await fn(*args, **kwargs)
        if self._threads is None:
            # One thread per worker slot, so max_workers sync calls really run
            # at once (the loop's default pool has only min(32, CPUs + 4)).
            self._threads = ThreadPoolExecutor(
                max_workers=self._executor.max_workers, thread_name_prefix="dragonscale-worker"
            )
        # A copy of the caller's context goes with the call, so context
        # variables (LangChain callbacks among them) follow it into the thread.
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
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


_TOPIC_BY_STATUS = {
    TaskStatus.DONE: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
    TaskStatus.SKIPPED: "skipped",
}


def _event_data(record: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": record.id,
        "name": record.name,
        "status": record.status.value,
        "output": record.output,
        "error": record.error,
        "start": record.start,
        "end": record.end,
    }


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
