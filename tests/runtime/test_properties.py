"""Property-based checks of the executor on random graphs, failures, pool sizes and pre-emption."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
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
    checkpoint,
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


# -- pre-emption ------------------------------------------------------------------------


@dataclass(frozen=True)
class Urgent:
    """A task added to the open run after ``pause`` more loop turns."""

    pause: int
    deps: frozenset[int]
    priority: int


@dataclass(frozen=True)
class PreemptionCase:
    """A random graph with priorities, preemptible tasks and urgent arrivals.

    Task i depends on ``deps[i]`` (earlier tasks), has priority
    ``priorities[i]`` and yields to the event loop ``steps[i]`` times, each
    time after ``await checkpoint()`` if it is in ``checkpointing``. Every task
    is added at once; then the urgent tasks arrive one by one.
    """

    deps: tuple[frozenset[int], ...]
    priorities: tuple[int, ...]
    preemptible: frozenset[int]
    checkpointing: frozenset[int]
    steps: tuple[int, ...]
    failing: frozenset[int]
    policy: FailurePolicy
    max_workers: int
    urgent: tuple[Urgent, ...]


@st.composite
def preemption_cases(draw: st.DrawFn) -> PreemptionCase:
    n = draw(st.integers(1, 10))
    ids = st.integers(0, n - 1)
    deps = tuple(
        frozenset(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else frozenset()
        for i in range(n)
    )
    urgent = draw(
        st.lists(
            st.builds(
                Urgent,
                pause=st.integers(0, 4),
                deps=st.frozensets(ids, max_size=2),
                priority=st.integers(2, 8),
            ),
            max_size=4,
        )
    )
    return PreemptionCase(
        deps=deps,
        priorities=tuple(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))),
        # Mostly preemptible, so that urgent work often finds a victim.
        preemptible=frozenset(range(n)) - draw(st.frozensets(ids, max_size=n // 3)),
        checkpointing=draw(st.frozensets(ids)),
        steps=tuple(draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))),
        failing=draw(st.frozensets(ids, max_size=2)),
        policy=draw(st.sampled_from(FailurePolicy)),
        max_workers=draw(st.integers(1, 3)),
        urgent=tuple(urgent),
    )


@dataclass
class OrderProbe:
    """Event order and concurrency as seen from inside the task functions.

    ``entries[i]`` holds the tick of every call of task i, and ``returns[i]``
    the tick at which a call reached its end. A task paused at a checkpoint
    has no worker slot, so it does not count as active while paused.
    """

    case: PreemptionCase
    ticks: Iterator[int] = field(default_factory=itertools.count)
    entries: defaultdict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    returns: dict[int, int] = field(default_factory=dict)
    active: int = 0
    peak: int = 0

    def count_in(self) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)

    async def call(self, i: int, steps: int, cooperates: bool, *inputs: Any) -> int:
        self.entries[i].append(next(self.ticks))
        self.count_in()
        try:
            for _ in range(steps):
                if cooperates:
                    self.active -= 1
                    try:
                        await checkpoint()
                    finally:
                        self.count_in()
                await asyncio.sleep(0)
        finally:
            self.active -= 1
        self.returns[i] = next(self.ticks)
        if i in self.case.failing:
            raise ValueError(f"task {i} fails on purpose")
        return combine(i, inputs)

    def tasks(self) -> list[Task]:
        case = self.case
        return [
            Task(
                id=i,
                fn=self.call,
                args=(i, case.steps[i], i in case.checkpointing, *(Ref(d) for d in sorted(deps))),
                priority=case.priorities[i],
                preemptible=i in case.preemptible,
            )
            for i, deps in enumerate(case.deps)
        ]

    def urgent_tasks(self) -> list[Task]:
        first = len(self.case.deps)
        return [
            Task(
                id=first + j,
                fn=self.call,
                args=(first + j, 1, False, *(Ref(d) for d in sorted(urgent.deps))),
                priority=urgent.priority,
            )
            for j, urgent in enumerate(self.case.urgent)
        ]


@dataclass
class PreemptionOutcome:
    report: RunReport
    cancelled: bool
    terminal_events: Counter[Any]
    leftover_tasks: int


async def execute_preemption(case: PreemptionCase, probe: OrderProbe) -> PreemptionOutcome:
    bus = EventBus()
    terminal_events: Counter[Any] = Counter()
    for topic in TERMINAL_TOPICS:
        bus.subscribe(topic, lambda e: terminal_events.update([e.data["task_id"]]))
    clock = itertools.count()
    executor = DagExecutor(
        max_workers=case.max_workers,
        failure_policy=case.policy,
        events=bus,
        clock=lambda: next(clock),
    )
    main = asyncio.current_task()

    async def scenario() -> tuple[RunReport, bool, int]:
        async with executor.open() as run:
            for task in probe.tasks():
                run.add(task)
            for urgent, task in zip(case.urgent, probe.urgent_tasks(), strict=True):
                for _ in range(urgent.pause):
                    await asyncio.sleep(0)
                run.add(task)
            report = await run.wait()
            cancelled = run.cancelled
        leftover = len(asyncio.all_tasks() - {main, asyncio.current_task()})
        return report, cancelled, leftover

    report, cancelled, leftover = await asyncio.wait_for(scenario(), GUARD)
    return PreemptionOutcome(report, cancelled, terminal_events, leftover)


@settings(max_examples=80, deadline=None)
@given(preemption_cases())
def test_preemption_invariants(case: PreemptionCase) -> None:
    probe = OrderProbe(case)
    outcome = asyncio.run(execute_preemption(case, probe))
    report = outcome.report
    status = {r.id: r.status for r in report}

    assert len(report) == len(case.deps) + len(case.urgent)
    assert all(s.is_terminal for s in status.values())
    assert outcome.terminal_events == Counter(list(status))
    assert outcome.leftover_tasks == 0
    assert probe.peak <= case.max_workers
    # Every call, restarted ones included, begins after each dependency's call
    # has ended; on the executor's clock, the final attempt starts after each
    # dependency's end.
    assert [
        (i, d)
        for i, ticks in probe.entries.items()
        for d in report[i].dependencies
        if d not in probe.returns or probe.returns[d] > min(ticks)
    ] == []
    assert [
        (r.id, d)
        for r in report
        if r.start is not None
        for d in r.dependencies
        if report[d].end is None or report[d].end >= r.start
    ] == []
    for r in report:
        assert len(probe.entries[r.id]) <= 1 + r.preemptions
        assert r.preemptions <= 3
        if r.preemptions and not outcome.cancelled:
            assert r.id in probe.returns
            assert r.status is (TaskStatus.FAILED if r.id in case.failing else TaskStatus.DONE)
    if case.policy is not FailurePolicy.FAIL_FAST:
        ref_status, ref_output = reference(
            Case(case.deps, case.failing, frozenset(), case.max_workers, case.policy, True, ())
        )
        assert {i: status[i] for i in ref_status} == ref_status
        assert {i: report[i].output for i in ref_output} == ref_output
