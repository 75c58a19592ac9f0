"""WorkerPool: an adaptive concurrency limit with per-key caps.

The executor calls :meth:`WorkerPool.can_start` before it starts a task,
:meth:`WorkerPool.acquire` when the task starts and :meth:`WorkerPool.release`
when it ends, with its duration and outcome. Every call is synchronous and
costs O(number of keys), so the dispatcher calls the pool from the event loop
without locks, timers or tasks of its own.

A key is a tool name or a server name (``"search"``, ``"mcp:server-a"``), and a
task may have several. Each key can have a fixed cap, and the total limit adapts
between ``min_workers`` and ``max_workers`` by additive increase and
multiplicative decrease (AIMD), the rule TCP congestion control follows:

* Increase: ``"ok"`` completions are counted in windows of ``limit`` consecutive
  completions. When a window closes, the limit grows by 1 if the pool was full
  at some moment during the window (so the limit, not a lack of work, bounded
  throughput) and the window's mean duration is at most ``latency_tolerance``
  times the baseline. The baseline is an exponential moving average of earlier
  windows' mean durations.
* Decrease: an ``"overload"`` (HTTP 429, a rate-limit error) or ``"timeout"``
  completion halves the limit, rounding down and never below ``min_workers``.
  The tasks running at that moment started under the old limit, so their
  outcomes say nothing about the new one. Until that many more tasks have
  completed (the cooldown), the pool ignores overloads and counts no windows.
  A burst of 429 responses therefore halves the limit once, not once per
  response.
* ``"error"`` completions (a tool bug, a bad argument, a cancelled task) carry
  no capacity signal. They leave the limit, the window and the baseline
  alone and only count towards the cooldown.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .._errors import UsageError
from ._events import Event, EventBus
from ._outcome import OUTCOMES, Outcome, classify

# Outcome and classify are re-exported because the pool's callers need both.
__all__ = ["Outcome", "PoolResize", "WorkerPool", "classify"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PoolResize:
    """One change of the total limit or of a key's cap.

    Attributes:
        old: The limit before the change, or ``None`` when a key had no cap.
        new: The limit after the change, or ``None`` when a key's cap was removed.
        reason: ``"additive increase"``, ``"overload: <error type>"``,
            ``"timeout"`` or the reason given to :meth:`WorkerPool.resize`
            (``"set by user"`` by default).
        key: The key whose cap changed, or ``None`` for the total limit.
        time: Seconds since the pool was created, on the pool's clock.
    """

    old: int | None
    new: int | None
    reason: str
    key: str | None = None
    time: float = 0.0


class WorkerPool:
    """Admit tasks up to an adaptive total limit and fixed per-key caps.

    The pool never admits a task while the total running count is at the
    limit or while any of the task's keys is at its cap. Lowering a limit does
    not stop running tasks, but the pool admits nothing more until enough of
    them have been released. The pool is not thread-safe, so call it from one
    thread, normally the event loop's.

    Args:
        min_workers: Lowest total limit that overload signals can reach.
        max_workers: Highest total limit that additive increase can reach.
        initial: Starting limit. It defaults to ``max_workers``, so a pool
            without overload signals runs as many tasks as a fixed pool of that size.
        limits: Cap per key (tool or server name), such as ``{"search": 2}``.
        events: Bus on which every change of a limit is published as
            ``pool.resized``.
        clock: Monotonic clock in seconds, injectable for tests.
        latency_tolerance: Factor over the baseline duration up to which a
            window's mean duration still counts as "latency held".
        smoothing: Weight of the newest window's mean in the baseline, in (0, 1].
        history: Number of recent changes kept in :attr:`resizes`.

    Example:
        >>> pool = WorkerPool(max_workers=4, limits={"search": 1})
        >>> pool.can_start(("search",))
        True
        >>> pool.acquire(("search",))
        >>> pool.can_start(("search",)), pool.can_start(("math",))
        (False, True)
        >>> pool.release(("search",), duration=0.2, outcome="overload")
        >>> pool.limit, pool.resizes[-1].reason
        (2, 'overload')
    """

    def __init__(
        self,
        *,
        min_workers: int = 1,
        max_workers: int = 16,
        initial: int | None = None,
        limits: Mapping[str, int] | None = None,
        events: EventBus | None = None,
        clock: Callable[[], float] = time.perf_counter,
        latency_tolerance: float = 2.0,
        smoothing: float = 0.2,
        history: int = 100,
    ) -> None:
        _check_count("min_workers", min_workers, minimum=1)
        _check_count("max_workers", max_workers, minimum=1)
        if max_workers < min_workers:
            raise UsageError(
                f"max_workers must be at least min_workers ({min_workers}), got {max_workers}"
            )
        if initial is None:
            initial = max_workers
        _check_count("initial", initial, minimum=1)
        _check_range("initial", initial, min_workers, max_workers)
        if not math.isfinite(latency_tolerance) or latency_tolerance < 1.0:
            raise UsageError(f"latency_tolerance must be at least 1.0, got {latency_tolerance!r}")
        if not 0.0 < smoothing <= 1.0:
            raise UsageError(f"smoothing must be in (0, 1], got {smoothing!r}")
        _check_count("history", history, minimum=1)

        self._min = min_workers
        self._max = max_workers
        self._limit = initial
        self._caps = {key: _check_cap(key, cap) for key, cap in (limits or {}).items()}
        self._events = events
        self._clock = clock
        self._created = clock()
        self._tolerance = latency_tolerance
        self._smoothing = smoothing
        self.resizes: deque[PoolResize] = deque(maxlen=history)
        """The most recent changes of a limit, oldest first."""

        self._running = 0
        self._by_key: dict[str, int] = {}
        self._baseline: float | None = None
        self._cooldown = 0
        self._start_window()

    def __repr__(self) -> str:
        return (
            f"WorkerPool(limit={self._limit}, running={self._running}, "
            f"min_workers={self._min}, max_workers={self._max})"
        )

    @property
    def limit(self) -> int:
        """Current total limit."""
        return self._limit

    @property
    def running(self) -> int:
        """Number of tasks acquired and not yet released."""
        return self._running

    @property
    def min_workers(self) -> int:
        """Lowest total limit."""
        return self._min

    @property
    def max_workers(self) -> int:
        """Highest total limit."""
        return self._max

    @property
    def limits(self) -> Mapping[str, int]:
        """Read-only view of the cap per key."""
        return MappingProxyType(self._caps)

    @property
    def running_by_key(self) -> Mapping[str, int]:
        """Read-only view of the running count per key, without keys that have none."""
        return MappingProxyType(self._by_key)

    @property
    def baseline(self) -> float | None:
        """Moving average of windows' mean durations in seconds, ``None`` before the first."""
        return self._baseline

    def can_start(self, keys: str | Collection[str] = ()) -> bool:
        """Return whether a task with ``keys`` may start now.

        A single string is one key, not a sequence of one-letter keys.
        """
        return self._running < self._limit and self._key_at_cap(_as_keys(keys)) is None

    def acquire(self, keys: str | Collection[str] = ()) -> None:
        """Count a task with ``keys`` as running.

        Raises:
            UsageError: The pool is at its limit or a key is at its cap. Call
                :meth:`can_start` first.
        """
        keys = _as_keys(keys)
        if self._running >= self._limit:
            raise UsageError(
                f"cannot acquire a worker: {self._running} tasks are running and the "
                f"limit is {self._limit}. Call can_start() first and acquire only when "
                "it returns True"
            )
        full = self._key_at_cap(keys)
        if full is not None:
            raise UsageError(
                f"cannot acquire a worker: key {full!r} has {self._by_key[full]} tasks "
                f"running and its cap is {self._caps[full]}. Call can_start() first and "
                "acquire only when it returns True"
            )

        self._running += 1
        for key in keys:
            self._by_key[key] = self._by_key.get(key, 0) + 1
        if self._running >= self._limit:
            self._full_in_window = True

    def release(
        self,
        keys: str | Collection[str] = (),
        *,
        duration: float,
        outcome: Outcome,
        error: BaseException | None = None,
    ) -> None:
        """Count a task with ``keys`` as finished and adapt the limit to its outcome.

        Args:
            keys: The keys the task was acquired with.
            duration: Seconds the task ran.
            outcome: How it ended; :func:`classify` maps an exception to one.
            error: The exception it raised, whose type names an overload in
                the resize reason.

        Raises:
            UsageError: No running task was acquired with these keys, or
                ``duration`` or ``outcome`` is invalid. The pool is left unchanged.
        """
        keys = _as_keys(keys)
        self._check_release(keys, duration, outcome)

        self._running -= 1
        for key in keys:
            remaining = self._by_key[key] - 1
            if remaining:
                self._by_key[key] = remaining
            else:
                del self._by_key[key]

        if self._cooldown:
            self._cooldown -= 1
        elif outcome == "ok":
            self._count_ok(duration)
        elif outcome != "error":
            self._decrease(outcome, error)

    def resize(self, limit: int, reason: str = "set by user") -> None:
        """Set the total limit, within ``min_workers`` and ``max_workers``.

        Raises:
            UsageError: ``limit`` is not an int in that range.
        """
        _check_count("limit", limit, minimum=1)
        _check_range("limit", limit, self._min, self._max)
        self._set_limit(limit, reason)

    def set_limit(self, key: str, cap: int | None, reason: str = "set by user") -> None:
        """Set the cap of ``key``, or remove it with ``None``.

        Raises:
            UsageError: ``cap`` is not a positive int or ``None``.
        """
        if cap is not None:
            _check_cap(key, cap)
        old = self._caps.get(key)
        if cap is None:
            self._caps.pop(key, None)
        else:
            self._caps[key] = cap
        if cap != old:
            self._record(old, cap, reason, key)

    def _key_at_cap(self, keys: Collection[str]) -> str | None:
        for key in keys:
            cap = self._caps.get(key)
            if cap is not None and self._by_key.get(key, 0) >= cap:
                return key
        return None

    def _check_release(self, keys: Collection[str], duration: float, outcome: str) -> None:
        if outcome not in OUTCOMES:
            choices = ", ".join(sorted(OUTCOMES))
            raise UsageError(f"outcome must be one of {choices}, got {outcome!r}")
        if not (duration >= 0.0 and math.isfinite(duration)):
            raise UsageError(f"duration must be a finite number of seconds >= 0, got {duration!r}")
        if self._running == 0:
            raise UsageError("cannot release a worker: no task is running")
        for key in keys:
            if key not in self._by_key:
                raise UsageError(
                    f"cannot release key {key!r}: no running task was acquired with it. "
                    "Pass release() the keys that were passed to acquire()"
                )

    def _count_ok(self, duration: float) -> None:
        self._window_count += 1
        self._window_total += duration
        if self._window_count < self._limit:
            return

        # NOTE: windows mix every tool's durations, so a shift towards slower
        # tools reads as latency growth and holds the limit until the baseline
        # catches up (test_no_increase_when_latency_grew shows the rule).
        mean = self._window_total / self._window_count
        baseline = mean if self._baseline is None else self._baseline
        self._baseline = baseline + self._smoothing * (mean - baseline)
        latency_held = mean <= self._tolerance * baseline
        if self._full_in_window and latency_held and self._limit < self._max:
            self._set_limit(self._limit + 1, "additive increase")
        else:
            self._start_window()

    def _decrease(self, outcome: str, error: BaseException | None) -> None:
        if outcome == "timeout":
            reason = "timeout"
        elif error is not None:
            reason = f"overload: {type(error).__name__}"
        else:
            reason = "overload"
        # The tasks still running were admitted under the old limit, so their
        # overloads would halve the limit again for the same cause.
        self._cooldown = self._running
        self._set_limit(max(self._min, self._limit // 2), reason)

    def _set_limit(self, limit: int, reason: str) -> None:
        old = self._limit
        self._limit = limit
        self._start_window()
        if limit != old:
            self._record(old, limit, reason, None)

    def _start_window(self) -> None:
        self._window_count = 0
        self._window_total = 0.0
        self._full_in_window = self._running >= self._limit

    def _record(self, old: int | None, new: int | None, reason: str, key: str | None) -> None:
        resize = PoolResize(old, new, reason, key, self._clock() - self._created)
        self.resizes.append(resize)
        target = "limit" if key is None else f"cap of {key!r}"
        # A smaller limit means a rate limit, a timeout or the user pushed back,
        # which an operator wants to see. Growth is routine.
        shrank = new is not None and (old is None or new < old)
        logger.log(
            logging.INFO if shrank else logging.DEBUG,
            "worker pool %s changed from %s to %s: %s",
            target,
            old,
            new,
            reason,
        )
        if self._events is not None and self._events.wants("pool.resized"):
            data = {"old": old, "new": new, "reason": reason, "key": key}
            self._events.publish(Event("pool.resized", data, resize.time))


def _as_keys(keys: str | Collection[str]) -> Collection[str]:
    if isinstance(keys, str):
        return (keys,)
    if len(keys) > 1:
        # A repeated key would count twice against its cap on acquire.
        return tuple(dict.fromkeys(keys))
    return keys


def _check_count(name: str, value: object, *, minimum: int) -> None:
    # bool is an int subclass, but WorkerPool(max_workers=True) is a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise UsageError(
            f"{name} must be between min_workers ({low}) and max_workers ({high}), got {value}"
        )


def _check_cap(key: object, cap: object) -> int:
    if not isinstance(key, str) or not key:
        raise UsageError(f"limits keys must be tool or server names (non-empty str), got {key!r}")
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise UsageError(f"cap for key {key!r} must be an int of at least 1, got {cap!r}")
    return cap
