"""The worker's path for plain tasks gives the same runs as the general path.

A plain task (async, no references, no timeout, no retry policy, not
preemptible) in a run without a pool, executor-wide retries or timeout, or
event subscribers is awaited and settled by the worker itself. A subscriber on
the bus sends every task through ``Run._execute`` instead, which is how these
tests run the general path on the same graph.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dragonscale_lc.runtime import (
    DagExecutor,
    EventBus,
    FailurePolicy,
    Ref,
    RetryPolicy,
    RunReport,
    Task,
    TaskStatus,
)
from dragonscale_lc.runtime._report import TaskRecord
from dragonscale_lc.runtime._run import Run, new_node
from dragonscale_lc.runtime._strategy import _KEYS, Strategy, entry_maker

GUARD = 10.0
"""Seconds after which a run counts as hung; a correct run takes milliseconds."""


async def value(x: Any = None) -> Any:
    return x


def sync_value(x: Any = None) -> Any:
    return x


# -- which tasks are plain ------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "plain"),
    [
        (Task(id="a", fn=value, args=(1,)), True),
        (Task(id="a", fn=value, kwargs={"x": 1}, priority=3, cost=2.0), True),
        (Task(id="a", fn=sync_value), False),
        (Task(id="a", fn=value, args=(Ref("b"),)), False),
        (Task(id="a", fn=value, timeout=1.0), False),
        (Task(id="a", fn=value, retry=RetryPolicy(attempts=2)), False),
        (Task(id="a", fn=value, preemptible=True), False),
    ],
)
def test_node_plain_flag(task: Task, plain: bool) -> None:
    node = new_node(task, 1.0, 0, task.fn is value)

    assert node.plain is plain


# -- ready-queue entries ----------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(-2, 2), st.sampled_from([0.0, 0.5, 1.0, 2.5]))))
def test_entries_sort_like_nested_keys(ready: list[tuple[int, float]]) -> None:
    for strategy in Strategy:
        key = _KEYS[strategy]
        make_entry = entry_maker(key)
        entries = [make_entry(p, r, seq, seq) for seq, (p, r) in enumerate(ready)]
        nested = [(key(p, r), seq, seq) for seq, (p, r) in enumerate(ready)]

        assert [e[-1] for e in sorted(entries)] == [e[-1] for e in sorted(nested)]


def test_custom_key_entry_nests_the_key() -> None:
    make_entry = entry_maker(lambda priority, rank: -rank)

    assert make_entry(1, 2.0, 7, "node") == (-2.0, 7, "node")


# -- the same runs on both paths ---------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A random graph of async tasks: task i depends on ``deps[i]``, all earlier tasks."""

    deps: tuple[frozenset[int], ...]
    failing: frozenset[int]
    yielding: frozenset[int]
    priorities: tuple[int, ...]
    with_kwargs: frozenset[int]
    max_workers: int
    policy: FailurePolicy
    strategy: Strategy


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 12))
    ids = st.integers(0, n - 1)
    return Case(
        deps=tuple(
            frozenset(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else frozenset()
            for i in range(n)
        ),
        failing=draw(st.frozensets(ids, max_size=3)),
        yielding=draw(st.frozensets(ids, max_size=6)),
        priorities=tuple(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))),
        with_kwargs=draw(st.frozensets(ids, max_size=3)),
        max_workers=draw(st.integers(1, 4)),
        policy=draw(st.sampled_from(FailurePolicy)),
        strategy=draw(st.sampled_from(Strategy)),
    )


@dataclass
class Trace:
    """What one run of a case did: call order, general-path calls, report and events."""

    calls: list[int]
    general: list[Hashable]
    report: RunReport
    events: list[tuple[str, Any]]


def tasks_of(case: Case, calls: list[int]) -> list[Task]:
    async def work(i: int, *, offset: int = 0) -> int:
        calls.append(i)
        if i in case.yielding:
            await asyncio.sleep(0)  # lets other workers run, so runs interleave
        if i in case.failing:
            raise ValueError(f"task {i} fails on purpose")
        return i + offset

    return [
        Task(
            id=i,
            fn=work,
            args=(i,),
            kwargs={"offset": 100} if i in case.with_kwargs else {},
            dependencies=deps,
            priority=case.priorities[i],
        )
        for i, deps in enumerate(case.deps)
    ]


async def trace(case: Case, *, subscribed: bool) -> Trace:
    calls: list[int] = []
    general: list[Hashable] = []
    events: list[tuple[str, Any]] = []
    bus = EventBus()
    if subscribed:
        bus.subscribe("task.*", lambda event: events.append((event.topic, event.data["task_id"])))
    ticks = itertools.count()
    executor = DagExecutor(
        max_workers=case.max_workers,
        failure_policy=case.policy,
        strategy=case.strategy,
        events=bus,
        clock=lambda: next(ticks),
    )
    execute = Run._execute

    async def counted_execute(run: Run, node: TaskRecord) -> None:
        general.append(node.task.id)
        await execute(run, node)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Run, "_execute", counted_execute)
        report = await asyncio.wait_for(executor.run(tasks_of(case, calls)), GUARD)
    return Trace(calls, general, report, events)


def record_facts(record: TaskRecord) -> tuple[Any, ...]:
    # Times differ between the paths, since the general one also stamps each
    # event with the clock. Whether a task started and ended does not.
    error = None if record.error is None else (type(record.error), str(record.error))
    return (
        record.id,
        record.status,
        record.output,
        error,
        record.attempts,
        record.preemptions,
        record.worker,
        record.start is None,
        record.end is None,
        record.args,
        record.kwargs,
    )


@settings(max_examples=100, deadline=None)
@given(cases())
def test_plain_and_general_paths_agree(case: Case) -> None:
    plain = asyncio.run(trace(case, subscribed=False))
    general = asyncio.run(trace(case, subscribed=True))

    assert plain.general == []
    assert Counter(general.general) == Counter(general.calls)
    assert plain.calls == general.calls
    assert [record_facts(r) for r in plain.report] == [record_facts(r) for r in general.report]


@settings(max_examples=50, deadline=None)
@given(cases())
def test_entry_tasks_announced_in_queue_order(case: Case) -> None:
    general = asyncio.run(trace(case, subscribed=True))
    entry_ids = [r.id for r in general.report if not r.dependencies]

    announced = [task_id for topic, task_id in general.events if topic == "task.ready"]

    assert announced[: len(entry_ids)] == entry_ids


# -- settling, cancelling and learning on the plain path -------------------------------------


async def cancelled_run(*, subscribed: bool) -> tuple[RunReport, list[str]]:
    bus = EventBus()
    if subscribed:
        bus.subscribe("task.*", lambda event: None)
    started = asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    executor = DagExecutor(events=bus)
    async with executor.open() as run:
        run.add(Task(id="slow", fn=wait_forever))
        run.add(Task(id="done", fn=value, args=(1,)))
        run.add(Task(id="after", fn=value, dependencies=frozenset({"slow"})))
        await asyncio.wait_for(started.wait(), GUARD)
        await run.cancel()
    leftover = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    return run.report, leftover


async def test_cancelled_plain_task_matches_general() -> None:
    plain, plain_leftover = await cancelled_run(subscribed=False)
    general, general_leftover = await cancelled_run(subscribed=True)

    assert [record_facts(r) for r in plain] == [record_facts(r) for r in general]
    assert plain["slow"].status is TaskStatus.CANCELLED
    assert plain["after"].status is TaskStatus.CANCELLED
    assert plain_leftover == []
    assert general_leftover == []


async def test_late_subscriber_sees_completion() -> None:
    bus = EventBus()
    seen: list[tuple[str, Any]] = []

    async def subscribe() -> str:
        bus.subscribe("task.*", lambda event: seen.append((event.topic, event.data["task_id"])))
        return "subscribed"

    tasks = [Task(id="a", fn=subscribe), Task(id="b", fn=value, dependencies=frozenset({"a"}))]
    report = await DagExecutor(events=bus).run(tasks)

    assert report.ok
    assert seen == [
        ("task.completed", "a"),
        ("task.ready", "b"),
        ("task.started", "b"),
        ("task.completed", "b"),
    ]


async def test_plain_task_duration_is_learned() -> None:
    ticks = itertools.count()
    executor = DagExecutor(clock=lambda: next(ticks))

    report = await executor.run([Task(id="a", fn=value, name="tool")])

    assert report["a"].duration == 1
    assert executor.costs.average("tool") == 1


async def test_stated_cost_not_learned() -> None:
    ticks = itertools.count()
    executor = DagExecutor(clock=lambda: next(ticks))

    await executor.run([Task(id="a", fn=value, name="tool", cost=5.0)])

    assert executor.costs.average("tool") is None


async def test_failed_plain_task_fails_fast() -> None:
    async def fail() -> None:
        raise ValueError("broken")

    executor = DagExecutor(max_workers=1, failure_policy="fail_fast")
    tasks = [Task(id="a", fn=fail), Task(id="b", fn=value)]

    report = await executor.run(tasks)

    assert report["a"].status is TaskStatus.FAILED
    assert str(report["a"].error) == "broken"
    assert report["b"].status is TaskStatus.CANCELLED
    expected = "cancelled because task 'a' (fail) failed: ValueError('broken')"
    assert str(report["b"].error) == expected
