"""Property-based checks of the executor on random graphs, failures and pool sizes."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dragonscale_lc._errors import UsageError
from dragonscale_lc.runtime import (
    DagExecutor,
    ErrorObservation,
    EventBus,
    FailurePolicy,
    Ref,
    RunReport,
    Task,
    TaskGraph,
    TaskStatus,
)

GUARD = 10.0
"""Seconds after which a run counts as hung; a correct run takes milliseconds."""

TERMINAL_TOPICS = ("task.completed", "task.failed", "task.cancelled", "task.skipped")


@dataclass(frozen=True)
class Case:
    """A random graph: task i depends on ``deps[i]``, all of them earlier tasks.

    A streamed case adds task i to an open run and then yields to the event
    loop ``pauses[i]`` times, so tasks arrive before, while and after their
    dependencies settle.
    """

    deps: tuple[frozenset[int], ...]
    failing: frozenset[int]
    sync: frozenset[int]
    max_workers: int
    policy: FailurePolicy
    streamed: bool
    pauses: tuple[int, ...]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 12))
    deps = tuple(
        frozenset(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else frozenset()
        for i in range(n)
    )
    return Case(
        deps=deps,
        failing=draw(st.frozensets(st.integers(0, n - 1), max_size=3)),
        sync=draw(st.frozensets(st.integers(0, n - 1), max_size=3)),
        max_workers=draw(st.integers(1, 4)),
        policy=draw(st.sampled_from(FailurePolicy)),
        streamed=draw(st.booleans()),
        pauses=tuple(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))),
    )


def combine(i: int, inputs: tuple[Any, ...]) -> int:
    # Error observations count 1000 each, so a wrong input changes the output.
    return i + sum(1000 if isinstance(x, ErrorObservation) else x for x in inputs)


@dataclass
class Probe:
    """Calls per task and peak concurrency, as seen from inside the task functions."""

    case: Case
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: Counter[int] = field(default_factory=Counter)
    active: int = 0
    peak: int = 0

    def enter(self, i: int) -> None:
        with self.lock:
            self.calls[i] += 1
            self.active += 1
            self.peak = max(self.peak, self.active)

    def leave(self, i: int, inputs: tuple[Any, ...]) -> int:
        with self.lock:
            self.active -= 1
        if i in self.case.failing:
            raise ValueError(f"task {i} fails on purpose")
        return combine(i, inputs)

    async def run_async(self, i: int, *inputs: Any) -> int:
        self.enter(i)
        await asyncio.sleep(0)
        return self.leave(i, inputs)

    def run_sync(self, i: int, *inputs: Any) -> int:
        self.enter(i)
        return self.leave(i, inputs)

    def tasks(self) -> list[Task]:
        return [
            Task(
                id=i,
                fn=self.run_sync if i in self.case.sync else self.run_async,
                args=(i, *(Ref(d) for d in sorted(deps))),
            )
            for i, deps in enumerate(self.case.deps)
        ]


@dataclass
class Outcome:
    report: RunReport
    terminal_events: Counter[Any]
    leftover_tasks: int


async def execute(case: Case, probe: Probe) -> Outcome:
    bus = EventBus()
    terminal_events: Counter[Any] = Counter()
    for topic in TERMINAL_TOPICS:
        bus.subscribe(topic, lambda e: terminal_events.update([e.data["task_id"]]))
    ticks = itertools.count()
    executor = DagExecutor(
        max_workers=case.max_workers,
        failure_policy=case.policy,
        events=bus,
        clock=lambda: next(ticks),
    )
    if case.streamed:
        report = await asyncio.wait_for(stream(executor, probe.tasks(), case.pauses), GUARD)
    else:
        report = await asyncio.wait_for(executor.run(probe.tasks()), GUARD)
    leftover = len(asyncio.all_tasks() - {asyncio.current_task()})
    return Outcome(report, terminal_events, leftover)


async def stream(executor: DagExecutor, tasks: list[Task], pauses: tuple[int, ...]) -> RunReport:
    async with executor.open() as run:
        for task, pause in zip(tasks, pauses, strict=True):
            try:
                run.add(task)
            except UsageError:
                break  # a fail-fast run closes itself after the first failure
            for _ in range(pause):
                await asyncio.sleep(0)
        return await run.wait()


def reference(case: Case) -> tuple[dict[int, TaskStatus], dict[int, int]]:
    """Evaluate the graph one task at a time, treating fail-fast like continue."""
    status: dict[int, TaskStatus] = {}
    output: dict[int, int] = {}
    for i, deps in enumerate(case.deps):
        upstream_failed = any(status[d] is not TaskStatus.DONE for d in deps)
        if case.policy is FailurePolicy.SKIP_DEPENDENTS and upstream_failed:
            status[i] = TaskStatus.SKIPPED
        elif i in case.failing:
            status[i] = TaskStatus.FAILED
        else:
            inputs = tuple(
                output[d] if status[d] is TaskStatus.DONE else ErrorObservation(d, ValueError())
                for d in sorted(deps)
            )
            output[i] = combine(i, inputs)
            status[i] = TaskStatus.DONE
    return status, output


def run_case(case: Case) -> tuple[Outcome, Probe]:
    probe = Probe(case)
    # asyncio.run joins the worker threads, so the probe is final afterwards.
    outcome = asyncio.run(execute(case, probe))
    return outcome, probe


@settings(max_examples=100, deadline=None)
@given(cases())
def test_executor_invariants(case: Case) -> None:
    outcome, probe = run_case(case)
    report = outcome.report
    ref_status, ref_output = reference(case)
    status = {r.id: r.status for r in report}
    started = {r.id for r in report if r.start is not None}

    assert all(s.is_terminal for s in status.values())
    assert outcome.terminal_events == Counter(list(status))
    assert outcome.leftover_tasks == 0
    assert probe.peak <= case.max_workers
    assert set(probe.calls.values()) <= {1}
    assert set(probe.calls) <= started
    assert [
        (r.id, d)
        for r in report
        if r.start is not None
        for d in r.dependencies
        if report[d].end is None or report[d].end >= r.start
    ] == []
    assert {r.id: r.output for r in report if r.status is TaskStatus.DONE} == {
        i: ref_output[i] for i, s in status.items() if s is TaskStatus.DONE
    }
    if case.policy is FailurePolicy.FAIL_FAST:
        check_fail_fast(case, report, status)
    else:
        assert status == ref_status


def check_fail_fast(case: Case, report: RunReport, status: dict[Any, TaskStatus]) -> None:
    failed = {i for i, s in status.items() if s is TaskStatus.FAILED}
    if not case.failing:
        assert set(status.values()) == {TaskStatus.DONE}
        return
    assert failed
    assert failed <= case.failing
    assert TaskStatus.SKIPPED not in status.values()
    assert [
        (r.id, d)
        for r in report
        if r.status is TaskStatus.DONE
        for d in r.dependencies
        if status[d] is not TaskStatus.DONE
    ] == []


@settings(max_examples=50, deadline=None)
@given(cases())
def test_topological_order_respects_dependencies(case: Case) -> None:
    graph = TaskGraph(Task(id=i, fn=print, dependencies=deps) for i, deps in enumerate(case.deps))
    position = {tid: n for n, tid in enumerate(graph.topological_order())}

    assert len(position) == len(case.deps)
    assert all(position[d] < position[i] for i, deps in enumerate(case.deps) for d in deps)
