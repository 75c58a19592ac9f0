"""Pre-emption: urgent work takes the slot of less urgent preemptible work."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dragonscale_lc import UsageError
from dragonscale_lc.runtime import (
    DagExecutor,
    EventBus,
    Task,
    TaskStatus,
    checkpoint,
    current_checkpoint,
)

GUARD = 10.0
"""Seconds after which a test gives up on something that should happen at once."""


class Gate:
    """Counts starts of a long task and lets the test release it."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.release = asyncio.Event()
        self.first_start = asyncio.Event()

    async def long(self) -> str:
        self.started += 1
        self.first_start.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return "long done"


async def urgent() -> str:
    return "urgent done"


async def run_with_urgent_arrival(executor: DagExecutor, long: Task, gate: Gate) -> dict:
    order: list[str] = []
    executor.events.subscribe("task.completed", lambda event: order.append(event.data["task_id"]))
    async with executor.open() as run:
        run.add(long)
        await asyncio.wait_for(gate.first_start.wait(), GUARD)
        run.add(Task(id="urgent", fn=urgent, priority=10))
        await asyncio.sleep(0)
        gate.release.set()
        report = await asyncio.wait_for(run.wait(), GUARD)
    return {"report": report, "order": order}


async def test_urgent_task_preempts_and_victim_reruns() -> None:
    gate = Gate()
    executor = DagExecutor(max_workers=1)

    result = await run_with_urgent_arrival(
        executor, Task(id="long", fn=gate.long, preemptible=True), gate
    )

    report = result["report"]
    assert result["order"] == ["urgent", "long"]
    assert gate.cancelled == 1
    assert gate.started == 2
    assert report["long"].status is TaskStatus.DONE
    assert report["long"].preemptions == 1
    assert report["long"].attempts == 1


async def test_non_preemptible_task_keeps_its_slot() -> None:
    gate = Gate()

    result = await run_with_urgent_arrival(
        DagExecutor(max_workers=1), Task(id="long", fn=gate.long), gate
    )

    assert result["order"] == ["long", "urgent"]
    assert gate.cancelled == 0


async def test_non_idempotent_task_is_not_restarted() -> None:
    gate = Gate()
    task = Task(id="long", fn=gate.long, preemptible=True, idempotent=False)

    result = await run_with_urgent_arrival(DagExecutor(max_workers=1), task, gate)

    assert result["order"] == ["long", "urgent"]
    assert gate.started == 1


async def test_equal_priority_does_not_preempt() -> None:
    gate = Gate()
    bus = EventBus()
    preempted: list[object] = []
    bus.subscribe("task.preempted", preempted.append)
    executor = DagExecutor(max_workers=1, events=bus)

    async with executor.open() as run:
        run.add(Task(id="long", fn=gate.long, preemptible=True, priority=3))
        await asyncio.wait_for(gate.first_start.wait(), GUARD)
        run.add(Task(id="same", fn=urgent, priority=3))
        await asyncio.sleep(0)
        gate.release.set()
        await asyncio.wait_for(run.wait(), GUARD)

    assert preempted == []


async def test_preemption_limit_stops_restarts() -> None:
    gate = Gate()
    executor = DagExecutor(max_workers=1, max_preemptions=1)

    async with executor.open() as run:
        run.add(Task(id="long", fn=gate.long, preemptible=True))
        await asyncio.wait_for(gate.first_start.wait(), GUARD)
        for index in range(3):
            run.add(Task(id=f"urgent-{index}", fn=urgent, priority=10))
            for _ in range(5):
                await asyncio.sleep(0)
        gate.release.set()
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report["long"].preemptions == 1
    assert report["long"].status is TaskStatus.DONE


async def test_aging_raises_priority_after_preemption() -> None:
    gate = Gate()
    executor = DagExecutor(max_workers=1, aging=5)
    requeued: list[int] = []
    executor.events.subscribe(
        "task.requeued", lambda event: requeued.append(event.data["priority"])
    )

    await run_with_urgent_arrival(executor, Task(id="long", fn=gate.long, preemptible=True), gate)

    assert requeued == [5]


async def test_cooperative_task_pauses_at_checkpoint() -> None:
    steps: list[str] = []
    proceed = asyncio.Event()
    in_loop = asyncio.Event()

    async def cooperative() -> str:
        steps.append("start")
        in_loop.set()
        while not proceed.is_set():
            await checkpoint()
            await asyncio.sleep(0)
        steps.append("end")
        return "cooperative done"

    async def note_urgent() -> str:
        steps.append("urgent")
        proceed.set()
        return "urgent done"

    executor = DagExecutor(max_workers=1)
    async with executor.open() as run:
        run.add(Task(id="coop", fn=cooperative, preemptible=True))
        await asyncio.wait_for(in_loop.wait(), GUARD)
        run.add(Task(id="urgent", fn=note_urgent, priority=10))
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert steps == ["start", "urgent", "end"]
    assert report["coop"].preemptions == 1
    assert report["coop"].attempts == 1


async def test_sync_task_checks_token_and_restarts() -> None:
    starts: list[str] = []
    may_finish = threading.Event()
    checked = threading.Event()

    def crunch() -> str:
        starts.append("start")
        token = current_checkpoint()
        assert token is not None
        while not may_finish.is_set():
            token.check()
            checked.set()
            may_finish.wait(0.001)
        return "crunched"

    async def urgent_then_allow() -> str:
        may_finish.set()
        return "urgent done"

    executor = DagExecutor(max_workers=1)
    async with executor.open() as run:
        run.add(Task(id="crunch", fn=crunch, preemptible=True))
        await asyncio.wait_for(asyncio.to_thread(checked.wait, GUARD), GUARD)
        run.add(Task(id="urgent", fn=urgent_then_allow, priority=10))
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert starts == ["start", "start"]
    assert report["crunch"].status is TaskStatus.DONE
    assert report["crunch"].preemptions == 1


async def test_checkpoint_outside_executor_is_harmless() -> None:
    await checkpoint()

    assert current_checkpoint() is None


@pytest.mark.parametrize("bad", [{"aging": -1}, {"max_preemptions": -2}])
def test_preemption_settings_validated(bad: dict) -> None:
    with pytest.raises(UsageError, match="must not be negative"):
        DagExecutor(**bad)


async def test_urgent_task_added_before_victim_ran() -> None:
    calls: list[str] = []

    async def slow() -> str:
        calls.append("slow")
        for _ in range(3):
            await asyncio.sleep(0)
        return "slow done"

    order: list[str] = []
    executor = DagExecutor(max_workers=1)
    executor.events.subscribe("task.completed", lambda event: order.append(event.data["task_id"]))
    async with executor.open() as run:
        run.add(Task(id="slow", fn=slow, preemptible=True))
        # The slow task's worker has not taken a step yet.
        run.add(Task(id="urgent", fn=urgent, priority=10))
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert order == ["urgent", "slow"]
    assert calls == ["slow"]
    assert report["slow"].preemptions == 1
    assert report["slow"].attempts == 1


async def test_run_cancelled_during_preemption() -> None:
    gate = Gate()
    executor = DagExecutor(max_workers=1)

    async with executor.open() as run:
        run.add(Task(id="long", fn=gate.long, preemptible=True))
        await asyncio.wait_for(gate.first_start.wait(), GUARD)
        run.add(Task(id="urgent", fn=urgent, priority=10))  # cancels long's worker
        # Called directly, cancel() reaches the run before long's worker sees its
        # pre-emption.
        await run.cancel()

        assert run.report["long"].status is TaskStatus.CANCELLED
        assert run.report["urgent"].status is TaskStatus.CANCELLED
        await asyncio.wait_for(run.wait_idle(), GUARD)

    assert gate.started == 1


async def test_sync_task_not_started_can_be_preempted() -> None:
    calls: list[str] = []

    def crunch() -> str:
        calls.append("crunch")
        return "crunched"

    executor = DagExecutor(max_workers=1)
    async with executor.open() as run:
        run.add(Task(id="crunch", fn=crunch, preemptible=True, idempotent=False))
        run.add(Task(id="urgent", fn=urgent, priority=10))
        report = await asyncio.wait_for(run.wait(), GUARD)

    # Requeueing a task that never ran repeats nothing, whatever its flags.
    assert calls == ["crunch"]
    assert report["crunch"].preemptions == 1
    assert report["urgent"].end is not None
    assert report["crunch"].start is not None
    assert report["urgent"].end <= report["crunch"].start


async def test_one_urgent_task_preempts_one_victim() -> None:
    release = asyncio.Event()
    bus = EventBus()
    preempted: list[object] = []
    bus.subscribe("task.preempted", lambda event: preempted.append(event.data["task_id"]))
    started = asyncio.Event()
    running = 0

    async def long() -> None:
        nonlocal running
        running += 1
        if running == 4:
            started.set()
        await release.wait()

    async def slow_urgent() -> None:
        # Holding the slot for a while gives a requeued victim the chance to
        # pre-empt its peers, which it must not take.
        for _ in range(5):
            await asyncio.sleep(0)

    executor = DagExecutor(max_workers=4, events=bus)
    async with executor.open() as run:
        for index in range(4):
            run.add(Task(id=f"long-{index}", fn=long, preemptible=True))
        await asyncio.wait_for(started.wait(), GUARD)
        run.add(Task(id="urgent", fn=slow_urgent, priority=10))
        for _ in range(10):
            await asyncio.sleep(0)
        release.set()
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert len(preempted) == 1
    assert all(record.status is TaskStatus.DONE for record in report)
