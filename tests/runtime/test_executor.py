"""DagExecutor and Run: dispatch, concurrency, ordering, failures, cancellation."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import re
import threading
from collections.abc import Hashable
from typing import Any

import pytest

from dragonscale_lc._errors import GraphError, TaskTimeoutError, UsageError
from dragonscale_lc.runtime import (
    DagExecutor,
    ErrorObservation,
    Event,
    EventBus,
    FailurePolicy,
    Ref,
    Task,
    TaskStatus,
)

GUARD = 10.0
"""Seconds after which a test gives up on something that should happen at once."""


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


def completion_event(bus: EventBus, task_id: Hashable) -> asyncio.Event:
    """Return an asyncio event that is set when ``bus`` reports ``task_id`` completed."""
    completed = asyncio.Event()

    def on_completed(event: Event) -> None:
        if event.data["task_id"] == task_id:
            completed.set()

    bus.subscribe("task.completed", on_completed)
    return completed


async def value(x: Any = None) -> Any:
    return x


async def add(*xs: int) -> int:
    return sum(xs)


# -- basics -----------------------------------------------------------------------


async def test_run_passes_outputs_along_refs() -> None:
    tasks = [
        Task(id=1, fn=value, args=(20,)),
        Task(id=2, fn=lambda x: x + 1, args=(Ref(1),)),
        Task(id=3, fn=add, args=(Ref(1), Ref(2))),
    ]

    report = await DagExecutor().run(tasks)

    assert report[3].output == 41


async def test_run_report_ok() -> None:
    report = await DagExecutor().run([Task(id=1, fn=value)])

    assert report.ok


async def test_report_times_from_injected_clock() -> None:
    ticks = itertools.count(100)
    executor = DagExecutor(clock=lambda: next(ticks))

    report = await executor.run(
        [Task(id="a", fn=value), Task(id="b", fn=value, dependencies={"a"})]
    )

    assert [(r.start, r.end) for r in report] == [(1, 2), (3, 4)]


async def test_report_makespan_from_injected_clock() -> None:
    ticks = itertools.count(100)
    executor = DagExecutor(clock=lambda: next(ticks))

    report = await executor.run(
        [Task(id="a", fn=value), Task(id="b", fn=value, dependencies={"a"})]
    )

    assert report.makespan == 5


async def test_report_mermaid() -> None:
    report = await DagExecutor().run([Task(id=1, fn=value), Task(id=2, fn=value, args=(Ref(1),))])

    assert report.to_mermaid().splitlines()[:4] == [
        "flowchart TD",
        '    t_1["1. value"]:::done',
        '    t_2["2. value"]:::done',
        "    t_1 --> t_2",
    ]


def test_max_workers_validated() -> None:
    with pytest.raises(UsageError, match=exact("max_workers must be at least 1, got 0")):
        DagExecutor(max_workers=0)


def test_default_timeout_validated() -> None:
    with pytest.raises(UsageError, match=exact("default_timeout must be positive seconds, got 0")):
        DagExecutor(default_timeout=0)


def test_failure_policy_validated() -> None:
    expected = "failure_policy must be one of continue, skip_dependents, fail_fast, got 'retry'"

    with pytest.raises(UsageError, match=exact(expected)):
        DagExecutor(failure_policy="retry")


def test_failure_policy_from_string() -> None:
    assert (
        DagExecutor(failure_policy="skip_dependents").failure_policy
        is FailurePolicy.SKIP_DEPENDENTS
    )


# -- dependency-driven dispatch ------------------------------------------------------


async def test_fast_branch_not_held_by_slow_sibling() -> None:
    bus = EventBus()
    gate = asyncio.Event()
    b_done = completion_event(bus, "b")

    async def slow() -> str:
        await gate.wait()
        return "slow"

    async with DagExecutor(events=bus).open() as run:
        run.add(Task(id="a", fn=value, args=(1,)))
        run.add(Task(id="c", fn=slow))
        run.add(Task(id="b", fn=add, args=(Ref("a"), 1)))
        await asyncio.wait_for(b_done.wait(), GUARD)
        c_status = run.report["c"].status
        gate.set()
        report = await run.wait()

    assert c_status is TaskStatus.RUNNING
    assert report["b"].output == 2
    assert report["c"].output == "slow"


async def test_dependent_waits_for_every_dependency() -> None:
    order: list[str] = []

    async def step(name: str, *_: object) -> str:
        order.append(name)
        await asyncio.sleep(0)
        return name

    tasks = [
        Task(id="x", fn=step, args=("x",)),
        Task(id="y", fn=step, args=("y",)),
        Task(id="z", fn=step, args=("z", Ref("x"), Ref("y"))),
    ]

    await DagExecutor().run(tasks)

    assert order[-1] == "z"


# -- bounded concurrency ----------------------------------------------------------------


async def test_max_workers_bounds_async_tasks() -> None:
    active = peak = 0

    async def work() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        for _ in range(3):
            await asyncio.sleep(0)
        active -= 1

    await DagExecutor(max_workers=2).run([Task(id=i, fn=work) for i in range(10)])

    assert peak == 2


async def test_max_workers_bounds_sync_tasks() -> None:
    lock = threading.Lock()
    # Two threads meet at the barrier, so a pool of two is filled every round;
    # a pool of one would break the barrier on timeout.
    barrier = threading.Barrier(2, timeout=GUARD)
    active = peak = 0

    def work() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        barrier.wait()
        with lock:
            active -= 1

    report = await DagExecutor(max_workers=2).run([Task(id=i, fn=work) for i in range(10)])

    assert report.ok
    assert peak == 2


# -- ready-queue order ------------------------------------------------------------------


async def test_ready_order_priority_then_rank_then_insertion() -> None:
    started: list[str] = []

    async def record(name: str) -> None:
        started.append(name)

    def make(name: str, priority: int, cost: float) -> Task:
        return Task(id=name, fn=record, args=(name,), priority=priority, cost=cost)

    tasks = [
        make("low-first", 0, 1),
        make("high-short", 5, 1),
        make("low-long", 0, 4),
        make("low-second", 0, 1),
        make("high-long", 5, 2),
    ]

    await DagExecutor(max_workers=1).run(tasks)

    assert started == ["high-long", "high-short", "low-long", "low-first", "low-second"]


async def test_ready_order_uses_rank_given_to_add() -> None:
    gate = asyncio.Event()
    started: list[str] = []

    async def record(name: str) -> None:
        started.append(name)

    async def blocker() -> None:
        await gate.wait()

    async with DagExecutor(max_workers=1).open() as run:
        run.add(Task(id="blocker", fn=blocker))
        run.add(Task(id="a", fn=record, args=("a",)), rank=1.0)
        run.add(Task(id="b", fn=record, args=("b",)), rank=3.0)
        run.add(Task(id="c", fn=record, args=("c",)), rank=2.0)
        gate.set()
        await run.wait()

    assert started == ["b", "c", "a"]


# -- where callables run ------------------------------------------------------------------

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID", default="unset")


async def test_sync_callable_runs_in_thread() -> None:
    report = await DagExecutor().run([Task(id=1, fn=threading.get_ident)])

    assert report[1].output != threading.get_ident()


async def test_sync_callable_worker_is_thread() -> None:
    report = await DagExecutor().run([Task(id=1, fn=threading.get_ident)])

    assert report[1].worker == "thread"


async def test_async_callable_runs_on_loop() -> None:
    async def ident() -> int:
        return threading.get_ident()

    report = await DagExecutor().run([Task(id=1, fn=ident)])

    assert report[1].output == threading.get_ident()
    assert report[1].worker == "event-loop"


async def test_sync_callable_sees_caller_context() -> None:
    REQUEST_ID.set("request-42")

    def read(*_: object) -> str:
        return REQUEST_ID.get()

    # Task 2 is dispatched from task 1's completion callback, not from the caller.
    tasks = [Task(id=1, fn=read), Task(id=2, fn=read, args=(Ref(1),))]
    report = await DagExecutor().run(tasks)

    assert [r.output for r in report] == ["request-42", "request-42"]


# -- failures -----------------------------------------------------------------------------


async def refuse(*_: object) -> None:
    raise ConnectionError("connection refused")


async def test_continue_gives_dependents_error_observation() -> None:
    tasks = [Task(id="a", fn=refuse), Task(id="b", fn=value, args=(Ref("a"),))]

    report = await DagExecutor(failure_policy="continue").run(tasks)

    assert isinstance(report["b"].output, ErrorObservation)
    assert report["b"].output == "ERROR in task a (refuse): ConnectionError: connection refused"
    assert report["b"].output.task_id == "a"


async def test_continue_records_failure() -> None:
    report = await DagExecutor().run(
        [Task(id="a", fn=refuse), Task(id="b", fn=value, dependencies={"a"})]
    )

    assert [r.status for r in report] == [TaskStatus.FAILED, TaskStatus.DONE]
    assert isinstance(report["a"].error, ConnectionError)
    assert not report.ok


async def test_skip_dependents_skips_transitively() -> None:
    called: list[str] = []

    async def mark(name: str, *_: object) -> str:
        called.append(name)
        return name

    tasks = [
        Task(id="a", fn=refuse),
        Task(id="b", fn=mark, args=("b", Ref("a"))),
        Task(id="c", fn=mark, args=("c", Ref("b"))),
        Task(id="d", fn=mark, args=("d",)),
        Task(id="e", fn=mark, args=("e", Ref("c"), Ref("d"))),
    ]

    report = await DagExecutor(failure_policy="skip_dependents").run(tasks)

    assert {r.id: r.status for r in report} == {
        "a": TaskStatus.FAILED,
        "b": TaskStatus.SKIPPED,
        "c": TaskStatus.SKIPPED,
        "d": TaskStatus.DONE,
        "e": TaskStatus.SKIPPED,
    }
    assert called == ["d"]


async def test_skip_dependents_streamed_task_with_two_failed_deps() -> None:
    bus = EventBus()
    skipped: list[Hashable] = []
    bus.subscribe("task.skipped", lambda event: skipped.append(event.data["task_id"]))
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "slow"

    async with DagExecutor(failure_policy="skip_dependents", events=bus).open() as run:
        run.add(Task(id="a", fn=refuse))
        run.add(Task(id="b", fn=refuse))
        await run.wait_idle()
        run.add(Task(id="slow", fn=slow))
        run.add(Task(id="c", fn=value, args=(Ref("a"), Ref("b"))))
        gate.set()
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert skipped == ["c"]
    assert report["slow"].status is TaskStatus.DONE


async def test_fail_fast_cancels_the_rest() -> None:
    gate = asyncio.Event()
    b_started = asyncio.Event()
    cancelled: list[str] = []

    async def hang() -> None:
        b_started.set()
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append("b")
            raise

    async def refuse_once_b_runs() -> None:
        await b_started.wait()
        await refuse()

    tasks = [
        Task(id="a", fn=refuse_once_b_runs, priority=1),
        Task(id="b", fn=hang, priority=1),
        Task(id="queued", fn=value),
        Task(id="after-a", fn=value, args=(Ref("a"),)),
        Task(id="after-b", fn=value, args=(Ref("b"),)),
    ]

    executor = DagExecutor(max_workers=2, failure_policy="fail_fast")
    report = await asyncio.wait_for(executor.run(tasks), GUARD)

    assert {r.id: r.status for r in report} == {
        "a": TaskStatus.FAILED,
        "b": TaskStatus.CANCELLED,
        "queued": TaskStatus.CANCELLED,
        "after-a": TaskStatus.CANCELLED,
        "after-b": TaskStatus.CANCELLED,
    }
    assert cancelled == ["b"]
    assert report["queued"].start is None


async def test_unbuildable_argument_fails_task() -> None:
    # A list output cannot be a dict key, so task 2's arguments cannot be built.
    tasks = [
        Task(id=1, fn=value, args=([1, 2],)),
        Task(id=2, fn=value, args=({Ref(1): "x"},)),
        Task(id=3, fn=value, args=(Ref(2),)),
    ]

    report = await asyncio.wait_for(DagExecutor().run(tasks), GUARD)

    assert isinstance(report[2].error, TypeError)
    assert report[3].status is TaskStatus.DONE


# -- timeouts ---------------------------------------------------------------------------------


async def never_returns() -> None:
    await asyncio.Event().wait()


async def test_timeout_fails_task() -> None:
    tasks = [Task(id="t", fn=never_returns, timeout=0.01), Task(id="s", fn=value, args=(1,))]

    report = await asyncio.wait_for(DagExecutor().run(tasks), GUARD)

    error = report["t"].error
    assert isinstance(error, TaskTimeoutError)
    assert str(error) == "task 't' (never_returns) timed out after 0.01 s"
    assert error.task_id == "t"
    assert error.tool == "never_returns"


async def test_timeout_spares_siblings() -> None:
    tasks = [Task(id="t", fn=never_returns, timeout=0.01), Task(id="s", fn=value, args=(1,))]

    report = await asyncio.wait_for(DagExecutor().run(tasks), GUARD)

    assert report["t"].status is TaskStatus.FAILED
    assert report["s"].status is TaskStatus.DONE


async def test_default_timeout_applies() -> None:
    executor = DagExecutor(default_timeout=0.01)

    report = await asyncio.wait_for(executor.run([Task(id=1, fn=never_returns)]), GUARD)

    assert str(report[1].error) == "task 1 (never_returns) timed out after 0.01 s"


async def test_tool_timeout_error_is_normal_failure() -> None:
    def upstream() -> None:
        raise TimeoutError("upstream API did not answer")

    report = await DagExecutor().run([Task(id=1, fn=upstream, timeout=GUARD)])

    assert type(report[1].error) is TimeoutError


# -- cancellation -------------------------------------------------------------------------------


class Hangs:
    """Async callables that wait forever and note when they start and get cancelled."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.all_started = asyncio.Event()
        self.started: list[int] = []
        self.cancelled: list[int] = []

    async def __call__(self, i: int) -> None:
        self.started.append(i)
        if len(self.started) == self.count:
            self.all_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(i)
            raise

    def tasks(self) -> list[Task]:
        return [Task(id=i, fn=self, args=(i,)) for i in range(self.count)]


async def test_cancelling_run_caller_cancels_tasks() -> None:
    before = asyncio.all_tasks()
    hangs = Hangs(3)
    tasks = [*hangs.tasks(), Task(id="after", fn=value, dependencies={0})]

    caller = asyncio.create_task(DagExecutor().run(tasks))
    await asyncio.wait_for(hangs.all_started.wait(), GUARD)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller

    assert sorted(hangs.cancelled) == [0, 1, 2]
    assert asyncio.all_tasks() == before


async def test_cancelling_wait_cancels_tasks() -> None:
    hangs = Hangs(3)

    async with DagExecutor().open() as run:
        before = asyncio.all_tasks()
        for task in hangs.tasks():
            run.add(task)
        run.add(Task(id="after", fn=value, dependencies={0}))
        waiter = asyncio.create_task(run.wait())
        await asyncio.wait_for(hangs.all_started.wait(), GUARD)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        # Still inside the block: the cancelled wait() did the cleanup itself.
        statuses = {r.status for r in run.report}
        leftover = asyncio.all_tasks() - before

    assert sorted(hangs.cancelled) == [0, 1, 2]
    assert statuses == {TaskStatus.CANCELLED}
    assert leftover == set()


async def test_leaving_block_cancels_unsettled_tasks() -> None:
    before = asyncio.all_tasks()

    async with DagExecutor().open() as run:
        run.add(Task(id=1, fn=never_returns))
        await asyncio.sleep(0)  # lets the task start before the block ends

    assert run.report[1].status is TaskStatus.CANCELLED
    assert asyncio.all_tasks() == before


async def test_finished_run_not_cancelled_by_block_exit() -> None:
    bus = EventBus()
    ends: list[str] = []
    bus.subscribe("run.*", lambda event: ends.append(event.topic))
    before = asyncio.all_tasks()

    async with DagExecutor(events=bus).open() as run:
        run.add(Task(id=1, fn=value))
        await run.wait()

    assert not run.cancelled
    assert ends == ["run.started", "run.completed"]
    assert asyncio.all_tasks() == before


# -- streamed tasks -----------------------------------------------------------------------------


async def test_add_while_running_starts_at_once() -> None:
    bus = EventBus()
    gate = asyncio.Event()
    late_done = completion_event(bus, "late")

    async def slow() -> None:
        await gate.wait()

    async with DagExecutor(events=bus).open() as run:
        run.add(Task(id="early", fn=value, args=(1,)))
        await run.wait_idle()
        run.add(Task(id="slow", fn=slow))
        run.add(Task(id="late", fn=add, args=(Ref("early"), 1)))
        late_status = run.report["late"].status
        await asyncio.wait_for(late_done.wait(), GUARD)
        slow_status = run.report["slow"].status
        gate.set()
        report = await run.wait()

    assert late_status is TaskStatus.RUNNING
    assert slow_status is TaskStatus.RUNNING
    assert report["late"].output == 2


async def test_add_waits_for_running_dependency() -> None:
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 5

    async with DagExecutor().open() as run:
        run.add(Task(id="slow", fn=slow))
        run.add(Task(id="next", fn=add, args=(Ref("slow"), 1)))
        status = run.report["next"].status
        gate.set()
        report = await run.wait()

    assert status is TaskStatus.PENDING
    assert report["next"].output == 6


async def test_add_after_failed_dependency_sees_error_observation() -> None:
    async with DagExecutor().open() as run:
        run.add(Task(id="a", fn=refuse))
        await run.wait_idle()
        run.add(Task(id="b", fn=value, args=(Ref("a"),)))
        report = await run.wait()

    assert isinstance(report["b"].output, ErrorObservation)


async def test_add_after_close_raises() -> None:
    async with DagExecutor().open() as run:
        run.close()

        with pytest.raises(UsageError, match=exact("cannot add task 5: the run is closed")):
            run.add(Task(id=5, fn=value))


async def test_add_after_wait_raises() -> None:
    async with DagExecutor().open() as run:
        await run.wait()

        with pytest.raises(UsageError, match=exact("cannot add task 'x': the run is closed")):
            run.add(Task(id="x", fn=value))


async def test_add_unknown_dependency_raises() -> None:
    async with DagExecutor().open() as run:
        with pytest.raises(GraphError, match="depends on unknown task 'missing'"):
            run.add(Task(id="x", fn=value, dependencies={"missing"}))


async def test_fail_fast_cancelled_tasks_name_the_failure() -> None:
    executor = DagExecutor(max_workers=1, failure_policy="fail_fast")

    report = await asyncio.wait_for(
        executor.run([Task(id="a", fn=refuse, priority=1), Task(id="b", fn=value)]), GUARD
    )

    assert str(report["b"].error).startswith("cancelled because task 'a' (refuse) failed")


async def test_fail_fast_task_added_later_is_cancelled() -> None:
    executor = DagExecutor(failure_policy="fail_fast")

    async with executor.open() as run:
        run.add(Task(id="a", fn=refuse))
        await run.wait_idle()
        run.add(Task(id="late", fn=value))
        report = await run.wait()

    assert report["late"].status is TaskStatus.CANCELLED
    assert report["late"].start is None


async def test_error_observation_names_root_failure() -> None:
    async def double(text: str) -> str:
        raise ValueError(f"cannot double {text[:5]!r}")

    tasks = [
        Task(id=1, fn=refuse),
        Task(id=2, fn=double, args=(Ref(1),)),
        Task(id=3, fn=value, args=(Ref(2),)),
    ]
    executor = DagExecutor()

    async with executor.open() as run:
        for task in tasks:
            run.add(task)
        await run.wait()
        observation = run.output(2)

    assert isinstance(observation, ErrorObservation)
    assert observation.cause is not None
    assert observation.cause.startswith("task 1 (refuse) ConnectionError")
    assert "its input came from a failed task: task 1 (refuse)" in observation


async def test_timed_out_sync_task_frees_its_worker() -> None:
    release = threading.Event()
    ran: list[str] = []

    def stuck() -> None:
        release.wait(GUARD)

    def quick(name: str) -> None:
        ran.append(name)

    tasks = [
        Task(id="stuck", fn=stuck, timeout=0.05, priority=1),
        Task(id="b", fn=quick, args=("b",), timeout=GUARD),
        Task(id="c", fn=quick, args=("c",), timeout=GUARD),
    ]
    try:
        report = await asyncio.wait_for(DagExecutor(max_workers=1).run(tasks), GUARD)
    finally:
        release.set()

    assert report["stuck"].status is TaskStatus.FAILED
    assert ran == ["b", "c"]


async def test_streamed_tasks_raise_ancestor_ranks() -> None:
    log: list[str] = []
    gate = asyncio.Event()

    async def note(name: str) -> None:
        log.append(name)

    async def blocker() -> None:
        await gate.wait()

    executor = DagExecutor(max_workers=1)
    async with executor.open() as run:
        run.add(Task(id="block", fn=blocker))
        run.add(Task(id="short", fn=note, args=("short",), cost=1.0))
        run.add(Task(id="long", fn=note, args=("long",), cost=1.0))
        # A costly follow-up makes "long" head the critical path while both
        # wait for the single worker.
        run.add(Task(id="tail", fn=note, args=("tail",), cost=10.0, dependencies={"long"}))
        gate.set()
        await asyncio.wait_for(run.wait(), GUARD)

    assert log == ["long", "tail", "short"]


async def test_report_gantt_chart(tmp_path) -> None:
    report = await DagExecutor().run([Task(id="a", fn=value), Task(id="b", fn=refuse)])

    figure = report.plot_gantt(str(tmp_path / "gantt.png"))

    assert (tmp_path / "gantt.png").stat().st_size > 0
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels == ["a value", "b refuse"]


async def test_backward_clock_does_not_break_run() -> None:
    readings = itertools.count(1000, -1)
    executor = DagExecutor(clock=lambda: next(readings))

    report = await executor.run([Task(id="a", fn=value), Task(id="b", fn=value, args=(Ref("a"),))])

    assert [record.status for record in report] == [TaskStatus.DONE, TaskStatus.DONE]
    assert executor.costs.average("value") is None


async def test_tasks_with_stated_cost_are_not_learned() -> None:
    executor = DagExecutor()

    await executor.run([Task(id="a", fn=value, cost=3.0), Task(id="b", fn=add, args=(1, 2))])

    assert executor.costs.average("value") is None
    assert executor.costs.average("add") is not None
