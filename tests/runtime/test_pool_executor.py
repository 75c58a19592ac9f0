"""DagExecutor with a WorkerPool: per-key caps, adaptive limits and pool slots across runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from dragonscale_lc.runtime import (
    DagExecutor,
    Event,
    EventBus,
    Task,
    TaskStatus,
    WorkerPool,
    checkpoint,
)

GUARD = 10.0
"""Seconds after which a test gives up on something that should happen at once."""


class TooManyRequests(Exception):
    """An HTTP client error that carries its status, as openai's errors do."""

    status_code = 429


class Probe:
    """Async tools that wait at a gate and count how many run at once, per pool key."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.active: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.started = 0
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def task(
        self,
        task_id: str,
        name: str,
        *,
        resources: tuple[str, ...] = (),
        error: Exception | None = None,
    ) -> Task:
        return Task(
            id=task_id,
            fn=self.tool((name, *resources), error),
            name=name,
            resources=resources,
        )

    async def wait_started(self, count: int) -> None:
        """Wait until ``count`` calls have started in all."""
        if self.started < count:
            reached = asyncio.Event()
            self._waiters.append((count, reached))
            await asyncio.wait_for(reached.wait(), GUARD)

    def tool(self, keys: Collection[str], error: Exception | None) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            self._enter(keys)
            try:
                await self.gate.wait()
            finally:
                self.active.subtract(keys)
            if error is not None:
                raise error

        return call

    def _enter(self, keys: Collection[str]) -> None:
        self.started += 1
        self.active.update(keys)
        for key in keys:
            self.peak[key] = max(self.peak[key], self.active[key])
        for count, reached in self._waiters:
            if self.started >= count:
                reached.set()


def running(probe: Probe) -> dict[str, int]:
    return {key: count for key, count in probe.active.items() if count}


def collect(bus: EventBus, topic: str) -> list[Event]:
    events: list[Event] = []
    bus.subscribe(topic, events.append)
    return events


# -- per-key caps ---------------------------------------------------------------------


async def test_key_cap_runs_one_search_at_a_time() -> None:
    probe = Probe()
    pool = WorkerPool(max_workers=4, limits={"search": 1})
    tasks = [probe.task(f"search-{i}", "search") for i in range(3)]
    tasks += [probe.task(f"math-{i}", "math") for i in range(3)]

    async with DagExecutor(pool=pool).open() as run:
        for task in tasks:
            run.add(task)
        await probe.wait_started(4)
        assert running(probe) == {"search": 1, "math": 3}
        assert dict(pool.running_by_key) == {"search": 1, "math": 3}

        probe.gate.set()
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report.ok
    assert probe.peak == Counter(search=1, math=3)
    assert pool.running == 0


async def test_resource_cap_spans_tool_names() -> None:
    probe = Probe()
    pool = WorkerPool(max_workers=4, limits={"server-a": 2})
    tasks = [
        probe.task(f"{name}-{i}", name, resources=("server-a",))
        for i in range(2)
        for name in ("search", "fetch", "lookup")
    ]
    tasks.append(probe.task("math", "math"))

    async with DagExecutor(pool=pool).open() as run:
        for task in tasks:
            run.add(task)
        await probe.wait_started(3)
        assert running(probe) == {"search": 1, "fetch": 1, "server-a": 2, "math": 1}
        assert pool.running == 3  # a free slot that no server-a task may take

        probe.gate.set()
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report.ok
    assert probe.peak["server-a"] == 2
    assert probe.started == 7


async def test_many_tasks_behind_one_cap_stay_linear() -> None:
    class CountingPool(WorkerPool):
        checks = 0

        def can_start(self, keys: Any = ()) -> bool:
            CountingPool.checks += 1
            return super().can_start(keys)

    async def search() -> None:
        await asyncio.sleep(0)

    pool = CountingPool(max_workers=8, limits={"search": 1})
    tasks = [Task(id=i, fn=search, name="search") for i in range(400)]

    report = await asyncio.wait_for(DagExecutor(pool=pool).run(tasks), GUARD)

    assert report.ok
    # Each completion lets one held task back onto the ready queue, not all of
    # them, so the pool is asked a few times per task. Moving all of them back
    # took about 80,000 calls here.
    assert CountingPool.checks < 4 * len(tasks)


# -- adaptive limit -------------------------------------------------------------------


async def test_burst_of_429s_halves_limit_once() -> None:
    bus = EventBus()
    resizes = collect(bus, "pool.resized")
    pool = WorkerPool(max_workers=4, events=bus)
    executor = DagExecutor(pool=pool, events=bus)
    burst, later = Probe(), Probe()

    async with executor.open() as run:
        for i in range(4):
            run.add(burst.task(f"api-{i}", "api", error=TooManyRequests("slow down")))
        await burst.wait_started(4)
        burst.gate.set()
        await asyncio.wait_for(run.wait_idle(), GUARD)

        assert [event.data for event in resizes] == [
            {"old": 4, "new": 2, "reason": "overload: TooManyRequests", "key": None}
        ]
        assert pool.limit == 2
        assert executor.limit == 2

        for i in range(4):
            run.add(later.task(f"later-{i}", "api"))
        await later.wait_started(2)
        assert running(later) == {"api": 2}
        assert pool.running == 2

        later.gate.set()
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert [report[f"api-{i}"].status for i in range(4)] == [TaskStatus.FAILED] * 4
    assert [report[f"later-{i}"].status for i in range(4)] == [TaskStatus.DONE] * 4


async def test_timeout_halves_limit() -> None:
    pool = WorkerPool(max_workers=4)

    async def hang() -> None:
        await asyncio.Event().wait()

    report = await DagExecutor(pool=pool).run([Task(id="slow", fn=hang, timeout=0.01)])

    assert report["slow"].status is TaskStatus.FAILED
    assert pool.limit == 2
    assert pool.resizes[-1].reason == "timeout"


async def test_cancelled_run_leaves_limit_alone() -> None:
    probe = Probe()
    pool = WorkerPool(max_workers=4)

    async with DagExecutor(pool=pool).open() as run:
        run.add(probe.task("a", "api"))
        run.add(probe.task("b", "api"))
        await probe.wait_started(2)
        await run.cancel()

    assert [record.status for record in run.report] == [TaskStatus.CANCELLED] * 2
    assert pool.limit == 4
    assert list(pool.resizes) == []
    assert pool.running == 0


# -- slots held and freed -------------------------------------------------------------


async def test_cancel_before_workers_run_frees_slots() -> None:
    pool = WorkerPool(max_workers=2)

    async def never() -> None:
        await asyncio.Event().wait()

    async with DagExecutor(pool=pool).open() as run:
        run.add(Task(id=1, fn=never))
        run.add(Task(id=2, fn=never))
        assert pool.running == 2
        await run.cancel()  # before either worker has taken a step

    assert [record.status for record in run.report] == [TaskStatus.CANCELLED] * 2
    assert pool.running == 0


async def test_checkpoint_pause_frees_pool_slot() -> None:
    steps: list[str] = []
    proceed = asyncio.Event()
    in_loop = asyncio.Event()

    async def cooperative() -> None:
        steps.append("start")
        in_loop.set()
        while not proceed.is_set():
            await checkpoint()
            await asyncio.sleep(0)
        steps.append("end")

    async def urgent() -> None:
        steps.append("urgent")
        proceed.set()

    pool = WorkerPool(max_workers=1)
    async with DagExecutor(pool=pool).open() as run:
        run.add(Task(id="coop", fn=cooperative, preemptible=True))
        await asyncio.wait_for(in_loop.wait(), GUARD)
        run.add(Task(id="urgent", fn=urgent, priority=10))
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert steps == ["start", "urgent", "end"]
    assert report["coop"].preemptions == 1
    assert report.ok
    assert pool.running == 0


async def test_restarted_task_gives_slot_back() -> None:
    probe = Probe()
    pool = WorkerPool(max_workers=1)

    async with DagExecutor(pool=pool).open() as run:
        run.add(Task(id="long", fn=probe.tool(("long",), None), name="long", preemptible=True))
        await probe.wait_started(1)
        run.add(Task(id="urgent", fn=probe.tool(("urgent",), None), name="urgent", priority=10))
        await probe.wait_started(2)
        assert running(probe) == {"urgent": 1}
        assert dict(pool.running_by_key) == {"urgent": 1}

        probe.gate.set()
        report = await asyncio.wait_for(run.wait(), GUARD)

    assert report["long"].preemptions == 1
    assert report.ok
    assert pool.running == 0


async def test_runs_sharing_a_pool_wake_each_other() -> None:
    probe = Probe()
    pool = WorkerPool(max_workers=1)
    executor = DagExecutor(pool=pool)

    async with executor.open() as first, executor.open() as second:
        first.add(probe.task("first", "api"))
        await probe.wait_started(1)
        second.add(probe.task("second", "api"))  # held: the first run has the slot
        assert second.report["second"].status is TaskStatus.READY

        probe.gate.set()
        await asyncio.wait_for(first.wait(), GUARD)
        report = await asyncio.wait_for(second.wait(), GUARD)

    assert report["second"].status is TaskStatus.DONE
    assert probe.peak["api"] == 1
    assert pool.running == 0
