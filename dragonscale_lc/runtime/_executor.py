"""DagExecutor: dependency-driven, priority-ordered execution of task graphs.

A task is dispatched the moment its last dependency settles and a worker slot
is free. :class:`~dragonscale_lc.runtime.Run` implements the mechanics; this
module defines the executor's settings and the one-call :meth:`DagExecutor.run`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from .._errors import UsageError
from ._analysis import upward_ranks
from ._analysis_cache import AnalysisCache
from ._backend import ExecutionBackend, LocalBackend
from ._costs import CostModel
from ._events import EventBus
from ._graph import TaskGraph
from ._pool import WorkerPool
from ._report import RunReport
from ._retry import RetryPolicy
from ._run import Run
from ._strategy import DispatchKey, Strategy, dispatch_key
from ._task import FailurePolicy, Task

__all__ = ["DagExecutor", "FailurePolicy"]


class DagExecutor:
    """Run tasks concurrently in dependency order with at most ``max_workers`` at once.

    Args:
        max_workers: Maximum number of tasks running at the same time, unless
            ``pool`` sets an adaptive limit.
        pool: Adaptive worker pool with per-key caps; its limit replaces
            ``max_workers``.
        failure_policy: What happens downstream of a failed task.
        default_timeout: Timeout in seconds for tasks that set none.
        retry: Retry policy for tasks that set none; ``None`` runs each once.
        strategy: Order of the ready queue: ``"critical_path"`` (user
            priority, then upward rank), ``"priority"``, ``"fifo"``, or a key
            function of (effective priority, rank), smaller first.
        aging: Priority added to a task each time it is pre-empted.
        max_preemptions: Pre-emptions after which a task is no longer
            pre-empted.
        costs: Running averages of task durations by name, used as cost
            estimates for ranks; shared across runs of this executor.
        events: Bus on which task and run events are published.
        analysis_cache: Ranks of graphs already analysed, used when
            :meth:`run` is given a :class:`TaskGraph` (so a graph run again
            is not ranked again); shared across runs of this executor.
        backend: Where the calls of tasks marked ``remote=True`` run, such as
            ``dragonscale_lc.backends.DaskBackend``. Default: a
            :class:`LocalBackend`, which runs them like every other task.
        remote_all: Send every task that is not preemptible to ``backend``,
            as if each were marked ``remote=True``.
        clock: Monotonic clock in seconds, injectable for tests.
        sleep: Coroutine used for waits between retries, injectable for tests.

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
        pool: WorkerPool | None = None,
        failure_policy: FailurePolicy | str = FailurePolicy.CONTINUE,
        default_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        strategy: Strategy | str | DispatchKey = Strategy.CRITICAL_PATH,
        aging: int = 1,
        max_preemptions: int = 3,
        costs: CostModel | None = None,
        events: EventBus | None = None,
        analysis_cache: AnalysisCache | None = None,
        backend: ExecutionBackend | None = None,
        remote_all: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_workers < 1:
            raise UsageError(f"max_workers must be at least 1, got {max_workers}")
        if default_timeout is not None and default_timeout <= 0:
            raise UsageError(f"default_timeout must be positive seconds, got {default_timeout}")
        if aging < 0 or max_preemptions < 0:
            raise UsageError(
                f"aging and max_preemptions must not be negative, got {aging} and {max_preemptions}"
            )
        self.max_workers = pool.max_workers if pool is not None else max_workers
        self.pool = pool
        self.failure_policy = _failure_policy(failure_policy)
        self.default_timeout = default_timeout
        self.retry = retry
        self.strategy = strategy
        self.dispatch_key = dispatch_key(strategy)
        self.aging = aging
        self.max_preemptions = max_preemptions
        self.costs = costs if costs is not None else CostModel()
        self.events = events if events is not None else EventBus()
        self.analysis_cache = analysis_cache if analysis_cache is not None else AnalysisCache()
        self.backend: ExecutionBackend = backend if backend is not None else LocalBackend()
        self.remote_all = remote_all
        self.clock = clock
        self.sleep = sleep

    def is_remote(self, task: Task) -> bool:
        """Return whether ``task``'s call goes to the backend."""
        return task.remote or (self.remote_all and not task.preemptible)

    @property
    def limit(self) -> int:
        """How many tasks may run at once right now."""
        return self.pool.limit if self.pool is not None else self.max_workers

    def open(self) -> Run:
        """Return a new run, to use as ``async with executor.open() as run:``."""
        return Run(self)

    async def run(self, tasks: TaskGraph | Iterable[Task]) -> RunReport:
        """Run a complete graph and return its report.

        Ready tasks start in the strategy's order; by default user priority,
        then upward rank (critical path first), then insertion order. Cost
        estimates for ranks come from each task, else from this executor's
        running averages, else a default.
        """
        if isinstance(tasks, TaskGraph):
            graph = tasks
            ranks = self.analysis_cache.upward_ranks(graph, self.costs)
        else:
            # A graph built here is new, so a cache lookup would only add the
            # cost of hashing it.
            graph = TaskGraph(tasks)
            ranks = upward_ranks(graph, self.costs.estimate)
        async with Run(self, graph) as run:
            # Queue the whole graph before dispatching, so the first tasks
            # added cannot take the workers ahead of higher-priority ones.
            run._insert_graph(ranks)
            run.dispatch()
            return await run.wait()


def _failure_policy(value: FailurePolicy | str) -> FailurePolicy:
    try:
        return FailurePolicy(value)
    except ValueError:
        choices = ", ".join(policy.value for policy in FailurePolicy)
        raise UsageError(f"failure_policy must be one of {choices}, got {value!r}") from None
