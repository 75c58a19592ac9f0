"""Run: one execution of a growing task graph.

Work is done by worker coroutines, at most one per free slot. A worker takes
the best ready task from a binary heap, runs it, settles it (which makes its
dependents ready) and takes the next one, so there is no polling loop, no
superstep and no asyncio task created per graph task. A slow task holds up
only the tasks that depend on it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._errors import RunError, UsageError
from ._checkpoint import CheckpointToken, Preempted, set_current
from ._delta import DeltaKind
from ._events import Event
from ._graph import TaskGraph
from ._held import HeldTasks
from ._node import event_data, is_async_callable
from ._outcome import Outcome, classify
from ._refs import ErrorObservation
from ._report import RunReport, TaskRecord
from ._run_calls import RunCalls
from ._run_changes import RunChanges
from ._run_preemption import RunPreemption
from ._strategy import Entry, entry_maker
from ._task import FailurePolicy, Task, TaskStatus
from ._threads import DaemonThreadPool

if TYPE_CHECKING:
    from ._executor import DagExecutor
    from ._pool import WorkerPool

__all__ = ["Run", "new_node"]

logger = logging.getLogger(__name__)

# Runs with tasks held back by each pool. A pool may be shared by several runs
# (an executor opened twice, or executors given the same pool), and a slot
# that one run frees must wake the tasks that another run holds back.
_HOLDING: weakref.WeakKeyDictionary[WorkerPool, weakref.WeakSet[Run]] = weakref.WeakKeyDictionary()

# Statuses read for every task. Python 3.11's EnumType defines __getattr__,
# which puts each TaskStatus.DONE read on a slow lookup path (measured at
# about ten times the cost of reading a module global).
PENDING, READY, RUNNING, DONE = (
    TaskStatus.PENDING,
    TaskStatus.READY,
    TaskStatus.RUNNING,
    TaskStatus.DONE,
)

_TOPIC_BY_STATUS = {
    TaskStatus.DONE: "task.completed",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELLED: "task.cancelled",
    TaskStatus.SKIPPED: "task.skipped",
}


def new_node(task: Task, rank: float, seq: int, is_async: bool) -> TaskRecord:
    """Return the record of ``task`` just added to a run, with its run-time state set.

    Its fields are those of ``TaskRecord(task.id, task.name, task.dependencies,
    task.args, task.kwargs)``. It is built here in one call, without the
    dataclass's ``__init__``, because this runs once per task and the
    constructor followed by a second call to set the run state was measured
    at about a third slower.
    """
    node: TaskRecord = _NEW(TaskRecord)
    node.id = task.id
    node.name = task.name
    node.dependencies = task.dependencies
    node.args = task.args
    node.kwargs = task.kwargs
    node.status = PENDING
    node.output = None
    node.error = None
    node.start = None
    node.end = None
    node.attempts = 0
    node.preemptions = 0
    node.worker = None
    node.task = task
    node.rank = rank
    node.seq = seq
    node.priority = task.priority
    node.waiting = 0
    node.entry = None
    node.is_async = is_async
    node.plain = (
        is_async
        and not (task.has_refs or task.preemptible or task.remote)
        and task.timeout is None
        and task.retry is None
    )
    node.worker_task = None
    node.token = None
    node.preempting = False
    node.executing = False
    node.settled = False
    node.resume = None
    return node


_NEW = object.__new__


class Run(RunCalls, RunChanges, RunPreemption):
    """One execution of a growing task graph.

    Tasks may be added while earlier ones run, which is how streamed plans
    start executing before the planner has finished writing them. Edges can be
    added to tasks that have not started, and tasks that have never run can be
    dropped. Leaving the ``async with`` block cancels and awaits whatever is
    still running.
    """

    def __init__(self, executor: DagExecutor, graph: TaskGraph | None = None) -> None:
        self._executor = executor
        self._clock = executor.clock
        self._events = executor.events
        # The bus's own list of subscriptions, which it never replaces: the
        # per-task path tests it without a property call.
        self._subscriptions = executor.events._subscriptions
        self._entry = entry_maker(executor.dispatch_key)
        self._pool = executor.pool
        # A graph passed in is complete and keeps its own compaction hook.
        self.graph = graph if graph is not None else TaskGraph(on_compact=self._publish_compaction)
        self._prevalidated = graph is not None
        self.report = RunReport()
        # The report's own dict, because a task's record is also its node here.
        self._nodes: dict[Hashable, TaskRecord] = self.report.records
        self._ready: list[Entry] = []
        # Running and paused tasks by id: a record has dataclass equality, so
        # it is not hashable.
        self._running: dict[Hashable, TaskRecord] = {}
        self._paused: dict[Hashable, TaskRecord] = {}
        self._held: HeldTasks | None = None  # ready tasks the pool cannot start yet
        self._holding: weakref.WeakSet[Run] | None = None
        if self._pool is not None:
            self._held = HeldTasks(self._pool)
            self._holding = _HOLDING.setdefault(self._pool, weakref.WeakSet())
        self._workers: set[asyncio.Task[None]] = set()
        self._preemptible_running = 0  # running tasks marked preemptible
        self._unsettled = 0
        self._seq = 0
        self._closed = False
        self._cancelled = False
        self._cancel_reason: str | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._threads: DaemonThreadPool | None = None

    async def __aenter__(self) -> Run:
        self.report.started_at = self._clock()
        self._publish("run.started", dict)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._unsettled:
            await self.cancel()
        elif self._workers:
            # Every task has settled and the workers are returning. Cancelling
            # them would report a finished run as cancelled.
            await asyncio.gather(*self._workers, return_exceptions=True)
        if self._threads is not None:
            # A sync call cannot be interrupted; its thread ends when the call
            # returns, without holding up the caller here.
            self._threads.shutdown(wait=False, cancel_futures=True)
        self._finish()

    # -- adding work ---------------------------------------------------------------

    def add(self, task: Task, *, rank: float | None = None) -> None:
        """Add ``task``; it starts as soon as its dependencies settle and a slot is free.

        Args:
            task: The task; its dependencies must already be in the run.
            rank: Its upward rank, if known. By default the rank is its cost
                estimate, and the ranks of its unfinished ancestors grow to
                include it, so a graph that arrives task by task (a streamed
                plan) is still ordered by critical path.

        Raises:
            GraphError: The id is taken, or a dependency is not in the run yet.
            UsageError: The run was closed.
        """
        if rank is None:
            rank = self._executor.costs.estimate(task)
            self.insert(task, rank=rank)
            self._raise_ancestor_ranks(task.dependencies, rank)
        else:
            self.insert(task, rank=rank)
        self.dispatch()

    def _raise_ancestor_ranks(self, dependencies: Iterable[Hashable], rank: float) -> None:
        # A new task or edge can only lengthen the paths through the ancestors
        # of the task below it, whose upward rank is ``rank``. So their ranks
        # grow to cost + the new path, and the walk stops where a rank does
        # not change. Tasks already started keep their place.
        estimate = self._executor.costs.estimate
        pending = [(dep, rank) for dep in dependencies]
        while pending:
            dep, below = pending.pop()
            node = self._nodes[dep]
            if node.settled or node.status is RUNNING:
                continue
            candidate = estimate(node.task) + below
            if candidate <= node.rank:
                continue
            node.rank = candidate
            if node.status is READY:
                self._make_ready(node)  # a fresh heap entry; the old one goes stale
            pending.extend((parent, candidate) for parent in node.task.dependencies)

    def insert(self, task: Task, *, rank: float = 0.0) -> None:
        """Add ``task`` without starting work yet; :meth:`dispatch` starts it.

        Queueing a whole graph first lets the ready queue order it before any
        task takes a worker slot.
        """
        if self._closed:
            raise UsageError(f"cannot add task {task.id!r}: the run is closed")
        if not (self._prevalidated and self.graph._tasks.get(task.id) is task):
            self.graph.add(task)
            if self._events.active:
                self._publish_graph_update(DeltaKind.ADD_TASK, (task.id,))
        # Positional arguments, because keywords nearly double the cost of
        # this call on a hot path.
        node = new_node(task, rank, self._seq, is_async_callable(task.fn))
        self._seq += 1
        self._nodes[task.id] = node
        self._unsettled += 1
        if self._cancelled:
            # fail_fast cancelled the run: later tasks are recorded, not run.
            self._settle(node, TaskStatus.CANCELLED)
            return
        nodes = self._nodes
        for dep in task.dependencies:
            parent = nodes[dep]
            if not parent.settled:
                node.waiting += 1
            elif parent.status is not DONE and not node.settled:
                # Only the first failed dependency settles the task; a second
                # settle would count it twice and end the run too early.
                self._dependency_failed(node)
        if node.waiting == 0 and not node.settled:
            self._make_ready(node)

    def _insert_graph(self, ranks: Mapping[Hashable, float]) -> None:
        """Queue every task of the graph the run was opened with, in topological order.

        The same as :meth:`insert` for each task, for a new run whose graph is
        already valid: no task has settled, so each waits for all of its
        dependencies, and the entry tasks go onto the ready queue in one
        heapify.
        """
        assert self._prevalidated and not (self._nodes or self._closed or self._cancelled)
        task_by_id = self.graph._tasks
        nodes = self._nodes
        make_entry = self._entry
        ready = self._ready
        order = self.graph.topological_order()
        # Tasks of a graph share a few tools, so each function is checked once.
        async_by_fn: dict[Callable[..., Any], bool] = {}
        for seq, task_id in enumerate(order, start=self._seq):
            task = task_by_id[task_id]
            try:
                is_async = async_by_fn[task.fn]
            except KeyError:
                is_async = async_by_fn[task.fn] = is_async_callable(task.fn)
            except TypeError:  # an unhashable callable object
                is_async = is_async_callable(task.fn)
            node = new_node(task, ranks[task_id], seq, is_async)
            nodes[task_id] = node
            if task.dependencies:
                node.waiting = len(task.dependencies)
            else:
                node.status = READY
                node.entry = make_entry(node.priority, node.rank, seq, node)
                ready.append(node.entry)
        self._seq += len(order)
        self._unsettled += len(order)
        # Every entry contains a distinct sequence number, so the heap pops
        # the same order as one built push by push.
        heapq.heapify(ready)
        if self._events.active:
            for entry in sorted(ready, key=lambda entry: entry[-2]):
                self._publish_ready(entry[-1])

    def output(self, task_id: Hashable) -> Any:
        """Return a settled task's output, or an :class:`ErrorObservation` if it did not finish."""
        record = self.report.records[task_id]
        if record.status is DONE:
            return record.output
        error = record.error or RunError(f"task {task_id!r} was {record.status.value}")
        return ErrorObservation(task_id, error, cause=self._root_failure(task_id), name=record.name)

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
            if record.status is not DONE:
                root = record
                pending.extend(record.dependencies)
        if root is None:
            return None
        error = root.error or RunError(f"task {root.id!r} was {root.status.value}")
        return f"task {root.id} ({root.name}) {type(error).__name__}: {error}"

    # -- waiting and cancelling ----------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled, by the caller or by the fail_fast policy."""
        return self._cancelled

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
        workers = self._cancel_all()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)

    def _cancel_all(self, reason: str | None = None) -> list[asyncio.Task[None]]:
        # Tasks that have not started settle at once; running ones settle in
        # their workers once the cancellation reaches them.
        self._cancelled = True
        self._cancel_reason = reason
        current = asyncio.current_task()
        workers = [worker for worker in self._workers if worker is not current]
        for worker in workers:
            worker.cancel()
        for node in list(self._nodes.values()):
            if node.settled:
                continue
            if node.worker_task is None or not node.executing:
                # Not started, or its worker was cancelled before it ran, in
                # which case the worker never gets to settle it or free its slot.
                if node.id in self._running:
                    self._release(node, outcome=None)
                self._settle(node, TaskStatus.CANCELLED)
        return workers

    # -- the ready queue and workers -----------------------------------------------

    def _make_ready(self, node: TaskRecord) -> None:
        node.status = READY
        node.entry = self._entry(node.priority, node.rank, node.seq, node)
        heapq.heappush(self._ready, node.entry)
        if self._events.active:
            self._publish_ready(node)

    def _publish_ready(self, node: TaskRecord) -> None:
        self._publish("task.ready", lambda: {"task_id": node.task.id, "name": node.task.name})

    def dispatch(self) -> None:
        """Start a worker for each ready task while slots are free, and pre-empt if needed."""
        if self._cancelled:
            return
        while len(self._running) < (limit := self._executor.limit):
            node = self._start_next(limit)
            if node is None:
                return
            worker = asyncio.get_running_loop().create_task(self._work(node))
            node.worker_task = worker
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        if self._ready and self._preemptible_running:
            entry = self._ready[0]
            node = entry[-1]
            if node.entry is entry and node.status is READY:
                self._preempt_for(node)

    def _start_next(self, limit: int) -> TaskRecord | None:
        """Pop the best ready task that may start now and mark it running; ``None`` if none may.

        ``limit`` is the executor's current limit, which nothing here changes.
        """
        while self._ready and len(self._running) < limit:
            entry = heapq.heappop(self._ready)
            node: TaskRecord = entry[-1]
            if node.entry is not entry or node.status is not READY:
                continue  # a stale entry: the task was requeued or settled since
            if self._pool is not None and not self._pool.can_start(node.keys):
                self._hold(entry)
                continue
            # The entry leaves the heap for good. Dropping it breaks its
            # reference cycle with the node, which the garbage collector
            # would otherwise have to trace.
            node.entry = None
            if node.id in self._paused:
                self._resume(node)
                continue
            node.status = RUNNING
            node.start = self._clock() - self.report.started_at
            node.worker = "event-loop" if node.is_async else "thread"
            self._running[node.id] = node
            if node.task.preemptible:
                self._preemptible_running += 1
            if self._pool is not None:
                self._pool.acquire(node.keys)
            return node
        return None

    async def _work(self, node: TaskRecord | None) -> None:
        """Run ``node``, then each next ready task, until none may start.

        A worker keeps taking the next ready task itself, so a graph runs on a
        handful of asyncio tasks rather than one per graph task. One
        checkpoint token per worker is pointed at each task in turn; the
        worker's own context keeps it, so setting it once is enough.

        A plain task (see :class:`RunState`) in a run without a pool, an executor
        retry policy or timeout, or event subscribers is awaited here and
        settled by ``_end_plain``. That is ``_execute`` without the calls that
        would each find nothing to do; every other task goes through
        ``_execute``.
        """
        token = CheckpointToken(self._pause)
        set_current(token)
        worker = asyncio.current_task()
        executor = self._executor
        while node is not None:
            node.worker_task = worker
            token.node = node
            token.used = token.requested = False
            node.token = token
            if (
                node.plain
                and self._pool is None
                and executor.retry is None
                and executor.default_timeout is None
                and not executor.remote_all
                and not self._subscriptions
            ):
                task = node.task
                node.executing = True
                node.attempts += 1
                try:
                    if task.kwargs:
                        output = await task.fn(*task.args, **task.kwargs)
                    else:
                        output = await task.fn(*task.args)  # no keyword dict to build
                except (asyncio.CancelledError, Exception) as error:
                    if not self._stopped(node, error):
                        raise
                else:
                    self._end_plain(node, output)
            else:
                await self._execute(node)
            if self._cancelled:
                return
            limit = self._executor.limit
            node = self._start_next(limit)
            if (
                node is not None
                and self._ready
                and (len(self._running) < limit or self._preemptible_running)
            ):
                self.dispatch()  # more ready tasks than this worker can take

    # -- running one task -------------------------------------------------------------

    async def _execute(self, node: TaskRecord) -> None:
        node.executing = True
        try:
            output = await self._attempts(node)
        except (asyncio.CancelledError, Exception) as error:
            if not self._stopped(node, error):
                raise
        else:
            node.output = output
            self._end(node, DONE)

    def _stopped(self, node: TaskRecord, error: BaseException) -> bool:
        """Settle or requeue a task whose call raised ``error``; return ``False`` to re-raise it.

        A cancellation that is not a pre-emption cancels the worker too, so
        the worker re-raises it once the task is settled.
        """
        task = node.task
        if isinstance(error, asyncio.CancelledError):
            if not node.preempting:
                self._end(node, TaskStatus.CANCELLED)
                return False
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            self._requeue(node)
        elif isinstance(error, Preempted):
            self._requeue(node)
        else:
            node.error = error
            logger.debug("task %r (%s) failed: %r", task.id, task.name, error)
            self._end(node, TaskStatus.FAILED)
            if self._executor.failure_policy is FailurePolicy.FAIL_FAST and not self._cancelled:
                self._cancel_all(f"task {task.id!r} ({task.name}) failed: {error!r}")
        return True

    # -- settling ----------------------------------------------------------------------

    def _end(self, node: TaskRecord, status: TaskStatus) -> None:
        node.end = end = self._clock() - self.report.started_at
        self._release(node, outcome=status)
        # Learn durations only for tasks that state no cost of their own, and
        # never from a clock that went backwards (an injected test clock).
        if status is DONE and node.task.cost is None and node.start is not None:
            duration = end - node.start
            if duration >= 0:
                self._executor.costs.observe(node.task.name, duration)
        self._settle(node, status)

    def _end_plain(self, node: TaskRecord, output: Any) -> None:
        """Settle a plain task that returned ``output``, as ``_end`` does in a run without a pool.

        A plain task is not preemptible, so it is still in the running set and
        no count of preemptible tasks changes. Events are checked again here,
        since a subscriber may have arrived while the task ran.
        """
        task = node.task
        node.output = output
        node.end = end = self._clock() - self.report.started_at
        node.worker_task = None
        node.token = None
        node.executing = False
        self._running.pop(node.id, None)
        if task.cost is None:
            duration = end - node.start  # type: ignore[operator]  # set by _start_next
            if duration >= 0:
                self._executor.costs.observe(task.name, duration)
        if self._subscriptions:
            self._settle(node, DONE)
            return
        node.status = DONE
        node.settled = True
        del node.task  # _drop_run_references, for a plain task: the rest are None
        self._unsettled -= 1
        nodes, ready, make_entry, heappush = self._nodes, self._ready, self._entry, heapq.heappush
        for child_id in self.graph._dependents.get(task.id, ()):
            child = nodes[child_id]
            if child.settled:
                continue
            child.waiting -= 1
            if child.waiting == 0 and child.status is PENDING:
                # _make_ready, for a run whose events were checked above.
                child.status = READY
                child.entry = make_entry(child.priority, child.rank, child.seq, child)
                heappush(ready, child.entry)
        if self._unsettled == 0:
            self._wake_idle_waiters()

    def _release(self, node: TaskRecord, *, outcome: TaskStatus | None) -> None:
        node.worker_task = None
        node.token = None
        node.executing = False
        self._discard_running(node)
        if self._pool is not None:
            self._release_slot(self._pool, node, outcome)

    def _release_slot(self, pool: WorkerPool, node: TaskRecord, outcome: TaskStatus | None) -> None:
        if self._paused.pop(node.id, None) is not None:
            # Cancelled while paused at a checkpoint: it freed its slot then.
            return
        duration = (node.end or 0.0) - (node.start or 0.0)
        error = node.error if outcome is not None else None
        pool.release(
            node.keys,
            duration=max(duration, 0.0),
            outcome=_pool_outcome(outcome, error),
            error=error,
        )
        self._unhold()
        if self._holding:
            for run in list(self._holding):  # a woken run may hold tasks again
                run._unhold()
                run.dispatch()

    def _hold(self, entry: Entry) -> None:
        # Queued again when the pool releases a slot, in this run or another.
        held, holding = self._held, self._holding
        assert held is not None and holding is not None  # a run with a pool has both
        if not held:
            holding.add(self)
        held.hold(entry)

    def _unhold(self) -> None:
        held = self._held
        if not held:
            return
        held.requeue(self._ready)
        if not held and self._holding is not None:
            self._holding.discard(self)

    def _settle(self, node: TaskRecord, status: TaskStatus) -> None:
        node.status = status
        node.settled = True
        _drop_run_references(node)
        if status is TaskStatus.CANCELLED and node.error is None and self._cancel_reason:
            node.error = RunError(f"cancelled because {self._cancel_reason}")
        self._unsettled -= 1
        if self._events.active:
            self._publish(_TOPIC_BY_STATUS[status], lambda: event_data(node))
        nodes = self._nodes
        failed = status is not DONE
        # The graph's own list of dependents, read without a copy: this runs
        # once per task.
        for child_id in self.graph._dependents.get(node.id, ()):
            child = nodes[child_id]
            if child.settled:
                continue
            child.waiting -= 1
            if failed:
                self._dependency_failed(child)
            if child.waiting == 0 and child.status is PENDING:
                self._make_ready(child)
        if self._unsettled == 0:
            self._wake_idle_waiters()

    def _dependency_failed(self, node: TaskRecord) -> None:
        if self._cancelled:
            self._settle(node, TaskStatus.CANCELLED)
        elif self._executor.failure_policy is FailurePolicy.SKIP_DEPENDENTS:
            node.error = RunError(
                f"skipped because {self._root_failure(node.task.id) or 'a dependency failed'}"
            )
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
        if self._events.active and self._events.wants(topic):
            self._events.publish(Event(topic, data(), self._clock() - self.report.started_at))

    def _discard_running(self, node: TaskRecord) -> None:
        if self._running.pop(node.id, None) is not None and node.task.preemptible:
            self._preemptible_running -= 1


def _drop_run_references(node: TaskRecord) -> None:
    """Let a settled task's record go without its task, queue entry or resume future.

    A run's records are its report, which callers keep after the run. The
    settled task's function and asyncio objects need not live as long, and a
    queue entry left in the heap would keep a reference cycle through it.
    """
    node.entry = None
    node.resume = None
    del node.task


def _pool_outcome(status: TaskStatus | None, error: BaseException | None) -> Outcome:
    # Cancelled and pre-empted runs say nothing about the tool's health, and
    # "error" is the outcome that leaves the adaptive limit alone.
    if status is DONE:
        return "ok"
    if status is TaskStatus.FAILED and error is not None:
        return classify(error)
    return "error"
