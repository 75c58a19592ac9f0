"""Run.add_edge and Run.drop: changing the graph of a run while it executes."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Hashable
from typing import Any

import pytest

from dragonscale_lc._errors import GraphError, UsageError
from dragonscale_lc.runtime import (
    Compaction,
    DagExecutor,
    ErrorObservation,
    Event,
    EventBus,
    FailurePolicy,
    Run,
    Task,
    TaskGraph,
    TaskStatus,
)

GUARD = 10.0
"""Seconds after which a test gives up on something that should happen at once."""


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


class Gates:
    """Async task functions that wait for the test to open their gate."""

    def __init__(self) -> None:
        self.started: dict[Hashable, asyncio.Event] = {}
        self.opened: dict[Hashable, asyncio.Event] = {}

    def task(self, task_id: Hashable, **kwargs: Any) -> Task:
        self.started[task_id] = asyncio.Event()
        self.opened[task_id] = asyncio.Event()

        async def wait_for_gate() -> Hashable:
            self.started[task_id].set()
            await self.opened[task_id].wait()
            return task_id

        return Task(id=task_id, fn=wait_for_gate, name="gated", **kwargs)

    async def wait_started(self, task_id: Hashable) -> None:
        await asyncio.wait_for(self.started[task_id].wait(), GUARD)

    def open(self, task_id: Hashable) -> None:
        self.opened[task_id].set()


async def value(x: Any = None) -> Any:
    return x


async def fail() -> None:
    raise ValueError("no data")


def settled_event(bus: EventBus, task_id: Hashable) -> asyncio.Event:
    """Return an asyncio event that is set when ``task_id`` settles, in any state."""
    settled = asyncio.Event()

    def on_settled(event: Event) -> None:
        if event.data["task_id"] == task_id:
            settled.set()

    for topic in ("task.completed", "task.failed", "task.skipped", "task.cancelled"):
        bus.subscribe(topic, on_settled)
    return settled


def ticking_executor(**kwargs: Any) -> DagExecutor:
    ticks = itertools.count()
    return DagExecutor(clock=lambda: next(ticks), **kwargs)


# -- add_edge ---------------------------------------------------------------------


async def test_edge_to_ready_task_waits_for_parent() -> None:
    gates = Gates()
    bus = EventBus()
    blocker_done = settled_event(bus, "blocker")
    executor = ticking_executor(max_workers=2, events=bus)

    async with executor.open() as run:
        run.add(gates.task("parent"))
        run.add(gates.task("blocker"))
        run.add(Task(id="child", fn=value, args=("child",)))
        await gates.wait_started("blocker")
        assert run.report["child"].status is TaskStatus.READY

        run.add_edge("parent", "child")
        assert run.report["child"].status is TaskStatus.PENDING
        gates.open("blocker")
        await asyncio.wait_for(blocker_done.wait(), GUARD)
        assert run.report["child"].status is TaskStatus.PENDING
        assert run.report["child"].start is None

        gates.open("parent")
        report = await asyncio.wait_for(run.wait(), GUARD)

    child, parent = report["child"], report["parent"]
    assert child.status is TaskStatus.DONE
    assert parent.end is not None
    assert child.start is not None
    assert child.start > parent.end
    assert child.dependencies == frozenset({"parent"})


async def test_edge_to_task_added_without_dispatch() -> None:
    order: list[str] = []
    executor = DagExecutor(max_workers=1)

    async with executor.open() as run:
        run.insert(Task(id="b", fn=lambda: order.append("b")))
        run.insert(Task(id="a", fn=lambda: order.append("a")))
        run.add_edge("a", "b")
        run.dispatch()
        await asyncio.wait_for(run.wait(), GUARD)

    assert order == ["a", "b"]


async def test_edge_from_done_parent_keeps_child_ready() -> None:
    gates = Gates()
    executor = DagExecutor(max_workers=1)

    async with executor.open() as run:
        run.add(Task(id="parent", fn=value))
        run.add(gates.task("blocker"))
        run.add(Task(id="child", fn=value, args=("child",)))
        await gates.wait_started("blocker")
        assert run.report["parent"].status is TaskStatus.DONE

        run.add_edge("parent", "child")
        assert run.report["child"].status is TaskStatus.READY
        gates.open("blocker")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report["child"].output == "child"


async def test_edge_raises_parent_rank() -> None:
    gates = Gates()
    started: list[Hashable] = []
    executor = DagExecutor(max_workers=1)
    executor.events.subscribe("task.started", lambda event: started.append(event.data["task_id"]))

    async with executor.open() as run:
        run.add(gates.task("blocker"))
        await gates.wait_started("blocker")
        run.add(Task(id="sibling", fn=value, cost=2.0))
        run.add(Task(id="parent", fn=value, cost=1.0))
        run.add(Task(id="child", fn=value, cost=5.0))
        run.add_edge("parent", "child")
        gates.open("blocker")
        await asyncio.wait_for(run.wait(), GUARD)

    # The edge puts parent on a path of 1 + 5 seconds, longer than sibling's 2,
    # and child now waits for parent.
    assert started == ["blocker", "parent", "child", "sibling"]


async def test_edge_to_running_task_rejected() -> None:
    gates = Gates()

    async with DagExecutor().open() as run:
        run.add(Task(id="parent", fn=value))
        run.add(gates.task("child"))
        await gates.wait_started("child")

        with pytest.raises(
            UsageError,
            match=exact(
                "cannot add edge 'parent' -> 'child': task 'child' has already started "
                "(status running); only a pending or ready task can get a new dependency"
            ),
        ):
            run.add_edge("parent", "child")
        gates.open("child")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report["child"].dependencies == frozenset()
    assert run.graph["child"].dependencies == frozenset()


async def test_edge_to_settled_task_rejected() -> None:
    async with DagExecutor().open() as run:
        run.add(Task(id="done", fn=value))
        run.add(Task(id="later", fn=value))
        await asyncio.wait_for(run.wait_idle(), GUARD)

        with pytest.raises(
            UsageError,
            match=exact(
                "cannot add edge 'later' -> 'done': task 'done' has already started "
                "(status done); only a pending or ready task can get a new dependency"
            ),
        ):
            run.add_edge("later", "done")


async def test_edge_to_preempted_task_rejected() -> None:
    gates = Gates()
    executor = DagExecutor(max_workers=1)

    async with executor.open() as run:
        run.add(gates.task("long", preemptible=True))
        await gates.wait_started("long")
        run.add(gates.task("urgent", priority=10))
        await gates.wait_started("urgent")
        run.add(Task(id="other", fn=value))

        with pytest.raises(
            UsageError,
            match=exact(
                "cannot add edge 'other' -> 'long': task 'long' has already started "
                "(status ready, pre-empted); only a pending or ready task can get a new dependency"
            ),
        ):
            run.add_edge("other", "long")
        gates.open("urgent")
        gates.open("long")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report["long"].preemptions == 1
    assert report["long"].status is TaskStatus.DONE


def start_after_failure(run: Run, gates: Gates) -> None:
    """Start a one-worker run in which 'failed' fails, then 'child' waits behind 'blocker'."""
    run.insert(Task(id="failed", fn=fail, name="fetch"))
    run.insert(gates.task("blocker"))
    run.insert(Task(id="child", fn=value, args=("child",)))
    run.dispatch()


async def test_edge_from_failed_parent_continue() -> None:
    gates = Gates()
    executor = DagExecutor(max_workers=1, failure_policy=FailurePolicy.CONTINUE)

    async with executor.open() as run:
        start_after_failure(run, gates)
        await gates.wait_started("blocker")
        assert run.report["failed"].status is TaskStatus.FAILED

        run.add_edge("failed", "child")
        gates.open("blocker")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report["child"].status is TaskStatus.DONE
    assert report["child"].dependencies == frozenset({"failed"})
    assert isinstance(run.output("failed"), ErrorObservation)


async def test_edge_from_failed_parent_skips_child() -> None:
    gates = Gates()
    executor = DagExecutor(max_workers=1, failure_policy=FailurePolicy.SKIP_DEPENDENTS)

    async with executor.open() as run:
        start_after_failure(run, gates)
        await gates.wait_started("blocker")

        run.add_edge("failed", "child")
        assert run.report["child"].status is TaskStatus.SKIPPED
        gates.open("blocker")
        report = await asyncio.wait_for(run.wait(), GUARD)

    child = report["child"]
    assert child.status is TaskStatus.SKIPPED
    assert child.start is None
    assert str(child.error) == "skipped because task failed (fetch) ValueError: no data"


async def test_edge_from_failed_parent_fail_fast() -> None:
    executor = DagExecutor(max_workers=1, failure_policy=FailurePolicy.FAIL_FAST)

    async with executor.open() as run:
        start_after_failure(run, Gates())
        report = await asyncio.wait_for(run.wait(), GUARD)

        # fail_fast cancelled the child when the parent failed.
        with pytest.raises(
            UsageError,
            match=exact(
                "cannot add edge 'failed' -> 'child': task 'child' has already settled "
                "(status cancelled); only a pending or ready task can get a new dependency"
            ),
        ):
            run.add_edge("failed", "child")

    assert report["child"].status is TaskStatus.CANCELLED


async def test_edge_closing_cycle_rejected() -> None:
    gates = Gates()

    async with DagExecutor().open() as run:
        run.add(gates.task("root"))
        run.add(Task(id="a", fn=value, dependencies={"root"}))
        run.add(Task(id="b", fn=value, dependencies={"a"}))
        run.add(Task(id="c", fn=value, dependencies={"b"}))
        version = run.graph.version

        with pytest.raises(
            GraphError,
            match=exact(
                "cannot add edge 'c' -> 'a': it would close the cycle 'c' -> 'a' -> 'b' -> 'c'"
            ),
        ):
            run.add_edge("c", "a")
        gates.open("root")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert run.graph.version == version
    assert report["a"].dependencies == frozenset({"root"})
    assert report.ok


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        (
            ("a", "ghost"),
            "cannot add edge 'a' -> 'ghost': unknown task 'ghost': add the task before the edge",
        ),
        (("a", "b"), "cannot add edge 'a' -> 'b': task 'b' already depends on 'a'"),
        (("b", "b"), "cannot add edge 'b' -> 'b': a task cannot depend on itself"),
    ],
)
async def test_edge_validated_by_graph(edge: tuple[str, str], message: str) -> None:
    gates = Gates()

    async with DagExecutor().open() as run:
        run.add(gates.task("a"))
        run.add(Task(id="b", fn=value, dependencies={"a"}))

        with pytest.raises(GraphError, match=exact(message)):
            run.add_edge(*edge)
        gates.open("a")
        await asyncio.wait_for(run.wait(), GUARD)


# -- drop ---------------------------------------------------------------------------


async def test_drop_pending_task() -> None:
    gates = Gates()
    calls: list[str] = []

    async with DagExecutor().open() as run:
        run.add(gates.task("parent"))
        run.add(Task(id="kept", fn=value, dependencies={"parent"}))
        run.add(Task(id="dropped", fn=calls.append, args=("ran",), dependencies={"parent"}))

        run.drop("dropped")
        gates.open("parent")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert list(report.records) == ["parent", "kept"]
    assert report.ok
    assert calls == []
    assert "dropped" not in run.graph
    assert run.graph.dependents("parent") == ("kept",)


async def test_drop_ready_task_waiting_for_slot() -> None:
    gates = Gates()

    async with DagExecutor(max_workers=1).open() as run:
        run.add(gates.task("blocker"))
        run.add(Task(id="ready", fn=value))
        await gates.wait_started("blocker")
        assert run.report["ready"].status is TaskStatus.READY

        run.drop("ready")
        gates.open("blocker")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert list(report.records) == ["blocker"]


async def test_drop_last_task_wakes_wait_idle() -> None:
    async with DagExecutor().open() as run:
        run.insert(Task(id="queued", fn=value))  # ready, not dispatched
        idle = asyncio.ensure_future(run.wait_idle())
        await asyncio.sleep(0)  # let wait_idle start waiting
        assert not idle.done()

        run.drop("queued")
        await asyncio.wait_for(idle, GUARD)
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert len(report) == 0


async def test_drop_started_task_rejected() -> None:
    gates = Gates()

    async with DagExecutor().open() as run:
        run.add(gates.task("running"))
        await gates.wait_started("running")

        with pytest.raises(
            UsageError,
            match=exact(
                "cannot drop task 'running': it has already started (status running); "
                "only tasks that have never run can be dropped"
            ),
        ):
            run.drop("running")
        gates.open("running")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report["running"].status is TaskStatus.DONE


async def test_drop_unknown_task_rejected() -> None:
    async with DagExecutor().open() as run:
        with pytest.raises(
            GraphError, match=exact("cannot drop task 'ghost': it is not in the graph")
        ):
            run.drop("ghost")


async def test_drop_task_with_dependents_needs_cascade() -> None:
    gates = Gates()

    async with DagExecutor().open() as run:
        run.add(gates.task("root"))
        run.add(Task(id="a", fn=value, dependencies={"root"}))
        run.add(Task(id="b", fn=value, dependencies={"a"}))

        with pytest.raises(GraphError, match="task 'b' depends on it"):
            run.drop("a")
        gates.open("root")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert list(report.records) == ["root", "a", "b"]


async def test_drop_cascade_removes_dependents() -> None:
    gates = Gates()

    async with DagExecutor().open() as run:
        run.add(gates.task("root"))
        run.add(Task(id="a", fn=value, dependencies={"root"}))
        run.add(Task(id="b", fn=value, dependencies={"a"}))
        run.add(Task(id="c", fn=value, dependencies={"b", "root"}))
        run.add(Task(id="other", fn=value, dependencies={"root"}))

        run.drop("a", cascade=True)
        gates.open("root")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert list(report.records) == ["root", "other"]
    assert report.ok
    assert set(run.graph.dependents("root")) == {"other"}


async def test_drop_cascade_rejected_when_task_ran() -> None:
    gates = Gates()

    async with DagExecutor().open() as run:
        run.add(gates.task("a"))
        run.add(Task(id="b", fn=value, dependencies={"a"}))
        await gates.wait_started("a")

        # 'a' has started, so it is named before its dependents are looked at.
        with pytest.raises(UsageError, match="it has already started"):
            run.drop("a", cascade=True)
        gates.open("a")
        await asyncio.wait_for(run.wait(), GUARD)

    assert list(run.report.records) == ["a", "b"]


async def test_drop_cascade_takes_skipped_dependent() -> None:
    gates = Gates()
    bus = EventBus()
    failed = settled_event(bus, "failed")
    executor = DagExecutor(failure_policy=FailurePolicy.SKIP_DEPENDENTS, events=bus)

    async with executor.open() as run:
        run.add(gates.task("root"))
        run.add(Task(id="pending", fn=value, dependencies={"root"}))
        run.add(Task(id="failed", fn=fail))
        await asyncio.wait_for(failed.wait(), GUARD)
        run.add(Task(id="skipped", fn=value, dependencies={"pending", "failed"}))
        assert run.report["skipped"].status is TaskStatus.SKIPPED

        run.drop("pending", cascade=True)
        gates.open("root")
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert list(report.records) == ["root", "failed"]


# -- events -------------------------------------------------------------------------


async def test_graph_updated_events() -> None:
    gates = Gates()
    bus = EventBus()
    updates: list[dict[str, Any]] = []
    bus.subscribe("graph.updated", lambda event: updates.append(event.data))

    async with DagExecutor(events=bus).open() as run:
        run.add(gates.task("a"))
        run.insert(Task(id="b", fn=value))  # ready, not dispatched
        run.insert(Task(id="c", fn=value, dependencies={"b"}))
        run.add_edge("a", "b")
        run.drop("b", cascade=True)
        gates.open("a")
        await asyncio.wait_for(run.wait(), GUARD)

    assert updates == [
        {"kind": "add_task", "ids": ("a",), "version": 1},
        {"kind": "add_task", "ids": ("b",), "version": 2},
        {"kind": "add_task", "ids": ("c",), "version": 3},
        {"kind": "add_edge", "ids": ("a", "b"), "version": 4},
        {"kind": "drop", "ids": ("b", "c"), "version": 5},
    ]


async def test_graph_compacted_event() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("graph.*", events.append)

    async with DagExecutor(events=bus).open() as run:
        run.add(Task(id="a", fn=value))
        run.add(Task(id="b", fn=value))
        run.graph.compact()
        await asyncio.wait_for(run.wait(), GUARD)

    assert [event.topic for event in events] == [
        "graph.updated",
        "graph.updated",
        "graph.compacted",
    ]
    assert events[-1].data == {
        "previous_base_version": 0,
        "base_version": 2,
        "deltas": 2,
        "tasks": 2,
    }


async def test_graph_compacted_when_log_fills() -> None:
    bus = EventBus()
    compactions: list[dict[str, Any]] = []
    bus.subscribe("graph.compacted", lambda event: compactions.append(event.data))

    async with DagExecutor(events=bus).open() as run:
        # Once the graph's log has 1024 deltas, the next change compacts it first.
        for task_id in range(1025):
            run.add(Task(id=task_id, fn=value))
        await asyncio.wait_for(run.wait(), GUARD)

    assert compactions == [
        {"previous_base_version": 0, "base_version": 1024, "deltas": 1024, "tasks": 1024}
    ]


async def test_executor_run_keeps_graph_hook() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("graph.*", events.append)
    summaries: list[Compaction] = []
    graph = TaskGraph([Task(id="a", fn=value)], on_compact=summaries.append)
    graph.add(Task(id="b", fn=value, dependencies={"a"}))

    report = await DagExecutor(events=bus).run(graph)
    graph.compact()

    assert report.ok
    assert events == []
    assert [summary.deltas for summary in summaries] == [1]


@pytest.fixture
def counted_events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the topic of every event a run builds."""
    topics: list[str] = []

    def build_event(topic: str, *args: Any) -> Event:
        topics.append(topic)
        return Event(topic, *args)

    monkeypatch.setattr("dragonscale_lc.runtime._run.Event", build_event)
    return topics


async def changes_without_graph_subscriber(bus: EventBus) -> None:
    gates = Gates()
    async with DagExecutor(events=bus).open() as run:
        run.add(gates.task("a"))
        run.insert(Task(id="b", fn=value))  # ready, not dispatched
        run.insert(Task(id="c", fn=value, dependencies={"b"}))
        run.add_edge("a", "b")
        run.drop("c")
        run.graph.compact()
        gates.open("a")
        await asyncio.wait_for(run.wait(), GUARD)


async def test_no_graph_events_built_for_other_topics(
    counted_events: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    payloads: list[object] = []
    monkeypatch.setattr("dragonscale_lc.runtime._run_changes._delta_data", payloads.append)
    bus = EventBus()
    completed: list[Event] = []
    bus.subscribe("task.completed", completed.append)

    await changes_without_graph_subscriber(bus)

    assert set(counted_events) == {"task.completed"}
    assert len(completed) == 2
    assert payloads == []


async def test_no_events_built_without_subscribers(counted_events: list[str]) -> None:
    await changes_without_graph_subscriber(EventBus())

    assert counted_events == []
