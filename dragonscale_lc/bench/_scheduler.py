"""TimedScheduler benchmarks: CPU use while idle, and drift of a fixed-rate job.

Idle: many jobs wait, due far in the future, while the process's CPU time is
measured over a stretch of wall-clock time. A scheduler that polls pays for
every poll; one that sleeps until the next due time pays nothing.

Drift: a fixed-rate job with seeded, varying short run times. Its starts are
compared with the nominal times ``t0 + k * period``, and beside it a naive
``while True: await job(); await asyncio.sleep(period)`` loop, whose starts
fall behind by the sum of the run times.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..runtime import TimedScheduler, current_firing

__all__ = [
    "SchedulerDriftResult",
    "SchedulerIdleResult",
    "measure_scheduler_drift",
    "measure_scheduler_idle",
    "run_naive_loop",
]

GOAL_CPU_FRACTION = 0.01
GOAL_DRIFT_S = 0.005
IDLE_FIRST_DUE_S = 3600.0
"""Seconds until the first idle job is due: far beyond any measurement."""
RUN_TIME_FRACTION = 0.4
"""Run times are drawn uniformly from 0 to this fraction of the period."""


@dataclass(frozen=True, slots=True)
class SchedulerIdleResult:
    """CPU time the process used while ``jobs`` jobs waited for ``seconds`` seconds."""

    jobs: int
    seconds: float
    schedule_s: float
    cpu_s: float
    cpu_fraction: float
    runs: int

    @property
    def goals(self) -> dict[str, bool]:
        return {"cpu_fraction_le_0_01": self.cpu_fraction <= GOAL_CPU_FRACTION}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "goals": self.goals}


@dataclass(frozen=True, slots=True)
class SchedulerDriftResult:
    """Starts of a fixed-rate job against its nominal times, and a naive loop's drift."""

    period_s: float
    runs: int
    seed: int
    max_lateness_s: float
    mean_lateness_s: float
    drift_s: float
    naive_drift_s: float
    naive_max_lateness_s: float

    @property
    def goals(self) -> dict[str, bool]:
        return {"drift_le_0_005": abs(self.drift_s) <= GOAL_DRIFT_S}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "goals": self.goals}


async def measure_scheduler_idle(jobs: int, seconds: float) -> SchedulerIdleResult:
    """Schedule ``jobs`` jobs due from an hour on, then measure CPU use for ``seconds``.

    Half of the jobs are one-time and half fixed-rate with periods of hours,
    spread so that no two are due at once.

    Raises:
        ValueError: ``jobs`` is less than 1 or ``seconds`` is not positive.
    """
    if jobs < 1 or seconds <= 0:
        raise ValueError(f"need at least 1 job and positive seconds, got {jobs} and {seconds}")
    ran = 0

    async def job() -> None:
        nonlocal ran
        ran += 1

    async with TimedScheduler() as scheduler:
        gc.collect()
        started = time.perf_counter()
        for index in range(jobs):
            if index % 2:
                scheduler.every(IDLE_FIRST_DUE_S + index, job)
            else:
                scheduler.after(IDLE_FIRST_DUE_S + index, job)
        schedule_s = time.perf_counter() - started
        await asyncio.sleep(0)  # let the loop settle into its sleep

        wall_start, cpu_start = time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        wall = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start
        await scheduler.stop(wait=False)

    return SchedulerIdleResult(
        jobs=jobs,
        seconds=wall,
        schedule_s=schedule_s,
        cpu_s=cpu,
        cpu_fraction=cpu / wall,
        runs=ran,
    )


def run_times(runs: int, period: float, seed: int) -> list[float]:
    """Return seeded run times, uniform in ``[0, RUN_TIME_FRACTION * period)``."""
    rng = random.Random(seed)
    return [rng.random() * RUN_TIME_FRACTION * period for _ in range(runs)]


async def measure_scheduler_drift(
    period: float, runs: int, *, seed: int = 0
) -> SchedulerDriftResult:
    """Run a fixed-rate job ``runs`` times, then the naive loop; compare their starts.

    ``drift_s`` is the last start minus ``t0 + (runs - 1) * period``, where
    ``t0`` is the first nominal start, so it shows whether lateness builds
    up. Both runners use the same seeded run times.

    Raises:
        ValueError: ``runs`` is less than 2 or ``period`` is not positive.
    """
    if runs < 2 or period <= 0:
        raise ValueError(f"need at least 2 runs and a positive period, got {runs} and {period}")
    durations = run_times(runs, period, seed)
    starts: list[float] = []
    nominals: list[float] = []
    finished = asyncio.get_running_loop().create_future()

    async def job() -> None:
        firing = current_firing()
        assert firing is not None
        starts.append(firing.start)
        nominals.append(firing.nominal)
        await asyncio.sleep(durations[len(starts) - 1])
        if len(starts) == runs and not finished.done():
            finished.set_result(None)

    gc.collect()
    async with TimedScheduler() as scheduler:
        handle = scheduler.every(period, job)
        await finished
        handle.cancel()

    lateness = [start - nominal for start, nominal in zip(starts, nominals, strict=True)]
    naive_starts = await run_naive_loop(period, durations)
    naive_lateness = [
        start - (naive_starts[0] + k * period) for k, start in enumerate(naive_starts)
    ]
    return SchedulerDriftResult(
        period_s=period,
        runs=runs,
        seed=seed,
        max_lateness_s=max(lateness),
        mean_lateness_s=sum(lateness) / runs,
        drift_s=starts[-1] - (nominals[0] + (runs - 1) * period),
        naive_drift_s=naive_lateness[-1],
        naive_max_lateness_s=max(naive_lateness),
    )


async def run_naive_loop(period: float, durations: list[float]) -> list[float]:
    """Run ``await job(); await asyncio.sleep(period)`` once per duration; return the starts."""
    loop = asyncio.get_running_loop()
    starts = []
    for duration in durations:
        starts.append(loop.time())
        await asyncio.sleep(duration)  # the job
        await asyncio.sleep(period)
    return starts
