"""The scheduler's queue: the heap of pending starts, and what happens when a start is due.

:class:`SchedulerQueue` is a mixin of
:class:`~dragonscale_lc.runtime.TimedScheduler`. A due start either runs,
is folded into a later slot (``coalesce``), or is recorded as missed when it
is later than the job's ``misfire_grace``. When a run ends, the job's next
start goes back into the heap.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._events import Event, EventBus
from ._job import (
    ErrorPolicy,
    Firing,
    JobKind,
    JobState,
    MisfirePolicy,
    ScheduledJob,
    set_current_firing,
)

__all__ = ["Entry", "SchedulerQueue"]

logger = logging.getLogger(__name__)

# Cancelled jobs leave stale heap entries behind; the heap is rebuilt once
# they are more than half of it and more than this many.
_MIN_STALE_TO_COMPACT = 64

Entry = tuple[float, int, int, ScheduledJob]


class SchedulerQueue:
    """Mixin of :class:`TimedScheduler`: the heap of pending starts, and firing them."""

    # Set by TimedScheduler.__init__.
    events: EventBus
    _rng: random.Random
    _heap: list[Entry]
    _stale: int
    _seq: int
    _runs: set[asyncio.Task[None]]
    _sleeping_until: float | None
    _epoch: float

    if TYPE_CHECKING:
        # Defined by TimedScheduler.

        def _now(self) -> float: ...

        def _wake(self) -> None: ...

    def _start_due(self) -> float | None:
        """Fire every job that is due; return the next due time, or ``None`` if none waits."""
        now = self._now()
        heap = self._heap
        while heap:
            entry = heap[0]
            job = entry[3]
            if job._entry is not entry:
                heapq.heappop(heap)
                self._stale -= 1
                continue
            if entry[0] > now:
                return entry[0]
            heapq.heappop(heap)
            job._entry = None
            self._fire(job, now)
        return None

    # -- the heap ------------------------------------------------------------------------

    def _push(self, job: ScheduledJob, nominal: float) -> None:
        """Queue ``job``'s next start at ``nominal`` plus a fresh jitter offset."""
        self._plan(job, nominal)
        self._enqueue(job)

    def _plan(self, job: ScheduledJob, nominal: float) -> None:
        job._nominal = nominal
        job._due = nominal + self._rng.random() * job._jitter if job._jitter else nominal

    def _enqueue(self, job: ScheduledJob) -> None:
        due = job._due
        job._state = JobState.SCHEDULED
        entry = (due, -job.priority, self._seq, job)
        self._seq += 1
        job._entry = entry
        heapq.heappush(self._heap, entry)
        sleeping_until = self._sleeping_until
        if sleeping_until is None or due < sleeping_until:
            self._wake()

    def _forget(self, job: ScheduledJob) -> None:
        """Drop a cancelled job's heap entry, lazily: it is skipped when it comes up."""
        entry = job._entry
        if entry is None:
            return
        job._entry = None
        self._stale += 1
        if self._heap and self._heap[0] is entry:
            self._wake()  # so the loop sleeps until the new head instead
        if self._stale > _MIN_STALE_TO_COMPACT and 2 * self._stale > len(self._heap):
            self._heap = [e for e in self._heap if e[3]._entry is e]
            heapq.heapify(self._heap)
            self._stale = 0

    def _schedule_next(self, job: ScheduledJob, end: float) -> None:
        """Queue the start that follows a run, or a skipped start, that ended at ``end``."""
        if job.kind is JobKind.ONCE:
            job._settle(JobState.FINISHED)
        elif job.kind is JobKind.FIXED_RATE:
            job._slot += 1
            self._push(job, job._origin + job._slot * job._interval)
        else:
            self._push(job, end + job._interval)

    # -- firing --------------------------------------------------------------------------

    def _fire(self, job: ScheduledJob, now: float) -> None:
        coalesce = job.kind is JobKind.FIXED_RATE and job._misfire is MisfirePolicy.COALESCE
        if coalesce and self._coalesce(job, now):
            return  # moved to a later slot that is not due yet
        lateness = now - job._due
        grace = job._misfire_grace
        if grace is not None and lateness > grace:
            self._miss(job, now, lateness)
        else:
            self._start_run(job, now)

    def _coalesce(self, job: ScheduledJob, now: float) -> bool:
        """Move ``job`` to the latest slot that has passed; return whether it is not due yet."""
        slot = job._slot
        # Nominal times come from t0 + k * period, never from sums, so they
        # cannot drift. The two loops correct a floor() that rounding put off by one.
        latest = slot + max(math.floor((now - job._nominal) / job._interval), 0)
        while job._origin + (latest + 1) * job._interval <= now:
            latest += 1
        while latest > slot and job._origin + latest * job._interval > now:
            latest -= 1
        if latest == slot:
            return False
        job._skipped += latest - slot
        job._slot = latest
        self._plan(job, job._origin + latest * job._interval)
        if job._due <= now:
            return False
        self._enqueue(job)  # the latest slot's jitter puts it ahead of now
        return True

    def _miss(self, job: ScheduledJob, now: float, lateness: float) -> None:
        slots = 1 + job._skipped
        job.misses += slots
        job._skipped = 0
        logger.info(
            "scheduled job %r missed its start at %.6f: %.6f s late, beyond its misfire_grace",
            job.name,
            job._nominal,
            lateness,
        )
        self._publish(
            "schedule.missed",
            now,
            lambda: {
                "job": job.name,
                "nominal": job._nominal,
                "due": job._due,
                "lateness": lateness,
                "slots": slots,
            },
        )
        self._schedule_next(job, now)

    def _start_run(self, job: ScheduledJob, now: float) -> None:
        job.runs += 1
        firing = Firing(job.name, job.priority, job._nominal, job._due, now, job.runs, job._skipped)
        job.coalesced += job._skipped
        job._skipped = 0
        job._state = JobState.RUNNING
        self._publish(
            "schedule.fired",
            now,
            lambda: {
                "job": job.name,
                "nominal": firing.nominal,
                "due": firing.due,
                "start": now,
                "lateness": firing.lateness,
                "run": firing.run,
                "coalesced": firing.coalesced,
            },
        )
        run = asyncio.get_running_loop().create_task(
            self._run(job, firing), name=f"scheduled job {job.name}"
        )
        job._task = run
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)

    async def _run(self, job: ScheduledJob, firing: Firing) -> None:
        set_current_firing(firing)  # the run's task has its own copy of the context
        try:
            result = await job._call()
        except asyncio.CancelledError:
            # Cancelled with its job, or by stop(wait=False): then the job
            # keeps its schedule for the next start().
            job._task = None
            if not job.done:
                self._schedule_next(job, self._now())
            raise
        except Exception as error:
            job._task = None
            self._fail(job, firing, error)
        else:
            job._task = None
            job.last_result = result
            if not job.done:
                self._schedule_next(job, self._now())

    def _fail(self, job: ScheduledJob, firing: Firing, error: Exception) -> None:
        job.failures += 1
        job.last_error = error
        cancel = job._on_error is ErrorPolicy.CANCEL and job.kind is not JobKind.ONCE
        logger.error(
            "scheduled job %r failed in run %d (nominal start %.6f): %r; %s",
            job.name,
            firing.run,
            firing.nominal,
            error,
            "the job is cancelled (on_error='cancel')" if cancel else "its schedule is kept",
        )
        now = self._now()
        self._publish(
            "schedule.failed",
            now,
            lambda: {"job": job.name, "nominal": firing.nominal, "run": firing.run, "error": error},
        )
        if job.done:
            return
        if cancel:
            job._settle(JobState.CANCELLED)
        else:
            self._schedule_next(job, now)

    def _publish(self, topic: str, now: float, data: Callable[[], dict[str, Any]]) -> None:
        # The payload is built only when someone listens to the topic.
        if self.events.active and self.events.wants(topic):
            self.events.publish(Event(topic, data(), now - self._epoch))
