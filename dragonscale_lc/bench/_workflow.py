"""Real workflow shapes and run times, replayed as scaled sleeps on the executor.

The makespan is compared with three references. The lower bound is
``max(critical path, total work / workers)``. The simulated makespan comes
from a zero-overhead discrete-event simulation of list scheduling with the
executor's own ready-queue order. The FIFO makespan is the same run with the
executor's ``fifo`` strategy, which starts ready tasks in insertion order.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from ..runtime import DagExecutor, ExecutionBackend, RunReport, Task, TaskGraph
from ._common import critical_path, timed
from ._wfformat import Workflow

__all__ = [
    "WorkflowResult",
    "mean_overhead_ms",
    "measure_workflow",
    "scale_for_critical_path",
    "simulate_list_schedule",
    "upward_ranks_of",
]

GOAL_RATIO_TO_SIMULATED = 1.05
FIFO_METHOD = 'DagExecutor(strategy="fifo")'

_NodeT = TypeVar("_NodeT", bound=Hashable)


def upward_ranks_of(
    durations: Mapping[_NodeT, float], parents: Mapping[_NodeT, Sequence[_NodeT]]
) -> dict[_NodeT, float]:
    """Return each node's duration plus the longest path of durations below it."""
    children: dict[_NodeT, list[_NodeT]] = {node: [] for node in parents}
    for node, node_parents in parents.items():
        for parent in node_parents:
            children[parent].append(node)

    ranks: dict[_NodeT, float] = {}
    pending = [node for node in parents if not children[node]]
    waiting = {node: len(children[node]) for node in parents}
    while pending:
        node = pending.pop()
        below = max((ranks[child] for child in children[node]), default=0.0)
        ranks[node] = durations[node] + below
        for parent in parents[node]:
            waiting[parent] -= 1
            if waiting[parent] == 0:
                pending.append(parent)
    return ranks


def simulate_list_schedule(
    durations: Mapping[_NodeT, float],
    parents: Mapping[_NodeT, Sequence[_NodeT]],
    machines: int | None,
    *,
    ranks: Mapping[_NodeT, float] | None = None,
    priorities: Mapping[_NodeT, int] | None = None,
    order: Sequence[_NodeT] | None = None,
) -> float:
    """Return the makespan of list scheduling on ``machines`` identical machines.

    Whenever a machine is free, it takes the ready task first by priority
    (higher first), then rank (higher first), then position in ``order``:
    the executor's ready-queue order. Tasks start and finish with no overhead.
    All tasks finishing at one instant release their children before any
    machine picks its next task.

    Args:
        durations: Seconds each task runs.
        parents: The tasks each task waits for.
        machines: Number of machines, or ``None`` for as many as needed; the
            makespan is then the critical path.
        ranks: Tie-break after priority; defaults to upward ranks over
            ``durations``, as the executor computes them from ``Task.cost``.
        priorities: User priorities; default 0.
        order: Insertion order, the last tie-break; defaults to the order of
            ``parents``.
    """
    if machines is not None and machines < 1:
        raise ValueError(f"machines must be at least 1 or None, got {machines}")
    ranks = upward_ranks_of(durations, parents) if ranks is None else ranks
    sequence = {node: position for position, node in enumerate(order or parents)}
    children: dict[_NodeT, list[_NodeT]] = {node: [] for node in parents}
    for node, node_parents in parents.items():
        for parent in node_parents:
            children[parent].append(node)
    waiting = {node: len(node_parents) for node, node_parents in parents.items()}

    def ready_key(node: _NodeT) -> tuple[float, float, int]:
        priority = priorities.get(node, 0) if priorities else 0
        return (-priority, -ranks[node], sequence[node])

    ready = [(ready_key(node), node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int, _NodeT]] = []  # (finish time, sequence, task)
    free = len(parents) if machines is None else machines
    now = 0.0
    while ready or running:
        while ready and free:
            _, node = heapq.heappop(ready)
            heapq.heappush(running, (now + durations[node], sequence[node], node))
            free -= 1

        now = running[0][0]
        while running and running[0][0] == now:
            _, _, node = heapq.heappop(running)
            free += 1
            for child in children[node]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, (ready_key(child), child))
    return now


def scale_for_critical_path(workflow: Workflow, seconds: float) -> float:
    """Return the time scale that makes the workflow's critical path last ``seconds``."""
    path = critical_path(workflow.runtimes, workflow.parents, workflow.order)
    if path <= 0:
        raise ValueError(f"workflow {workflow.name!r} has a critical path of 0 s: cannot scale it")
    return seconds / path


@dataclass(frozen=True, slots=True)
class WorkflowResult:
    """One workflow run on the executor, with the references it is compared to, in seconds.

    ``backend`` names where the tasks ran. The two overheads are per task, in
    milliseconds (see :func:`mean_overhead_ms`): on that backend, and on the
    local backend for the same workflow. ``round_trip_ms`` is the time of one
    no-op remote call, when the benchmark measured it.
    """

    name: str
    tasks: int
    workers: int
    time_scale: float
    critical_path_s: float
    total_work_s: float
    lower_bound_s: float
    simulated_list_schedule_s: float
    simulated_fifo_s: float
    makespan_s: float
    fifo_makespan_s: float
    recorded_makespan_s: float | None
    backend: str = "local"
    overhead_per_task_ms: float | None = None
    local_overhead_per_task_ms: float | None = None
    round_trip_ms: float | None = None

    @property
    def ratio_to_simulated(self) -> float:
        return self.makespan_s / self.simulated_list_schedule_s

    @property
    def ratio_to_lower_bound(self) -> float:
        return self.makespan_s / self.lower_bound_s

    @property
    def goals(self) -> dict[str, bool]:
        return {"ratio_to_simulated_le_1_05": self.ratio_to_simulated <= GOAL_RATIO_TO_SIMULATED}

    def to_dict(self) -> dict[str, Any]:
        """Return the measurements, the ratios derived from them and the goals."""
        return {
            **asdict(self),
            "ratio_to_simulated": self.ratio_to_simulated,
            "ratio_to_lower_bound": self.ratio_to_lower_bound,
            "fifo_method": FIFO_METHOD,
            "goals": self.goals,
        }


async def measure_workflow(
    workflow: Workflow,
    *,
    workers: int,
    time_scale: float,
    backend: ExecutionBackend | None = None,
) -> WorkflowResult:
    """Run the workflow on ``workers`` workers with upward ranks, then with FIFO order.

    Every task sleeps for its recorded run time times ``time_scale``, with
    that duration as its cost, so the executor's ranks are exact. Without
    ``backend`` the sleep is an ``asyncio.sleep`` on the event loop. With
    one, every task is remote and calls ``time.sleep``, which blocks the
    backend's worker thread as real work would; a third run on the local
    backend then gives the local per-task overhead to compare with.
    """
    if workers < 1 or time_scale <= 0:
        raise ValueError(
            f"workers must be at least 1 and time_scale positive, got {workers} and {time_scale}"
        )
    durations = {tid: runtime * time_scale for tid, runtime in workflow.runtimes.items()}
    local_tasks = _sleep_tasks(workflow, durations, remote=False)
    tasks = local_tasks if backend is None else _sleep_tasks(workflow, durations, remote=True)
    # DagExecutor.run queues tasks in this order, so the simulation breaks
    # ties between equal keys the same way.
    order = [str(task_id) for task_id in TaskGraph(tasks).topological_order()]

    executor = DagExecutor(max_workers=workers, backend=backend)
    fifo_executor = DagExecutor(max_workers=workers, strategy="fifo", backend=backend)
    makespan, report = await timed(lambda: executor.run(tasks))
    fifo_makespan, fifo_report = await timed(lambda: fifo_executor.run(tasks))
    if not (report.ok and fifo_report.ok):
        raise RuntimeError(f"the executor did not finish every task of workflow {workflow.name!r}")
    overhead = mean_overhead_ms(report, durations)
    local_overhead = overhead
    if backend is not None:
        local_report = await DagExecutor(max_workers=workers).run(local_tasks)
        local_overhead = mean_overhead_ms(local_report, durations)

    path = critical_path(durations, workflow.parents, workflow.order)
    total = sum(durations.values())
    recorded = workflow.recorded_makespan
    return WorkflowResult(
        name=workflow.name,
        tasks=len(tasks),
        workers=workers,
        time_scale=time_scale,
        critical_path_s=path,
        total_work_s=total,
        lower_bound_s=max(path, total / workers),
        simulated_list_schedule_s=simulate_list_schedule(
            durations, workflow.parents, workers, order=order
        ),
        simulated_fifo_s=simulate_list_schedule(
            durations, workflow.parents, workers, ranks=dict.fromkeys(order, 0.0), order=order
        ),
        makespan_s=makespan,
        fifo_makespan_s=fifo_makespan,
        recorded_makespan_s=None if recorded is None else recorded * time_scale,
        backend="local" if backend is None else backend.name,
        overhead_per_task_ms=overhead,
        local_overhead_per_task_ms=local_overhead,
    )


def _sleep_tasks(workflow: Workflow, durations: Mapping[str, float], *, remote: bool) -> list[Task]:
    return [
        Task(
            id=tid,
            fn=time.sleep if remote else asyncio.sleep,
            args=(durations[tid],),
            name=tid,
            cost=durations[tid],
            dependencies=frozenset(workflow.parents[tid]),
            remote=remote,
        )
        for tid in workflow.parents
    ]


def mean_overhead_ms(report: RunReport, durations: Mapping[Any, float]) -> float:
    """Return the mean, over tasks, of the time from start to settle beyond the task's sleep.

    A task's start and end are taken by the run, so for a remote task this
    covers submission, queueing on the cluster, the worker's call and the
    result's way back.
    """
    excess = [
        record.end - record.start - durations[task_id]
        for task_id, record in report.records.items()
        if record.start is not None and record.end is not None
    ]
    if not excess:
        raise ValueError("the report has no task with a start and an end time")
    return 1000 * sum(excess) / len(excess)
