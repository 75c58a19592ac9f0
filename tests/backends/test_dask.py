"""DaskBackend on an in-process Dask cluster: one worker with one thread, shared by the module.

The cluster runs in the test's event loop and its worker threads in this
process, so the remote functions below share this module's globals with the
tests: threading events let a test hold a call on the worker and know when
it started or finished, without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
from distributed import Client, Future, LocalCluster, WorkerPlugin  # noqa: E402

from dragonscale_lc import TaskError, TaskTimeoutError, UsageError  # noqa: E402
from dragonscale_lc.backends import DaskBackend, dask_priority  # noqa: E402
from dragonscale_lc.runtime import Call, DagExecutor, Ref, Task, TaskStatus  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Released by a test once it has checked what it needs while the call waits.
GATE = threading.Event()
STARTED = threading.Event()
FINISHED = threading.Event()
KEYS: list[str] = []
RAN: list[str] = []
WAIT_SECONDS = 20.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[Client]:
    # With the default worker saturation (1.1), the scheduler holds back
    # tasks of a large group and sends each worker a little more than its
    # thread count. Both queues run the highest Dask priority first. An
    # infinite saturation sends every task to the worker at once, so one
    # test can wait until all of them are queued there.
    with dask.config.set({"distributed.scheduler.worker-saturation": math.inf}):
        cluster = await LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            dashboard_address="127.0.0.1:0",
            asynchronous=True,
        )
    async with (
        cluster,
        Client(cluster, asynchronous=True) as client,
    ):
        yield client


@pytest.fixture(autouse=True)
def fresh_events() -> None:
    for event in (GATE, STARTED, FINISHED):
        event.clear()
    KEYS.clear()
    RAN.clear()


def held(label: str) -> str:
    """Wait on the worker until the test opens the gate."""
    KEYS.append(distributed.get_worker().get_current_task())
    STARTED.set()
    GATE.wait(WAIT_SECONDS)
    FINISHED.set()
    return label


def record(label: str) -> str:
    RAN.append(label)
    return label


def on_worker(label: str) -> tuple[str, bool]:
    return label, distributed.get_worker() is not None


def describe(pair: tuple[str, bool]) -> str:
    return f"{pair[0]} on a worker: {pair[1]}"


def broken(message: str) -> None:
    raise ValueError(message)


def add(x: int, y: int, *, key: int = 0) -> int:
    return x + y + key


async def wait_for(event: threading.Event) -> bool:
    return await asyncio.to_thread(event.wait, WAIT_SECONDS)


class RecordingBackend:
    """Wraps a DaskBackend and records the order in which calls are submitted."""

    def __init__(self, inner: DaskBackend) -> None:
        self.inner = inner
        self.submitted: list[Any] = []

    @property
    def name(self) -> str:
        return self.inner.name

    async def execute(self, call: Call) -> Any:
        self.submitted.append(call.task_id)
        return await self.inner.execute(call)


# Keys queued on the worker, and the loop and event to tell the test when
# enough are. The plugin itself is pickled when registered, so it keeps none
# of them.
READY: dict[str, Any] = {}


class ReadyKeys(WorkerPlugin):
    """Sets ``READY["event"]`` once ``count`` tasks have been queued on the worker."""

    def __init__(self, count: int) -> None:
        self.count = count

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish == "ready" and READY:
            READY["keys"].add(key)
            if len(READY["keys"]) >= self.count:
                READY["loop"].call_soon_threadsafe(READY["event"].set)


async def test_sync_client_rejected() -> None:
    with pytest.raises(UsageError, match=r"needs a client created with asynchronous=True"):
        DaskBackend(SimpleNamespace(asynchronous=False))  # type: ignore[arg-type]


async def test_results_and_errors_come_back(client: Client) -> None:
    tasks = [
        Task(id="sum", fn=add, args=(1, 2), kwargs={"key": 10}, remote=True),
        Task(id="broken", fn=broken, args=("no such row",), remote=True),
        Task(id="after", fn=str, args=(Ref("broken"),)),
    ]

    report = await DagExecutor(backend=DaskBackend(client)).run(tasks)

    assert report["sum"].output == 13
    assert report["sum"].worker == "dask"
    assert report["broken"].status is TaskStatus.FAILED
    assert isinstance(report["broken"].error, ValueError)
    assert str(report["broken"].error) == "no such row"
    assert "no such row" in report["after"].output


async def test_dependencies_resolved_locally(client: Client) -> None:
    backend = RecordingBackend(DaskBackend(client))
    tasks = [
        Task(id="local", fn=lambda: 20),
        Task(id="remote", fn=add, args=(Ref("local"), 1), remote=True),
        Task(id="remote_after", fn=add, args=(Ref("remote"), Ref("local")), remote=True),
    ]

    report = await DagExecutor(backend=backend).run(tasks)

    assert report["remote"].output == 21
    assert report["remote_after"].output == 41
    assert backend.submitted == ["remote", "remote_after"]


async def test_mixed_plan_runs_each_task_where_marked(client: Client) -> None:
    async def shout(text: str) -> str:
        return text.upper()

    tasks = [
        Task(id="fetch", fn=shout, args=("rows",)),
        Task(id="crunch", fn=on_worker, args=(Ref("fetch"),), remote=True),
        Task(id="format", fn=describe, args=(Ref("crunch"),)),
    ]

    report = await DagExecutor(backend=DaskBackend(client)).run(tasks)

    assert report["format"].output == "ROWS on a worker: True"
    assert [report[task_id].worker for task_id in ("fetch", "crunch", "format")] == [
        "event-loop",
        "dask",
        "thread",
    ]


async def test_ready_tasks_submitted_by_priority(client: Client) -> None:
    backend = RecordingBackend(DaskBackend(client))
    tasks = [
        Task(id="low", fn=record, args=("low",), remote=True, cost=1.0),
        Task(id="urgent", fn=record, args=("urgent",), remote=True, priority=5, cost=1.0),
        Task(id="long", fn=record, args=("long",), remote=True, cost=9.0),
        Task(id="mid", fn=record, args=("mid",), remote=True, priority=2, cost=1.0),
    ]

    # One slot: the run submits one call at a time, best ready task first.
    await DagExecutor(max_workers=1, backend=backend).run(tasks)

    assert backend.submitted == ["urgent", "mid", "long", "low"]
    assert RAN == ["urgent", "mid", "long", "low"]


async def test_cluster_runs_queued_calls_by_priority(client: Client) -> None:
    queued = asyncio.Event()
    READY.update(keys=set(), loop=asyncio.get_running_loop(), event=queued)
    # The blocker passed through "ready" on its way to the thread, so four
    # keys means the three calls below are all queued.
    await client.register_plugin(ReadyKeys(count=4), name="ready-keys")
    executor = DagExecutor(max_workers=8, backend=DaskBackend(client))

    try:
        async with executor.open() as run:
            run.add(Task(id="blocker", fn=held, args=("blocker",), remote=True))
            assert await wait_for(STARTED)
            # Queued while the worker's only thread is busy, in an order that
            # neither first-in-first-out (long, urgent, low) nor
            # last-in-first-out (low, urgent, long) turns into the priority
            # order, so only the Dask priorities can.
            run.add(Task(id="long", fn=record, args=("long",), remote=True, cost=9.0))
            run.add(Task(id="urgent", fn=record, args=("urgent",), remote=True, priority=1))
            run.add(Task(id="low", fn=record, args=("low",), remote=True, cost=1.0))
            await asyncio.wait_for(queued.wait(), WAIT_SECONDS)
            GATE.set()
            report = await run.wait()
    finally:
        await client.unregister_worker_plugin("ready-keys")
        READY.clear()

    assert report.ok
    assert RAN == ["urgent", "long", "low"]


async def test_timeout_cancels_future(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    tasks = [Task(id="slow", fn=held, args=("slow",), remote=True, timeout=0.05)]

    with caplog.at_level(logging.INFO, logger="dragonscale_lc.backends.dask"):
        report = await DagExecutor(backend=DaskBackend(client)).run(tasks)
    finished_before_gate = FINISHED.is_set()
    GATE.set()

    assert report["slow"].status is TaskStatus.FAILED
    assert isinstance(report["slow"].error, TaskTimeoutError)
    (key,) = KEYS
    assert f"cancelled Dask future {key} of task 'slow'" in caplog.text
    assert key not in client.futures
    # Dask does not interrupt a started call: the worker runs it to completion.
    assert not finished_before_gate
    assert await wait_for(FINISHED)


async def test_run_cancel_cancels_future(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    executor = DagExecutor(backend=DaskBackend(client))

    with caplog.at_level(logging.INFO, logger="dragonscale_lc.backends.dask"):
        async with executor.open() as run:
            run.add(Task(id="held", fn=held, args=("held",), remote=True))
            assert await wait_for(STARTED)
            await run.cancel()
    GATE.set()

    assert run.report["held"].status is TaskStatus.CANCELLED
    assert f"cancelled Dask future {KEYS[0]} of task 'held'" in caplog.text
    assert await wait_for(FINISHED)


async def test_future_cancelled_on_cluster_fails_task(client: Client) -> None:
    executor = DagExecutor(backend=DaskBackend(client))

    async with executor.open() as run:
        run.add(Task(id="held", fn=held, args=("held",), remote=True))
        assert await wait_for(STARTED)
        await client.cancel([Future(KEYS[0], client)])
        report = await run.wait()
    GATE.set()

    assert report["held"].status is TaskStatus.FAILED
    assert isinstance(report["held"].error, TaskError)
    assert str(report["held"].error) == f"task 'held' (held): Dask cancelled its future {KEYS[0]}"
    assert await wait_for(FINISHED)


@pytest.mark.parametrize(
    ("higher", "lower"),
    [
        ((1, 0.0), (0, 1e9)),  # priority before rank
        ((0, 2.0), (0, 1.0)),
        ((-1, 5.0), (-1, 0.0)),
        ((0, 0.0), (-1, 1e9)),
        ((0, 0.001), (0, 0.0)),
    ],
)
async def test_dask_priority_keeps_order(
    higher: tuple[int, float], lower: tuple[int, float]
) -> None:
    assert dask_priority(*higher) > dask_priority(*lower)


async def test_dask_priority_values() -> None:
    assert dask_priority(2, 3.0) == 2.75
    assert dask_priority(0, -1.0) == 0.0
