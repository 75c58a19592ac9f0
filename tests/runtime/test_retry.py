"""Retries of transient task failures, and dispatch strategies."""

from __future__ import annotations

import pytest

from dragonscale_lc import UsageError
from dragonscale_lc.runtime import (
    DagExecutor,
    EventBus,
    RetryPolicy,
    Strategy,
    Task,
    TaskStatus,
    is_transient,
)


class Flaky:
    """Fails with ``error`` the first ``failures`` times, then returns ``"ok"``."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


class RateLimited(Exception):
    status_code = 429


def recording_sleep(waits: list[float]):
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return sleep


async def test_transient_error_is_retried() -> None:
    waits: list[float] = []
    flaky = Flaky(2, ConnectionError("reset"))
    executor = DagExecutor(
        retry=RetryPolicy(attempts=3, initial=1.0, jitter=0.0), sleep=recording_sleep(waits)
    )

    report = await executor.run([Task(id="a", fn=flaky)])

    assert report["a"].status is TaskStatus.DONE
    assert report["a"].attempts == 3
    assert waits == [1.0, 2.0]


async def test_retry_gives_up_after_attempts() -> None:
    flaky = Flaky(5, ConnectionError("reset"))
    executor = DagExecutor(
        retry=RetryPolicy(attempts=2, initial=0.0, jitter=0.0), sleep=recording_sleep([])
    )

    report = await executor.run([Task(id="a", fn=flaky)])

    assert report["a"].status is TaskStatus.FAILED
    assert report["a"].attempts == 2
    assert isinstance(report["a"].error, ConnectionError)


async def test_permanent_error_is_not_retried() -> None:
    flaky = Flaky(1, ValueError("bad input"))
    executor = DagExecutor(retry=RetryPolicy(attempts=3), sleep=recording_sleep([]))

    report = await executor.run([Task(id="a", fn=flaky)])

    assert report["a"].status is TaskStatus.FAILED
    assert flaky.calls == 1


async def test_task_policy_overrides_executor() -> None:
    flaky = Flaky(1, RateLimited("slow down"))
    executor = DagExecutor(sleep=recording_sleep([]))

    report = await executor.run([Task(id="a", fn=flaky, retry=RetryPolicy(attempts=2, jitter=0.0))])

    assert report["a"].status is TaskStatus.DONE
    assert report["a"].attempts == 2


async def test_retrying_event_names_attempt() -> None:
    bus = EventBus()
    seen: list[tuple[int, str]] = []
    bus.subscribe(
        "task.retrying", lambda e: seen.append((e.data["attempt"], type(e.data["error"]).__name__))
    )
    executor = DagExecutor(
        events=bus, retry=RetryPolicy(attempts=3, jitter=0.0), sleep=recording_sleep([])
    )

    await executor.run([Task(id="a", fn=Flaky(2, TimeoutError()))])

    assert seen == [(1, "TimeoutError"), (2, "TimeoutError")]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionError(), True),
        (TimeoutError(), True),
        (RateLimited(), True),
        (ValueError(), False),
        (KeyError("x"), False),
    ],
)
def test_is_transient(error: BaseException, expected: bool) -> None:
    assert is_transient(error) is expected


def test_retry_policy_validated() -> None:
    with pytest.raises(UsageError, match="attempts must be at least 1, got 0"):
        RetryPolicy(attempts=0)


# -- dispatch strategies -------------------------------------------------------------


def ordered_tasks(log: list[str]) -> list[Task]:
    async def note(name: str) -> None:
        log.append(name)

    # "deep" heads a chain (high rank), "urgent" has high priority, "first" is added first.
    return [
        Task(id="first", fn=note, args=("first",), cost=1.0),
        Task(id="deep", fn=note, args=("deep",), cost=1.0),
        Task(id="deep-2", fn=note, args=("deep-2",), cost=5.0, dependencies={"deep"}),
        Task(id="urgent", fn=note, args=("urgent",), priority=1, cost=1.0),
    ]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy.CRITICAL_PATH, ["urgent", "deep", "deep-2", "first"]),
        ("priority", ["urgent", "first", "deep", "deep-2"]),
        ("fifo", ["first", "deep", "urgent", "deep-2"]),
        (lambda priority, rank: rank, ["first", "urgent", "deep", "deep-2"]),
    ],
)
async def test_strategy_orders_ready_queue(strategy: object, expected: list[str]) -> None:
    log: list[str] = []

    await DagExecutor(max_workers=1, strategy=strategy).run(ordered_tasks(log))

    assert log == expected


def test_unknown_strategy_rejected() -> None:
    with pytest.raises(UsageError, match="unknown dispatch strategy 'random'"):
        DagExecutor(strategy="random")
