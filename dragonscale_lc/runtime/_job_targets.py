"""Targets of scheduled jobs: callables, coroutine functions, ``ainvoke`` objects, DAG runs."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._errors import RunError, UsageError
from ._events import _is_coroutine_callable
from ._graph import TaskGraph
from ._job import current_firing
from ._report import RunReport
from ._task import Task, TaskStatus

if TYPE_CHECKING:
    from ._executor import DagExecutor

__all__ = ["JobCall", "executor_job", "job_call"]

JobCall = Callable[[], Awaitable[Any]]
"""A job's target bound to its arguments: one call starts one run."""


def job_call(target: object, args: tuple[Any, ...]) -> JobCall:
    """Bind ``target`` to ``args`` as a coroutine-returning call, by the kind of target.

    An object with an ``ainvoke`` method is run as ``await target.ainvoke(*args)``,
    so a LangChain Runnable works without the runtime importing LangChain. A
    coroutine function is awaited on the event loop. Any other callable runs
    in a worker thread with a copy of the run's context, and an awaitable it
    returns is awaited on the loop.

    Raises:
        UsageError: ``target`` is neither callable nor has an ``ainvoke`` method.
    """
    ainvoke = getattr(target, "ainvoke", None)
    if callable(ainvoke):
        return lambda: _await(ainvoke(*args))
    if not callable(target):
        raise UsageError(
            f"job target {target!r} is neither callable nor has an ainvoke method; "
            "pass a function, a coroutine function or an object with async ainvoke()"
        )
    if _is_coroutine_callable(target):
        return lambda: target(*args)
    return lambda: _in_thread(target, args)


async def _await(result: object) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result


async def _in_thread(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    # to_thread copies the context, so current_firing() works in the thread.
    result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        return await result
    return result


def executor_job(
    executor: DagExecutor, make_tasks: Callable[[], TaskGraph | Iterable[Task]]
) -> Callable[[], Awaitable[RunReport]]:
    """Return a coroutine function that runs a fresh task graph on ``executor`` per call.

    Scheduled as a job, each run calls ``make_tasks()`` and runs the tasks it
    returns. The job's priority is added to every task's own priority, so a
    more urgent job's tasks also go first in a ready queue that an executor
    shares with other work.

    Raises:
        RunError: From a run, when a task did not finish; its ``report`` is the
            run's report. A scheduled job then counts as failed.

    Example:
        >>> from dragonscale_lc.runtime import DagExecutor, Task, TimedScheduler
        >>> def make_tasks():
        ...     return [Task(id="fetch", fn=lambda: 1), Task(id="store", fn=lambda: 2)]
        >>> async def main():
        ...     async with TimedScheduler() as scheduler:
        ...         job = scheduler.after(0.01, executor_job(DagExecutor(), make_tasks))
        ...         await job.wait()
        ...     return job.last_result.ok
        >>> asyncio.run(main())
        True
    """

    async def run_tasks() -> RunReport:
        tasks = make_tasks()
        firing = current_firing()
        if firing is not None and firing.priority:
            tasks = _with_priority(tasks, firing.priority)
        report = await executor.run(tasks)
        if not report.ok:
            unfinished = [
                f"{record.id!r} ({record.status.value})"
                for record in report
                if record.status is not TaskStatus.DONE
            ]
            job = repr(firing.job) if firing is not None else "outside a scheduler"
            error = RunError(
                f"the DAG run of job {job} did not finish every task: "
                f"{', '.join(unfinished)}; the error's report holds their errors"
            )
            error.report = report
            raise error
        return report

    return run_tasks


def _with_priority(tasks: TaskGraph | Iterable[Task], extra: int) -> list[Task]:
    # Copies, because a factory may return the same Task objects every time,
    # and adding to them in place would add the priority once per run.
    return [dataclasses.replace(task, priority=task.priority + extra) for task in tasks]
