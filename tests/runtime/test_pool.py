"""WorkerPool: validation, per-key caps, AIMD resizing, events and error classification."""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from dragonscale_lc._errors import TaskTimeoutError, UsageError
from dragonscale_lc.runtime import (
    Event,
    EventBus,
    Outcome,
    PoolResize,
    WorkerPool,
    classify,
)


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


class FakeClock:
    """A clock that moves only when a test advances it."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class StatusCodeError(Exception):
    """An HTTP client error that carries its status, as openai's errors do."""

    status_code = 429


class StatusError(Exception):
    """An HTTP client error with a ``status`` attribute, as aiohttp's do."""

    status = 429


class RateLimitError(Exception):
    """Recognised by its class name alone."""


class ServerError(Exception):
    status_code = 500


class _Response:
    status_code = 429


class HTTPStatusError(Exception):
    """An error that keeps the status on its response, as httpx's does."""

    response = _Response()


def fill(pool: WorkerPool, keys: tuple[str, ...] = ()) -> int:
    """Acquire workers for ``keys`` until the pool rejects one, and return how many it admitted."""
    admitted = 0
    while pool.can_start(keys):
        pool.acquire(keys)
        admitted += 1
    return admitted


def complete_ok(pool: WorkerPool, count: int, duration: float = 1.0) -> None:
    """Release ``count`` tasks as ok, refilling the pool after each so it stays full."""
    for _ in range(count):
        pool.release(duration=duration, outcome="ok")
        fill(pool)


def collect_resizes(bus: EventBus) -> list[Event]:
    events: list[Event] = []
    bus.subscribe("pool.resized", events.append)
    return events


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_workers": 0}, "min_workers must be at least 1, got 0"),
        ({"min_workers": 1.5}, "min_workers must be an int, got 1.5"),
        ({"max_workers": True}, "max_workers must be an int, got True"),
        ({"max_workers": 0}, "max_workers must be at least 1, got 0"),
        (
            {"min_workers": 4, "max_workers": 2},
            "max_workers must be at least min_workers (4), got 2",
        ),
        (
            {"min_workers": 2, "max_workers": 8, "initial": 9},
            "initial must be between min_workers (2) and max_workers (8), got 9",
        ),
        (
            {"min_workers": 2, "max_workers": 8, "initial": 1},
            "initial must be between min_workers (2) and max_workers (8), got 1",
        ),
        ({"latency_tolerance": 0.5}, "latency_tolerance must be at least 1.0, got 0.5"),
        ({"latency_tolerance": math.inf}, "latency_tolerance must be at least 1.0, got inf"),
        ({"smoothing": 0.0}, "smoothing must be in (0, 1], got 0.0"),
        ({"smoothing": 1.5}, "smoothing must be in (0, 1], got 1.5"),
        ({"history": 0}, "history must be at least 1, got 0"),
        ({"limits": {"search": 0}}, "cap for key 'search' must be an int of at least 1, got 0"),
        (
            {"limits": {"search": 2.0}},
            "cap for key 'search' must be an int of at least 1, got 2.0",
        ),
        (
            {"limits": {"": 1}},
            "limits keys must be tool or server names (non-empty str), got ''",
        ),
    ],
)
def test_constructor_rejects(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=exact(message)):
        WorkerPool(**kwargs)


def test_constructor_defaults() -> None:
    pool = WorkerPool()

    assert pool.min_workers == 1
    assert pool.max_workers == 16
    assert pool.limit == 16
    assert pool.running == 0
    assert pool.baseline is None
    assert dict(pool.limits) == {}


def test_acquire_when_full_rejected() -> None:
    pool = WorkerPool(max_workers=2)
    fill(pool)

    expected = (
        "cannot acquire a worker: 2 tasks are running and the limit is 2. "
        "Call can_start() first and acquire only when it returns True"
    )
    with pytest.raises(UsageError, match=exact(expected)):
        pool.acquire()
    assert pool.running == 2


def test_acquire_key_at_cap_rejected() -> None:
    pool = WorkerPool(limits={"search": 1})
    pool.acquire(("search",))

    expected = (
        "cannot acquire a worker: key 'search' has 1 tasks running and its cap is 1. "
        "Call can_start() first and acquire only when it returns True"
    )
    with pytest.raises(UsageError, match=exact(expected)):
        pool.acquire(("math", "search"))
    assert pool.running == 1
    assert dict(pool.running_by_key) == {"search": 1}


def test_release_without_running_rejected() -> None:
    with pytest.raises(UsageError, match=exact("cannot release a worker: no task is running")):
        WorkerPool().release(duration=1.0, outcome="ok")


def test_release_unknown_key_rejected_unchanged() -> None:
    pool = WorkerPool()
    pool.acquire(("search",))

    expected = (
        "cannot release key 'math': no running task was acquired with it. "
        "Pass release() the keys that were passed to acquire()"
    )
    with pytest.raises(UsageError, match=exact(expected)):
        pool.release(("search", "math"), duration=1.0, outcome="ok")
    assert pool.running == 1
    assert dict(pool.running_by_key) == {"search": 1}


@pytest.mark.parametrize(
    ("duration", "outcome", "message"),
    [
        (1.0, "failed", "outcome must be one of error, ok, overload, timeout, got 'failed'"),
        (-1.0, "ok", "duration must be a finite number of seconds >= 0, got -1.0"),
        (math.nan, "ok", "duration must be a finite number of seconds >= 0, got nan"),
        (math.inf, "ok", "duration must be a finite number of seconds >= 0, got inf"),
    ],
)
def test_release_invalid_arguments(duration: float, outcome: Any, message: str) -> None:
    pool = WorkerPool()
    pool.acquire()

    with pytest.raises(UsageError, match=exact(message)):
        pool.release(duration=duration, outcome=outcome)
    assert pool.running == 1


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (1, "limit must be between min_workers (2) and max_workers (8), got 1"),
        (9, "limit must be between min_workers (2) and max_workers (8), got 9"),
        (0, "limit must be at least 1, got 0"),
        (4.0, "limit must be an int, got 4.0"),
    ],
)
def test_resize_rejects(limit: Any, message: str) -> None:
    pool = WorkerPool(min_workers=2, max_workers=8)

    with pytest.raises(UsageError, match=exact(message)):
        pool.resize(limit)
    assert pool.limit == 8


def test_set_limit_rejects_zero() -> None:
    pool = WorkerPool(limits={"search": 2})

    with pytest.raises(
        UsageError, match=exact("cap for key 'search' must be an int of at least 1, got 0")
    ):
        pool.set_limit("search", 0)
    assert pool.limits["search"] == 2


# -- total limit and per-key caps ------------------------------------------------------


def test_total_limit_admits_up_to_limit() -> None:
    pool = WorkerPool(max_workers=3)

    assert fill(pool) == 3
    assert pool.can_start() is False


def test_key_cap_blocks_only_that_key() -> None:
    pool = WorkerPool(max_workers=8, limits={"search": 2})

    assert fill(pool, ("search",)) == 2
    assert pool.can_start(("search",)) is False
    assert pool.can_start(("math",)) is True
    assert pool.can_start() is True


def test_task_with_two_keys_blocked_by_either() -> None:
    pool = WorkerPool(max_workers=8, limits={"mcp:server-a": 3, "search": 1})
    pool.acquire(("mcp:server-a", "search"))

    assert pool.can_start(("mcp:server-a", "search")) is False
    assert pool.can_start(("mcp:server-a", "fetch")) is True
    assert dict(pool.running_by_key) == {"mcp:server-a": 1, "search": 1}


def test_server_cap_shared_by_tools() -> None:
    pool = WorkerPool(max_workers=8, limits={"mcp:server-a": 2})
    pool.acquire(("mcp:server-a", "search"))
    pool.acquire(("mcp:server-a", "fetch"))

    assert pool.can_start(("mcp:server-a", "list")) is False


def test_string_keys_are_one_key() -> None:
    pool = WorkerPool(limits={"search": 1})
    pool.acquire("search")

    assert pool.can_start("search") is False
    assert dict(pool.running_by_key) == {"search": 1}


def test_repeated_key_counted_once() -> None:
    pool = WorkerPool(limits={"search": 2})
    pool.acquire(("search", "search"))

    assert dict(pool.running_by_key) == {"search": 1}
    assert pool.can_start(("search",)) is True
    pool.release(("search", "search"), duration=1.0, outcome="ok")
    assert dict(pool.running_by_key) == {}


def test_release_frees_key_and_total() -> None:
    pool = WorkerPool(max_workers=1, limits={"search": 1})
    pool.acquire(("search",))
    pool.release(("search",), duration=1.0, outcome="ok")

    assert pool.can_start(("search",)) is True
    assert pool.running == 0
    assert dict(pool.running_by_key) == {}


def test_set_limit_raise_admits_more() -> None:
    pool = WorkerPool(limits={"search": 1})
    pool.acquire(("search",))
    pool.set_limit("search", 2)

    assert pool.can_start(("search",)) is True


def test_set_limit_lower_admits_nothing_until_released() -> None:
    pool = WorkerPool(limits={"search": 3})
    fill(pool, ("search",))
    pool.set_limit("search", 1)

    pool.release(("search",), duration=1.0, outcome="ok")
    pool.release(("search",), duration=1.0, outcome="ok")
    assert pool.can_start(("search",)) is False
    pool.release(("search",), duration=1.0, outcome="ok")
    assert pool.can_start(("search",)) is True


def test_set_limit_none_removes_cap() -> None:
    pool = WorkerPool(limits={"search": 1})
    pool.acquire(("search",))
    pool.set_limit("search", None)

    assert pool.can_start(("search",)) is True
    assert "search" not in pool.limits


def test_limits_view_is_read_only() -> None:
    pool = WorkerPool(limits={"search": 1})

    with pytest.raises(TypeError):
        pool.limits["search"] = 5  # type: ignore[index]


def test_resize_below_running_admits_nothing() -> None:
    pool = WorkerPool(max_workers=4)
    fill(pool)
    pool.resize(2)

    pool.release(duration=1.0, outcome="ok")
    assert pool.can_start() is False
    pool.release(duration=1.0, outcome="ok")
    pool.release(duration=1.0, outcome="ok")
    assert pool.can_start() is True


# -- additive increase -----------------------------------------------------------------


def test_increase_after_full_window() -> None:
    pool = WorkerPool(max_workers=8, initial=2, clock=FakeClock())
    fill(pool)

    complete_ok(pool, 1)
    assert pool.limit == 2
    complete_ok(pool, 1)
    assert pool.limit == 3
    assert pool.resizes[-1] == PoolResize(2, 3, "additive increase", None, 0.0)


def test_increase_window_is_limit_completions() -> None:
    pool = WorkerPool(max_workers=8, initial=2)
    fill(pool)

    complete_ok(pool, 2)
    complete_ok(pool, 2)
    assert pool.limit == 3
    complete_ok(pool, 1)
    assert pool.limit == 4


def test_no_increase_when_pool_never_full() -> None:
    pool = WorkerPool(max_workers=8, initial=4)

    for _ in range(20):
        pool.acquire()
        pool.release(duration=1.0, outcome="ok")

    assert pool.limit == 4
    assert pool.baseline == pytest.approx(1.0)


def test_no_increase_when_latency_grew() -> None:
    pool = WorkerPool(max_workers=8, initial=2, latency_tolerance=2.0, smoothing=0.2)
    fill(pool)
    complete_ok(pool, 2, duration=1.0)
    assert pool.limit == 3

    complete_ok(pool, 3, duration=2.5)
    assert pool.limit == 3
    # The baseline moved a fifth of the way towards the slow window's mean.
    assert pool.baseline == pytest.approx(1.3)


def test_increase_within_latency_tolerance() -> None:
    pool = WorkerPool(max_workers=8, initial=2, latency_tolerance=2.0)
    fill(pool)
    complete_ok(pool, 2, duration=1.0)

    complete_ok(pool, 3, duration=2.0)
    assert pool.limit == 4


def test_increase_stops_at_max() -> None:
    pool = WorkerPool(max_workers=3, initial=1)
    fill(pool)

    complete_ok(pool, 50)

    assert pool.limit == 3
    assert [r.new for r in pool.resizes] == [2, 3]


def test_errors_leave_window_alone() -> None:
    pool = WorkerPool(max_workers=8, initial=2)
    fill(pool)
    complete_ok(pool, 1)

    pool.release(duration=50.0, outcome="error", error=ValueError("bad argument"))
    fill(pool)
    assert pool.limit == 2
    complete_ok(pool, 1)
    assert pool.limit == 3
    assert pool.baseline == pytest.approx(1.0)


# -- multiplicative decrease -----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (StatusCodeError("too many requests"), "overload: StatusCodeError"),
        (StatusError("too many requests"), "overload: StatusError"),
        (RateLimitError("slow down"), "overload: RateLimitError"),
        (HTTPStatusError("429"), "overload: HTTPStatusError"),
    ],
)
def test_halves_on_rate_limit_errors(error: Exception, reason: str) -> None:
    pool = WorkerPool(max_workers=8)
    pool.acquire()

    pool.release(duration=1.0, outcome=classify(error), error=error)

    assert pool.limit == 4
    assert pool.resizes[-1].reason == reason


def test_halves_on_timeout() -> None:
    pool = WorkerPool(max_workers=8)
    pool.acquire()

    pool.release(duration=30.0, outcome="timeout", error=TimeoutError())

    assert pool.limit == 4
    assert pool.resizes[-1].reason == "timeout"


def test_overload_without_error_reason() -> None:
    pool = WorkerPool(max_workers=8)
    pool.acquire()

    pool.release(duration=1.0, outcome="overload")

    assert pool.resizes[-1].reason == "overload"


def test_increase_then_halve() -> None:
    pool = WorkerPool(max_workers=16, initial=4)
    fill(pool)
    complete_ok(pool, 4)
    complete_ok(pool, 5)
    assert pool.limit == 6

    pool.release(duration=1.0, outcome="overload", error=RateLimitError())

    assert pool.limit == 3
    assert [(r.old, r.new, r.reason) for r in pool.resizes] == [
        (4, 5, "additive increase"),
        (5, 6, "additive increase"),
        (6, 3, "overload: RateLimitError"),
    ]


def test_halving_rounds_down_to_min() -> None:
    pool = WorkerPool(min_workers=2, max_workers=5)
    limits = []
    for _ in range(4):
        pool.acquire()
        pool.release(duration=1.0, outcome="overload")
        limits.append(pool.limit)

    assert limits == [2, 2, 2, 2]
    assert len(pool.resizes) == 1


def test_halving_odd_limit_rounds_down() -> None:
    pool = WorkerPool(max_workers=7)
    pool.acquire()

    pool.release(duration=1.0, outcome="overload")

    assert pool.limit == 3


def test_burst_of_429s_halves_once() -> None:
    pool = WorkerPool(max_workers=16)
    fill(pool)

    for _ in range(16):
        pool.release(duration=1.0, outcome="overload", error=StatusCodeError())

    assert pool.limit == 8
    assert len(pool.resizes) == 1


def test_overload_after_cooldown_halves_again() -> None:
    pool = WorkerPool(max_workers=16)
    fill(pool)
    for _ in range(16):
        pool.release(duration=1.0, outcome="overload", error=StatusCodeError())
    assert fill(pool) == 8

    pool.release(duration=1.0, outcome="overload", error=StatusCodeError())

    assert pool.limit == 4


def test_cooldown_counts_every_outcome() -> None:
    pool = WorkerPool(max_workers=4)
    fill(pool)
    pool.release(duration=1.0, outcome="overload")
    assert pool.limit == 2

    pool.release(duration=1.0, outcome="error")
    pool.release(duration=1.0, outcome="ok")
    pool.release(duration=1.0, outcome="timeout")
    assert pool.limit == 2

    pool.acquire()
    pool.release(duration=1.0, outcome="timeout")
    assert pool.limit == 1


def test_no_increase_from_cooldown_completions() -> None:
    pool = WorkerPool(max_workers=16)
    fill(pool)
    pool.release(duration=1.0, outcome="overload")

    for _ in range(15):
        pool.release(duration=1.0, outcome="ok")

    assert pool.limit == 8
    assert pool.baseline is None


def test_overload_restarts_window() -> None:
    pool = WorkerPool(min_workers=2, max_workers=8, initial=2)
    fill(pool)
    complete_ok(pool, 1)
    pool.release(duration=1.0, outcome="overload")
    fill(pool)
    complete_ok(pool, 1)  # ends the cooldown of the one task still running then

    complete_ok(pool, 1)
    assert pool.limit == 2
    complete_ok(pool, 1)
    assert pool.limit == 3


# -- manual resizes and events ---------------------------------------------------------


def test_resize_records_user_reason() -> None:
    pool = WorkerPool(max_workers=8)

    pool.resize(3)
    pool.resize(5, reason="quota raised")

    assert [(r.old, r.new, r.reason) for r in pool.resizes] == [
        (8, 3, "set by user"),
        (3, 5, "quota raised"),
    ]


def test_resize_same_limit_not_recorded() -> None:
    pool = WorkerPool(max_workers=8)

    pool.resize(8)

    assert list(pool.resizes) == []


def test_events_published_with_reasons() -> None:
    bus = EventBus()
    events = collect_resizes(bus)
    clock = FakeClock(100.0)
    pool = WorkerPool(max_workers=4, initial=1, events=bus, clock=clock)
    fill(pool)

    clock.now = 101.5
    complete_ok(pool, 1)
    clock.now = 103.0
    pool.release(duration=1.0, outcome="overload", error=RateLimitError())
    pool.release(duration=1.0, outcome="timeout")
    clock.now = 104.0
    pool.resize(4)
    pool.set_limit("search", 2)

    assert [(e.topic, e.time, e.data) for e in events] == [
        ("pool.resized", 1.5, {"old": 1, "new": 2, "reason": "additive increase", "key": None}),
        (
            "pool.resized",
            3.0,
            {"old": 2, "new": 1, "reason": "overload: RateLimitError", "key": None},
        ),
        ("pool.resized", 4.0, {"old": 1, "new": 4, "reason": "set by user", "key": None}),
        ("pool.resized", 4.0, {"old": None, "new": 2, "reason": "set by user", "key": "search"}),
    ]
    assert [r.time for r in pool.resizes] == [1.5, 3.0, 4.0, 4.0]


def test_wildcard_subscriber_receives_resizes() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("pool.*", events.append)
    pool = WorkerPool(max_workers=4, events=bus)

    pool.resize(2)

    assert [e.data["new"] for e in events] == [2]


def test_no_event_built_without_subscriber() -> None:
    published: list[Event] = []

    class CountingBus(EventBus):
        def publish(self, event: Event) -> None:
            published.append(event)
            super().publish(event)

    bus = CountingBus()
    bus.subscribe("task.*", print)
    pool = WorkerPool(max_workers=4, events=bus)

    pool.resize(2)

    assert published == []
    assert len(pool.resizes) == 1


def test_resizes_bounded_by_history() -> None:
    pool = WorkerPool(max_workers=8, history=3)

    for limit in (1, 2, 3, 4, 5):
        pool.resize(limit)

    assert [r.new for r in pool.resizes] == [3, 4, 5]


def test_set_limit_unchanged_not_recorded() -> None:
    pool = WorkerPool(limits={"search": 2})

    pool.set_limit("search", 2)
    pool.set_limit("math", None)

    assert list(pool.resizes) == []


def test_repr_shows_limit_and_running() -> None:
    pool = WorkerPool(max_workers=4)
    pool.acquire()

    assert repr(pool) == "WorkerPool(limit=4, running=1, min_workers=1, max_workers=4)"


# -- classify --------------------------------------------------------------------------


class RatelimitExceeded(Exception):
    pass


class ProviderRateLimitError(RateLimitError):
    pass


class BrokenStatusError(Exception):
    @property
    def status_code(self) -> int:
        raise RuntimeError("no response attached")


class ToolError(Exception):
    pass


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (StatusCodeError(), "overload"),
        (StatusError(), "overload"),
        (HTTPStatusError(), "overload"),
        (RateLimitError(), "overload"),
        (RatelimitExceeded(), "overload"),
        (ProviderRateLimitError(), "overload"),
        (TimeoutError(), "timeout"),
        (asyncio.TimeoutError(), "timeout"),  # noqa: UP041 - the name asyncio code raises
        (TaskTimeoutError("timed out", task_id=1, tool="search"), "timeout"),
        (ServerError(), "error"),
        (ValueError("bad"), "error"),
        (BrokenStatusError(), "error"),
        (asyncio.CancelledError(), "error"),
    ],
)
def test_classify(error: BaseException, outcome: Outcome) -> None:
    assert classify(error) == outcome


def test_classify_follows_explicit_cause() -> None:
    try:
        try:
            raise RateLimitError("slow down")
        except RateLimitError as cause:
            raise ToolError("search failed") from cause
    except ToolError as error:
        assert classify(error) == "overload"


def test_classify_ignores_implicit_context() -> None:
    error = ToolError("search failed")
    error.__context__ = RateLimitError()

    assert classify(error) == "error"


def test_classify_stops_on_cause_cycle() -> None:
    first, second = ToolError("a"), ToolError("b")
    first.__cause__, second.__cause__ = second, first

    assert classify(first) == "error"


# -- properties ------------------------------------------------------------------------

KEYS = ("mcp:server-a", "search", "math")


class PoolMachine(RuleBasedStateMachine):
    """Random acquire, release, resize and cap changes against a model of the counts."""

    def __init__(self) -> None:
        super().__init__()
        self.running: list[tuple[str, ...]] = []

    @initialize(
        bounds=st.tuples(st.integers(1, 4), st.integers(0, 6)),
        caps=st.dictionaries(st.sampled_from(KEYS), st.integers(1, 3)),
    )
    def create(self, bounds: tuple[int, int], caps: dict[str, int]) -> None:
        low, extra = bounds
        self.pool = WorkerPool(min_workers=low, max_workers=low + extra, initial=low, limits=caps)

    def expected_can_start(self, keys: tuple[str, ...]) -> bool:
        held = Counter(key for task in self.running for key in set(task))
        caps = self.pool.limits
        at_cap = any(key in caps and held[key] >= caps[key] for key in set(keys))
        return len(self.running) < self.pool.limit and not at_cap

    @rule(keys=st.lists(st.sampled_from(KEYS), max_size=3).map(tuple))
    def start(self, keys: tuple[str, ...]) -> None:
        expected = self.expected_can_start(keys)
        assert self.pool.can_start(keys) is expected

        if not expected:
            with pytest.raises(UsageError):
                self.pool.acquire(keys)
            return
        self.pool.acquire(keys)
        self.running.append(keys)
        # Lowering a limit leaves earlier tasks running, so only the task just
        # admitted is sure to fit under the limit and its keys' caps.
        assert self.pool.running <= self.pool.limit
        for key in set(keys):
            assert self.pool.running_by_key[key] <= self.pool.limits.get(key, math.inf)

    @precondition(lambda self: self.running)
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["ok", "ok", "ok", "error", "overload", "timeout"]),
        duration=st.floats(0.0, 10.0),
    )
    def finish(self, data: st.DataObject, outcome: Outcome, duration: float) -> None:
        index = data.draw(st.integers(0, len(self.running) - 1))
        keys = self.running.pop(index)
        old = self.pool.limit

        self.pool.release(keys, duration=duration, outcome=outcome)

        new = self.pool.limit
        if outcome == "ok":
            assert new in (old, old + 1)
        elif outcome == "error":
            assert new == old
        else:
            assert new in (old, max(self.pool.min_workers, old // 2))

    @rule(data=st.data())
    def resize(self, data: st.DataObject) -> None:
        limit = data.draw(st.integers(self.pool.min_workers, self.pool.max_workers))
        self.pool.resize(limit)
        assert self.pool.limit == limit

    @rule(key=st.sampled_from(KEYS), cap=st.none() | st.integers(1, 3))
    def set_cap(self, key: str, cap: int | None) -> None:
        self.pool.set_limit(key, cap)
        assert self.pool.limits.get(key) == cap

    @invariant()
    def limit_within_bounds(self) -> None:
        assert self.pool.min_workers <= self.pool.limit <= self.pool.max_workers

    @invariant()
    def counts_match_model(self) -> None:
        held = Counter(key for task in self.running for key in set(task))
        assert self.pool.running == len(self.running)
        assert dict(self.pool.running_by_key) == dict(held)

    @invariant()
    def resizes_stay_in_bounds(self) -> None:
        for resize in self.pool.resizes:
            if resize.key is None:
                assert resize.new is not None
                assert self.pool.min_workers <= resize.new <= self.pool.max_workers


PoolMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_pool_machine = PoolMachine.TestCase
