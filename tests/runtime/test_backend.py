"""The execution backend port: which calls reach the backend, and with what."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from dragonscale_lc import UsageError
from dragonscale_lc.runtime import (
    Call,
    DagExecutor,
    ExecutionBackend,
    LocalBackend,
    Ref,
    Task,
    TaskStatus,
)


class RecordingBackend:
    """Runs calls locally and records each one, in submission order."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.local = LocalBackend()

    @property
    def name(self) -> str:
        return "recording"

    async def execute(self, call: Call) -> Any:
        self.calls.append(call)
        return await self.local.execute(call)


async def double(x: int) -> int:
    return 2 * x


def add_keyword(x: int, *, y: int) -> int:
    return x + y


def test_recording_backend_is_execution_backend() -> None:
    assert isinstance(RecordingBackend(), ExecutionBackend)
    assert isinstance(LocalBackend(), ExecutionBackend)


def test_remote_preemptible_task_rejected() -> None:
    with pytest.raises(UsageError, match=r"task 'x' is both remote and preemptible"):
        Task(id="x", fn=double, remote=True, preemptible=True)


async def test_default_backend_runs_remote_tasks_locally() -> None:
    tasks = [
        Task(id="sync", fn=lambda: threading.current_thread().name, remote=True),
        Task(id="async", fn=double, args=(Ref("sync"),), remote=True),
    ]

    report = await DagExecutor().run(tasks)

    assert report["sync"].output.startswith("dragonscale-worker")
    assert report["sync"].worker == "thread"
    assert report["async"].status is TaskStatus.DONE
    assert report["async"].worker == "event-loop"


async def test_only_remote_tasks_reach_backend() -> None:
    backend = RecordingBackend()
    tasks = [
        Task(id="local", fn=double, args=(1,)),
        # An async task without references, timeout or retry would take the
        # run's shortcut for plain tasks if it were not remote.
        Task(id="plain", fn=double, args=(2,), remote=True),
        Task(id="sync", fn=lambda x: x + 1, args=(Ref("local"),), remote=True),
    ]

    report = await DagExecutor(backend=backend).run(tasks)

    assert sorted(call.task_id for call in backend.calls) == ["plain", "sync"]
    assert report["plain"].output == 4
    assert report["sync"].output == 3
    assert report["local"].worker == "event-loop"
    assert report["plain"].worker == "recording"


async def test_backend_gets_resolved_arguments() -> None:
    backend = RecordingBackend()
    tasks = [
        Task(id="a", fn=double, args=(5,)),
        Task(id="b", fn=add_keyword, args=(Ref("a"),), kwargs={"y": Ref("a")}, remote=True),
    ]

    report = await DagExecutor(backend=backend).run(tasks)

    (call,) = backend.calls
    assert call.args == (10,)
    assert call.kwargs == {"y": 10}
    assert call.is_async is False
    assert report["b"].output == 20


async def test_backend_gets_priority_and_rank() -> None:
    backend = RecordingBackend()
    tasks = [
        Task(id="low", fn=double, args=(1,), remote=True, cost=1.0),
        Task(id="high", fn=double, args=(1,), remote=True, priority=3, cost=1.0),
        Task(id="long", fn=double, args=(1,), remote=True, cost=5.0),
    ]

    await DagExecutor(max_workers=1, backend=backend).run(tasks)

    assert [call.task_id for call in backend.calls] == ["high", "long", "low"]
    assert [call.priority for call in backend.calls] == [3, 0, 0]
    assert [call.rank for call in backend.calls] == [1.0, 5.0, 1.0]


async def test_backend_error_fails_task() -> None:
    def broken() -> None:
        raise ValueError("no such row")

    tasks = [
        Task(id="broken", fn=broken, remote=True),
        Task(id="after", fn=str, args=(Ref("broken"),)),
    ]

    report = await DagExecutor(backend=RecordingBackend()).run(tasks)

    assert report["broken"].status is TaskStatus.FAILED
    assert isinstance(report["broken"].error, ValueError)
    assert "no such row" in report["after"].output


async def test_backend_call_cancelled_on_timeout() -> None:
    cancelled = asyncio.Event()

    class HangingBackend:
        name = "hanging"

        async def execute(self, call: Call) -> Any:
            try:
                await asyncio.Future()  # never resolved
            except asyncio.CancelledError:
                cancelled.set()
                raise

    tasks = [Task(id="slow", fn=double, args=(1,), remote=True, timeout=0.01)]

    report = await DagExecutor(backend=HangingBackend()).run(tasks)

    assert report["slow"].status is TaskStatus.FAILED
    assert "timed out after 0.01 s" in str(report["slow"].error)
    assert cancelled.is_set()


async def test_remote_all_sends_every_task_but_preemptible() -> None:
    backend = RecordingBackend()
    tasks = [
        Task(id="a", fn=double, args=(1,)),
        Task(id="b", fn=add_keyword, args=(Ref("a"),), kwargs={"y": 3}),
        Task(id="c", fn=double, args=(5,), preemptible=True),
    ]

    report = await DagExecutor(backend=backend, remote_all=True).run(tasks)

    assert [call.task_id for call in backend.calls] == ["a", "b"]
    assert [report[task_id].output for task_id in "abc"] == [2, 5, 10]
    assert report["c"].worker == "event-loop"
