"""Pre-emption: how soon urgent work starts when every worker is busy.

Long, low-priority tasks fill every worker slot, each an ``asyncio.sleep`` of
the same fixed duration. Once all of them run, an urgent task of higher
priority is added to the run. When the long tasks are preemptible, the
executor cancels one of them and the urgent task takes its slot. The victim
is requeued and later runs again from the start. When they are not
preemptible, the urgent task waits for the first long task to finish, so its
start latency is about the long tasks' duration.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Hashable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..runtime import DagExecutor, Event, EventBus, RunReport, Task, TaskStatus

__all__ = ["PreemptionResult", "PreemptionTrial", "measure_preemption", "run_preemption_trial"]

GOAL_LATENCY_S = 0.005
URGENT_ID = "urgent"
URGENT_PRIORITY = 10
URGENT_S = 0.01
"""How long the urgent task runs: short, like a tool call a user waits for."""
START_GUARD_S = 10.0
"""Seconds to wait for the long tasks to start before giving up."""


@dataclass(frozen=True, slots=True)
class PreemptionTrial:
    """One run: the urgent task's start latency and what became of the long tasks."""

    latency_s: float
    preemptions: int
    victims: tuple[Hashable, ...]
    victims_reran: bool
    victims_completed: bool
    urgent_started_before_long_finished: bool


@dataclass(eq=False, slots=True)
class _Watch:
    """What a trial's events showed: starts per task, finished long tasks, victims."""

    long_tasks: int
    starts: dict[Hashable, int] = field(default_factory=dict)
    long_finished: int = 0
    victims: list[Hashable] = field(default_factory=list)
    added_at: float = 0.0
    urgent_started_at: float | None = None
    long_finished_first: bool = False
    all_long_started: asyncio.Event = field(default_factory=asyncio.Event)

    def started(self, event: Event) -> None:
        # Read the clock first: this subscriber is called inside the publish,
        # so the urgent task's coroutine starts right after it returns.
        now = time.perf_counter()
        task_id = event.data["task_id"]
        self.starts[task_id] = self.starts.get(task_id, 0) + 1
        if task_id == URGENT_ID and self.urgent_started_at is None:
            self.urgent_started_at = now
            self.long_finished_first = self.long_finished > 0
        elif len(self.starts) == self.long_tasks:
            self.all_long_started.set()

    def completed(self, event: Event) -> None:
        if event.data["task_id"] != URGENT_ID:
            self.long_finished += 1

    def preempted(self, event: Event) -> None:
        self.victims.append(event.data["task_id"])


async def run_preemption_trial(
    workers: int, long_s: float, *, preemptible: bool
) -> PreemptionTrial:
    """Fill ``workers`` slots with long tasks, add an urgent task, and time its start.

    The latency runs from just before the ``run.add`` call for the urgent task
    to the ``task.started`` event the executor publishes for it.

    Raises:
        RuntimeError: The long tasks did not all start, a task did not finish,
            or the urgent task never started.
    """
    watch = _Watch(long_tasks=workers)
    bus = EventBus()
    bus.subscribe("task.started", watch.started)
    bus.subscribe("task.completed", watch.completed)
    bus.subscribe("task.preempted", watch.preempted)
    executor = DagExecutor(max_workers=workers, events=bus)
    gc.collect()

    async with executor.open() as run:
        for index in range(workers):
            run.add(_long_task(index, long_s, preemptible=preemptible))
        try:
            async with asyncio.timeout(START_GUARD_S):
                await watch.all_long_started.wait()
        except TimeoutError:
            raise RuntimeError(
                f"only {len(watch.starts)} of {workers} long tasks started "
                f"within {START_GUARD_S:g} s"
            ) from None
        watch.added_at = time.perf_counter()
        run.add(_urgent_task())
        report = await run.wait()

    if not report.ok or watch.urgent_started_at is None:
        raise RuntimeError(f"the pre-emption run did not finish every task: {_statuses(report)}")
    return PreemptionTrial(
        latency_s=watch.urgent_started_at - watch.added_at,
        preemptions=len(watch.victims),
        victims=tuple(watch.victims),
        victims_reran=bool(watch.victims) and all(watch.starts[v] > 1 for v in watch.victims),
        victims_completed=bool(watch.victims)
        and all(report[v].status is TaskStatus.DONE for v in watch.victims),
        urgent_started_before_long_finished=not watch.long_finished_first,
    )


def _long_task(index: int, seconds: float, *, preemptible: bool) -> Task:
    return Task(
        id=f"long-{index}", fn=asyncio.sleep, args=(seconds,), name="long", preemptible=preemptible
    )


def _urgent_task() -> Task:
    return Task(
        id=URGENT_ID, fn=asyncio.sleep, args=(URGENT_S,), name="urgent", priority=URGENT_PRIORITY
    )


def _statuses(report: RunReport) -> str:
    return ", ".join(f"{record.id}: {record.status.value}" for record in report)


@dataclass(frozen=True, slots=True)
class PreemptionResult:
    """Start latencies of the urgent task, median of ``repeat`` runs, in seconds."""

    workers: int
    repeat: int
    long_task_s: float
    urgent_task_s: float
    high_priority_start_latency_s: float
    without_preemption_latency_s: float
    preemptions: int
    victims_reran: bool
    victims_completed: bool
    urgent_started_before_long_finished: bool
    latencies_s: tuple[float, ...]
    without_preemption_latencies_s: tuple[float, ...]

    @property
    def speedup(self) -> float:
        """How many times sooner the urgent task starts with pre-emption."""
        return self.without_preemption_latency_s / self.high_priority_start_latency_s

    @property
    def goals(self) -> dict[str, bool]:
        return {
            "high_priority_start_latency_le_5_ms": self.high_priority_start_latency_s
            <= GOAL_LATENCY_S
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the measurements, the ratio derived from them and the goals."""
        return {**asdict(self), "speedup": self.speedup, "goals": self.goals}


async def measure_preemption(
    *, workers: int = 4, repeat: int = 5, long_s: float = 0.2
) -> PreemptionResult:
    """Run the trial ``repeat`` times with preemptible long tasks and without, interleaved.

    ``preemptions`` is the largest number of pre-emptions in one run. The
    flags about victims and the urgent task are true only if they were true in
    every run with pre-emption.
    """
    if workers < 1 or repeat < 1 or long_s <= 0:
        raise ValueError(
            f"workers and repeat must be at least 1 and long_s positive, "
            f"got {workers}, {repeat} and {long_s}"
        )
    with_preemption: list[PreemptionTrial] = []
    without: list[PreemptionTrial] = []
    for round_index in range(repeat):
        # Alternate which variant goes first, so neither always follows the other.
        for preemptible in (True, False) if round_index % 2 == 0 else (False, True):
            trial = await run_preemption_trial(workers, long_s, preemptible=preemptible)
            (with_preemption if preemptible else without).append(trial)

    return PreemptionResult(
        workers=workers,
        repeat=repeat,
        long_task_s=long_s,
        urgent_task_s=URGENT_S,
        high_priority_start_latency_s=statistics.median(t.latency_s for t in with_preemption),
        without_preemption_latency_s=statistics.median(t.latency_s for t in without),
        preemptions=max(trial.preemptions for trial in with_preemption),
        victims_reran=all(trial.victims_reran for trial in with_preemption),
        victims_completed=all(trial.victims_completed for trial in with_preemption),
        urgent_started_before_long_finished=all(
            trial.urgent_started_before_long_finished for trial in with_preemption
        ),
        latencies_s=tuple(trial.latency_s for trial in with_preemption),
        without_preemption_latencies_s=tuple(trial.latency_s for trial in without),
    )
