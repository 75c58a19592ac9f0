"""Scheduled jobs: their kinds, policies and states, the handle a scheduling call returns,
and the firing a run can read through :func:`current_firing`.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import UsageError

if TYPE_CHECKING:
    from ._scheduler import TimedScheduler

__all__ = [
    "ErrorPolicy",
    "Firing",
    "JobKind",
    "JobState",
    "MisfirePolicy",
    "ScheduledJob",
    "current_firing",
]

_current: contextvars.ContextVar[Firing | None] = contextvars.ContextVar(
    "dragonscale_firing", default=None
)


class JobKind(enum.Enum):
    """Kind of schedule, which sets how a job's start times are computed.

    ``ONCE`` runs at one time. ``FIXED_RATE`` starts at ``t0 + k * period``
    whatever the runs take. ``FIXED_DELAY`` starts ``delay`` seconds after the
    previous run ended.
    """

    ONCE = "once"
    FIXED_RATE = "fixed_rate"
    FIXED_DELAY = "fixed_delay"


class MisfirePolicy(enum.Enum):
    """Rule for the fixed-rate slots that passed while a job could not start.

    ``COALESCE`` runs once for all of them, at the latest one. ``CATCH_UP``
    runs once per missed slot, back to back, oldest first.
    """

    COALESCE = "coalesce"
    CATCH_UP = "catch_up"


class ErrorPolicy(enum.Enum):
    """Rule for a job's schedule after a run raises.

    ``KEEP`` runs it again at its next start time. ``CANCEL`` cancels the job.
    """

    KEEP = "keep"
    CANCEL = "cancel"


class JobState(enum.Enum):
    """Stage of a job's life. ``FINISHED`` and ``CANCELLED`` are terminal.

    Only one-time jobs finish, after they ran or were missed.
    """

    SCHEDULED = "scheduled"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Firing:
    """Facts about one run of a scheduled job, readable from the run's own code.

    Times are readings of the scheduler's clock, in seconds.

    Attributes:
        job: Name of the job.
        priority: The job's priority.
        nominal: Start time the schedule asked for, without jitter.
        due: ``nominal`` plus this run's jitter.
        start: When the run started.
        run: 1 for the job's first run, 2 for the second, and so on.
        coalesced: Missed fixed-rate slots this run stands for besides its own.
    """

    job: str
    priority: int
    nominal: float
    due: float
    start: float
    run: int
    coalesced: int = 0

    @property
    def lateness(self) -> float:
        """Seconds between the due time and the start."""
        return self.start - self.due


def current_firing() -> Firing | None:
    """Return the firing of the scheduled run this code belongs to, or ``None`` outside one.

    Sync jobs see it too, because their thread gets a copy of the run's context.
    """
    return _current.get()


def set_current_firing(firing: Firing) -> None:
    _current.set(firing)


class ScheduledJob:
    """Handle of a scheduled job: read its state, or cancel it.

    Returned by :meth:`TimedScheduler.at`, :meth:`~TimedScheduler.after`,
    :meth:`~TimedScheduler.every` and :meth:`~TimedScheduler.with_fixed_delay`.
    Times are readings of the scheduler's clock, in seconds.

    Attributes:
        name: The job's name in events and log lines.
        kind: One-time, fixed-rate or fixed-delay.
        priority: Among jobs due at the same time, higher starts first.
        runs: Runs started so far.
        misses: Start times skipped because the run would have started more
            than ``misfire_grace`` seconds late.
        coalesced: Missed fixed-rate slots folded into a later run.
        failures: Runs that raised.
        last_error: The exception of the latest run that raised, or ``None``.
        last_result: What the latest successful run returned.
    """

    def __init__(
        self,
        scheduler: TimedScheduler,
        *,
        name: str,
        kind: JobKind,
        call: Any,
        priority: int,
        interval: float,
        jitter: float,
        misfire: MisfirePolicy,
        misfire_grace: float | None,
        on_error: ErrorPolicy,
    ) -> None:
        self._scheduler = scheduler
        self.name = name
        self.kind = kind
        self.priority = priority
        self.runs = 0
        self.misses = 0
        self.coalesced = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self.last_result: Any = None
        # Schedule settings; interval is the period or the delay.
        self._call = call
        self._interval = interval
        self._jitter = jitter
        self._misfire = misfire
        self._misfire_grace = misfire_grace
        self._on_error = on_error
        # The next start: slot index k of a fixed-rate job, its nominal time
        # and its due time (nominal plus jitter).
        self._slot = 0
        self._skipped = 0  # passed fixed-rate slots folded into the next start
        self._origin = 0.0  # t0 of a fixed-rate job
        self._nominal = 0.0
        self._due = 0.0
        self._state = JobState.SCHEDULED
        self._entry: tuple[float, int, int, ScheduledJob] | None = None  # live heap entry
        self._task: asyncio.Task[None] | None = None  # the run in progress
        self._waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        return (
            f"<ScheduledJob {self.name!r} {self.kind.value} {self._state.value} "
            f"runs={self.runs} misses={self.misses} failures={self.failures}>"
        )

    @property
    def state(self) -> JobState:
        """Whether the job waits, runs, has finished or was cancelled."""
        return self._state

    @property
    def next_due(self) -> float | None:
        """Due time of the next start (with jitter), or ``None`` while running or when done."""
        return self._due if self._state is JobState.SCHEDULED else None

    @property
    def next_nominal(self) -> float | None:
        """Nominal time of the next start (without jitter), or ``None`` like :attr:`next_due`."""
        return self._nominal if self._state is JobState.SCHEDULED else None

    @property
    def done(self) -> bool:
        """Whether the job will never run again."""
        return self._state in (JobState.FINISHED, JobState.CANCELLED)

    def cancel(self) -> bool:
        """Remove the job from the schedule, and cancel its run in progress if any.

        An async run gets a ``CancelledError`` at its next ``await``. A sync run
        keeps its thread until the call returns, and its result is ignored.

        Returns:
            Whether the job was cancelled now; ``False`` if it was already done.
        """
        if self.done:
            return False
        self._scheduler._forget(self)
        self._settle(JobState.CANCELLED)
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        return True

    async def wait(self) -> None:
        """Wait until the job will never run again: finished, or cancelled."""
        if self.done:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _settle(self, state: JobState) -> None:
        self._state = state
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


# Checks of scheduling arguments, shared by the TimedScheduler methods.

PolicyT = TypeVar("PolicyT", ErrorPolicy, MisfirePolicy)


def target_name(target: object) -> str:
    for attribute in ("__name__", "name"):
        value = getattr(target, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(target).__name__


def check_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number of seconds, got {value!r}")
    return float(value)


def check_seconds(name: str, value: float, *, positive: bool) -> float:
    seconds = check_finite(name, value)
    if seconds < 0 or (positive and seconds == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise UsageError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds


def check_start_in(start_in: float | None, default: float) -> float:
    return default if start_in is None else check_seconds("start_in", start_in, positive=False)


def check_jitter(jitter: float, interval: float, interval_name: str) -> float:
    jitter = check_seconds("jitter", jitter, positive=False)
    if jitter >= interval:
        raise UsageError(
            f"jitter must be less than the {interval_name}, so that a jittered start never "
            f"reaches the next one: got jitter={jitter:g} s with {interval_name}={interval:g} s; "
            f"lower jitter below {interval:g}"
        )
    return jitter


def to_policy(kind: type[PolicyT], name: str, value: PolicyT | str) -> PolicyT:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(member.value) for member in kind)
        raise UsageError(f"{name} must be one of {choices}, got {value!r}") from None
