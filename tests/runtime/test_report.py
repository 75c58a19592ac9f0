"""A run keeps its state for each task on the task's record; the report shows fields only.

The record of a task is also the run's node for it, so these tests check that
the run-time slots stay out of what callers see: the repr, equality, copies,
pickles and ``dataclasses.replace``.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import pickle
from typing import Any

import pytest

from dragonscale_lc.runtime import (
    DagExecutor,
    EventBus,
    FailurePolicy,
    RunReport,
    Task,
    TaskRecord,
    TaskStatus,
)
from dragonscale_lc.runtime._node import RunState
from dragonscale_lc.runtime._run import new_node

FIELDS = [f.name for f in dataclasses.fields(TaskRecord)]


async def double(x: int) -> int:
    return 2 * x


async def fail() -> None:
    raise ValueError("no")


def tasks() -> list[Task]:
    # A plain task, one that fails, one skipped after it, and one with a
    # timeout, which takes the general path.
    return [
        Task(id="a", fn=double, args=(1,)),
        Task(id="b", fn=fail),
        Task(id="c", fn=double, args=(2,), dependencies={"b"}),
        Task(id="d", fn=double, args=(3,), dependencies={"a"}, timeout=5.0),
    ]


async def finished_report(*, events: bool = False) -> RunReport:
    bus = EventBus()
    if events:
        bus.subscribe("task.*", lambda event: None)  # sends every task down the general path
    executor = DagExecutor(failure_policy=FailurePolicy.SKIP_DEPENDENTS, events=bus)
    return await executor.run(tasks())


def field_values(record: TaskRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in FIELDS}
    error = values.pop("error")
    values["error"] = None if error is None else (type(error), str(error))
    return values


@pytest.mark.parametrize("events", [False, True])
async def test_finished_report_pickles(events: bool) -> None:
    report = await finished_report(events=events)

    restored = pickle.loads(pickle.dumps(report))

    assert [field_values(r) for r in restored] == [field_values(r) for r in report]
    assert restored.started_at == report.started_at
    assert restored.ended_at == report.ended_at
    assert {r.id: r.status for r in restored} == {
        "a": TaskStatus.DONE,
        "b": TaskStatus.FAILED,
        "c": TaskStatus.SKIPPED,
        "d": TaskStatus.DONE,
    }


async def test_report_deepcopy_is_equal() -> None:
    report = await finished_report()
    for record in report:
        record.error = None  # exceptions compare by identity

    copied = copy.deepcopy(report)

    assert copied == report
    assert all(type(record) is TaskRecord for record in copied)


async def test_copies_leave_the_run_state_out() -> None:
    report = await finished_report()

    for record in (copy.copy(report["a"]), pickle.loads(pickle.dumps(report["a"]))):
        for name in RunState.__slots__:
            assert not hasattr(record, name), name


async def test_repr_shows_the_fields_only() -> None:
    report = await finished_report()
    record = report["a"]
    fresh = TaskRecord(**{name: getattr(record, name) for name in FIELDS})

    assert repr(record) == repr(fresh)
    assert repr(record).startswith("TaskRecord(id='a', name='double', ")
    for name in ("rank", "seq", "waiting", "settled", "worker_task", "entry"):
        assert f"{name}=" not in repr(record)


async def test_equality_ignores_the_run_state() -> None:
    report = await finished_report()
    record = report["a"]
    fresh = TaskRecord(**{name: getattr(record, name) for name in FIELDS})

    assert record == fresh
    record.rank = 123.0  # a run-time slot
    assert record == fresh
    record.attempts += 1  # a field
    assert record != fresh


async def test_replace_makes_a_record_with_the_fields() -> None:
    report = await finished_report()

    replaced = dataclasses.replace(report["a"], output=5)

    assert replaced.output == 5
    assert replaced.name == "double"
    assert not hasattr(replaced, "rank")


async def test_settled_records_drop_their_tasks() -> None:
    # The report outlives the run, so it must not keep the tasks' functions.
    for events in (False, True):
        report = await finished_report(events=events)

        for record in report:
            assert not hasattr(record, "task")
            assert record.entry is None
            assert record.worker_task is None
            assert record.token is None


def test_new_node_matches_constructor() -> None:
    task = Task(id=7, fn=double, args=(1,), kwargs={"x": 2}, dependencies={3}, priority=2)

    node = new_node(task, 1.5, 4, True)

    assert node == TaskRecord(task.id, task.name, task.dependencies, task.args, task.kwargs)
    assert node.task is task
    assert node.rank == 1.5
    assert node.seq == 4
    assert node.priority == 2
    for name in RunState.__slots__:
        getattr(node, name)  # every run-time slot is set


async def test_report_views_still_work() -> None:
    report = await finished_report()

    assert report.to_mermaid().splitlines()[1] == '    t_a["a. double"]:::done'
    assert len(report) == 4
    assert report["a"].output == 2


def test_record_made_outside_a_run_pickles() -> None:
    record = TaskRecord(1, "tool", (), (1,), {"k": 2}, status=TaskStatus.DONE, output=3)

    assert pickle.loads(pickle.dumps(record)) == record
    assert copy.deepcopy(record) == record


async def test_cancelled_run_report_pickles() -> None:
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(10)

    async with DagExecutor().open() as run:
        run.add(Task(id="slow", fn=slow))
        run.add(Task(id="after", fn=double, args=(1,), dependencies={"slow"}))
        await started.wait()
        await run.cancel()
    report = run.report

    restored = pickle.loads(pickle.dumps(report))

    assert [r.status for r in restored] == [TaskStatus.CANCELLED, TaskStatus.CANCELLED]
    assert not any(hasattr(record, "task") for record in report)
