"""TimedScheduler: run jobs at set times, at a fixed rate or with a fixed delay.

Pending jobs wait in a binary heap keyed by (due time, -priority, sequence),
so of the jobs due at the same time the higher priority starts first, then
the one scheduled first. One loop task sleeps until the head of the heap is
due, or until a wake-up signal arrives: a job scheduled ahead of the head, a
cancelled head, a run that ended, or :meth:`TimedScheduler.stop`. It never
polls, so an idle scheduler costs one pending timer however many jobs wait.

Each run is its own asyncio task, so a slow job delays no other job. The runs
of one job never overlap, because a job goes back into the heap only when its
run has ended.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from .._errors import UsageError
from ._events import EventBus
from ._job import (
    ErrorPolicy,
    JobKind,
    MisfirePolicy,
    ScheduledJob,
    check_finite,
    check_jitter,
    check_seconds,
    check_start_in,
    target_name,
    to_policy,
)
from ._job_targets import job_call
from ._scheduler_queue import Entry, SchedulerQueue

__all__ = ["TimedScheduler"]

logger = logging.getLogger(__name__)


def _loop_time() -> float:
    # asyncio.sleep measures delays on the running loop's clock. Outside a
    # loop, time.monotonic() is the clock the default loops use.
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class TimedScheduler(SchedulerQueue):
    """Start jobs at set times: once, at a fixed rate, or with a fixed delay between runs.

    A job's target is a coroutine function, awaited on the loop, or a plain
    callable, run in a worker thread. It can also be an object with an async
    ``ainvoke`` method such as a LangChain Runnable, awaited as
    ``target.ainvoke(*args)``, or a DAG run made by :func:`executor_job`. The scheduler is not
    thread-safe: schedule and cancel jobs from the thread that runs its loop.

    Args:
        events: Bus on which ``schedule.fired``, ``schedule.missed`` and
            ``schedule.failed`` are published.
        clock: Seconds on a monotonic clock. Default: the running event
            loop's clock, on which ``asyncio.sleep`` measures.
        sleep: Coroutine function that waits the given seconds on ``clock``.
        rng: Source of jitter; pass a seeded ``random.Random`` for repeatable
            jitter.

    Example:
        A compiler answering the same question every hour, as a recurring
        agent run::

            from dragonscale_lc import LLMCompiler, TimedScheduler, builtin_tools

            compiler = LLMCompiler(tools=builtin_tools(), llm=model)
            async with TimedScheduler() as scheduler:
                job = scheduler.every(3600, compiler, "What is the population of Japan?")
                await job.wait()  # until cancelled; job.last_result is the latest answer

        Plain functions work the same way:

        >>> async def main():
        ...     seen = []
        ...     async with TimedScheduler() as scheduler:
        ...         job = scheduler.every(0.01, seen.append, "tick")
        ...         await asyncio.sleep(0.035)
        ...         job.cancel()
        ...     return seen[:3]
        >>> asyncio.run(main())
        ['tick', 'tick', 'tick']
    """

    def __init__(
        self,
        *,
        events: EventBus | None = None,
        clock: Callable[[], float] = _loop_time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.events = events if events is not None else EventBus()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._heap: list[Entry] = []
        self._stale = 0  # heap entries of cancelled jobs
        self._seq = 0
        self._runs: set[asyncio.Task[None]] = set()
        self._serving: asyncio.Task[None] | None = None
        self._stopping = False
        self._wakeup: asyncio.Future[None] | None = None
        self._sleeping_until: float | None = None
        # The latest deadline that a completed sleep reached. A timer may fire
        # a hair before its deadline by the clock (asyncio runs timers up to its
        # clock resolution early, and float sums round), and without this
        # floor the loop could sleep for a zero delay again and again.
        self._floor = -math.inf
        self._epoch = 0.0

    async def __aenter__(self) -> TimedScheduler:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Waiting for runs while an error unwinds could block on a slow job.
        await self.stop(wait=exc_type is None)

    # -- scheduling ------------------------------------------------------------------

    def at(
        self,
        when: float,
        target: object,
        *args: Any,
        name: str | None = None,
        priority: int = 0,
        misfire_grace: float | None = None,
    ) -> ScheduledJob:
        """Run ``target(*args)`` once, at ``when`` on the scheduler's clock.

        A time in the past runs as soon as the loop gets to it. If that is more
        than ``misfire_grace`` seconds late, the start is recorded as missed instead.

        Args:
            when: Clock reading at which to start, in seconds.
            target: Callable, coroutine function or object with ``ainvoke``.
            args: Positional arguments for each call.
            name: Name in events and logs. Default: the target's name.
            priority: Among jobs due at the same time, higher starts first.
                :func:`executor_job` adds it to its tasks' priorities.
            misfire_grace: Seconds a start may be late and still run, or
                ``None`` for no limit.

        Raises:
            UsageError: An argument is invalid.
        """
        nominal = check_finite("when", when)
        job = self._job(JobKind.ONCE, target, args, name, priority, misfire_grace=misfire_grace)
        self._push(job, nominal)
        return job

    def after(
        self,
        delay: float,
        target: object,
        *args: Any,
        name: str | None = None,
        priority: int = 0,
        misfire_grace: float | None = None,
    ) -> ScheduledJob:
        """Run ``target(*args)`` once, ``delay`` seconds from now; see :meth:`at`."""
        delay = check_seconds("delay", delay, positive=False)
        return self.at(
            self._now() + delay,
            target,
            *args,
            name=name,
            priority=priority,
            misfire_grace=misfire_grace,
        )

    def every(
        self,
        period: float,
        target: object,
        *args: Any,
        start_in: float | None = None,
        jitter: float = 0.0,
        misfire: MisfirePolicy | str = MisfirePolicy.COALESCE,
        misfire_grace: float | None = None,
        on_error: ErrorPolicy | str = ErrorPolicy.KEEP,
        name: str | None = None,
        priority: int = 0,
    ) -> ScheduledJob:
        """Run ``target(*args)`` at a fixed rate: nominal starts ``t0 + k * period``.

        Nominal starts never drift with run times. A run that overruns its
        slot delays the next one, never overlaps it, and then ``misfire``
        decides what becomes of the slots that passed.

        Args:
            period: Seconds between nominal starts.
            start_in: Seconds from now to the first nominal start ``t0``.
                Default: one period.
            jitter: Each start is its nominal time plus a random offset in
                ``[0, jitter)`` seconds; offsets never accumulate.
            misfire: ``"coalesce"`` runs once for all passed slots, at the
                latest; ``"catch_up"`` runs each passed slot, back to back.
            misfire_grace: A start later than this many seconds is recorded
                as missed (event ``schedule.missed``) instead of run.
                ``None``: no limit.
            on_error: ``"keep"`` the schedule when a run raises, or ``"cancel"`` the job.
            target, args, name, priority: As for :meth:`at`.

        Raises:
            UsageError: An argument is invalid, for example ``jitter >= period``.
        """
        period = check_seconds("period", period, positive=True)
        jitter = check_jitter(jitter, period, "period")
        first = self._now() + check_start_in(start_in, period)
        job = self._job(
            JobKind.FIXED_RATE,
            target,
            args,
            name,
            priority,
            interval=period,
            jitter=jitter,
            misfire=misfire,
            misfire_grace=misfire_grace,
            on_error=on_error,
        )
        job._origin = first
        self._push(job, first)
        return job

    def with_fixed_delay(
        self,
        delay: float,
        target: object,
        *args: Any,
        start_in: float | None = None,
        jitter: float = 0.0,
        misfire_grace: float | None = None,
        on_error: ErrorPolicy | str = ErrorPolicy.KEEP,
        name: str | None = None,
        priority: int = 0,
    ) -> ScheduledJob:
        """Run ``target(*args)`` repeatedly, each start ``delay`` seconds after the previous end.

        Args:
            delay: Seconds from the end of one run to the start of the next.
            start_in: Seconds from now to the first start. Default: ``delay``.
            jitter: Random offset in ``[0, jitter)`` seconds added to each start;
                must be less than ``delay``.
            misfire_grace, on_error, target, args, name, priority: As for :meth:`every`.

        Raises:
            UsageError: An argument is invalid.
        """
        delay = check_seconds("delay", delay, positive=True)
        jitter = check_jitter(jitter, delay, "delay")
        first = self._now() + check_start_in(start_in, delay)
        job = self._job(
            JobKind.FIXED_DELAY,
            target,
            args,
            name,
            priority,
            interval=delay,
            jitter=jitter,
            misfire_grace=misfire_grace,
            on_error=on_error,
        )
        self._push(job, first)
        return job

    def _job(
        self,
        kind: JobKind,
        target: object,
        args: tuple[Any, ...],
        name: str | None,
        priority: int,
        *,
        interval: float = 0.0,
        jitter: float = 0.0,
        misfire: MisfirePolicy | str = MisfirePolicy.COALESCE,
        misfire_grace: float | None,
        on_error: ErrorPolicy | str = ErrorPolicy.KEEP,
    ) -> ScheduledJob:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise UsageError(f"priority must be an int, got {priority!r}")
        if misfire_grace is not None:
            misfire_grace = check_seconds("misfire_grace", misfire_grace, positive=False)
        return ScheduledJob(
            self,
            name=name if name is not None else target_name(target),
            kind=kind,
            call=job_call(target, args),
            priority=priority,
            interval=interval,
            jitter=jitter,
            misfire=to_policy(MisfirePolicy, "misfire", misfire),
            misfire_grace=misfire_grace,
            on_error=to_policy(ErrorPolicy, "on_error", on_error),
        )

    # -- lifecycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the scheduler has been started and not stopped."""
        return self._serving is not None

    def start(self) -> None:
        """Start firing jobs; jobs scheduled before the start run at their times.

        Raises:
            UsageError: The scheduler runs already, or no event loop runs.
        """
        if self._serving is not None:
            raise UsageError("the TimedScheduler runs already; stop() it before start() again")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                "TimedScheduler.start() needs a running event loop; call it from async "
                "code, for example as `async with TimedScheduler() as scheduler:`"
            ) from None
        self._stopping = False
        self._epoch = self._now()
        self._serving = loop.create_task(self._serve(), name="TimedScheduler")

    async def stop(self, *, wait: bool = True) -> None:
        """Stop firing jobs and settle the runs in progress.

        Jobs keep their schedules, so a later :meth:`start` resumes them, with
        the misfire rules applied to the starts that passed meanwhile.

        Args:
            wait: Wait for runs in progress to end. ``False`` cancels them
                (a sync run's thread still finishes its call) and awaits them.

        Raises:
            UsageError: Called from a job's own run, which would wait for itself.
        """
        if asyncio.current_task() in self._runs:
            raise UsageError(
                "TimedScheduler.stop() was called from a scheduled run, which would wait "
                "for itself; cancel the job instead, or stop from the code that owns the scheduler"
            )
        serving = self._serving
        if serving is None:
            return
        self._stopping = True
        self._wake()
        try:
            await serving
        finally:
            self._serving = None
            runs = list(self._runs)
            if not wait:
                for run in runs:
                    run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)

    # -- the loop ----------------------------------------------------------------------

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Task[None] | None = None
        try:
            while not self._stopping:
                deadline = self._start_due()
                wakeup = self._wakeup = loop.create_future()
                self._sleeping_until = deadline
                if deadline is not None:
                    sleeper = loop.create_task(self._sleep_until(deadline, wakeup))
                await wakeup
                if sleeper is not None:
                    sleeper.cancel()  # woken early; a finished sleeper ignores this
                    sleeper = None
        finally:
            self._wakeup = self._sleeping_until = None
            if sleeper is not None:
                sleeper.cancel()
                await asyncio.gather(sleeper, return_exceptions=True)

    async def _sleep_until(self, deadline: float, wakeup: asyncio.Future[None]) -> None:
        await self._sleep(max(deadline - self._clock(), 0.0))
        self._floor = max(self._floor, deadline)
        if not wakeup.done():
            wakeup.set_result(None)

    def _now(self) -> float:
        return max(self._clock(), self._floor)

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
