"""The workflow benchmark on a Dask distributed cluster started on this machine.

Needs the ``dask`` extra. The cluster listens on 127.0.0.1 only and has no
dashboard.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

from distributed import Client, LocalCluster

from ..backends import DaskBackend
from ..runtime import DagExecutor, Ref, Task
from ._common import timed
from ._wfformat import Workflow
from ._workflow import WorkflowResult, measure_workflow

__all__ = ["DaskClusterSpec", "measure_round_trip", "measure_workflow_on_dask"]

WARM_UP_CALLS = 20


@dataclass(frozen=True, slots=True)
class DaskClusterSpec:
    """Shape of the local cluster: worker processes and threads in each."""

    processes: int
    threads_per_process: int

    @classmethod
    def for_workers(cls, workers: int, processes: int = 2) -> DaskClusterSpec:
        """Return a cluster of ``processes`` processes with at least ``workers`` threads in all."""
        return cls(processes, max(1, math.ceil(workers / processes)))


async def measure_workflow_on_dask(
    workflow: Workflow, *, workers: int, time_scale: float, processes: int = 2
) -> WorkflowResult:
    """Run the workflow benchmark with every task on a local Dask cluster.

    The cluster has ``processes`` worker processes and at least ``workers``
    threads in all. The result's ``round_trip_ms`` is the time of one no-op
    remote call (see :func:`measure_round_trip`).
    """
    spec = DaskClusterSpec.for_workers(workers, processes)
    async with (
        LocalCluster(
            n_workers=spec.processes,
            threads_per_worker=spec.threads_per_process,
            processes=True,
            host="127.0.0.1",
            # The status page on any free loopback port: with None, distributed
            # still serves it on port 8787, so two clusters would collide.
            dashboard_address="127.0.0.1:0",
            asynchronous=True,
        ) as cluster,
        Client(cluster, asynchronous=True) as client,
    ):
        backend = DaskBackend(client)
        round_trip_ms = await measure_round_trip(backend)
        result = await measure_workflow(
            workflow, workers=workers, time_scale=time_scale, backend=backend
        )
    return dataclasses.replace(result, round_trip_ms=round_trip_ms)


async def measure_round_trip(backend: DaskBackend, calls: int = 50) -> float:
    """Return the mean time, in milliseconds, of one no-op remote call in a chain of ``calls``.

    Each call waits for the one before, so the time is submission, the
    worker's call and the result's way back, with nothing running alongside.
    A first chain of ``WARM_UP_CALLS`` is not timed: the first calls also pay
    for connecting workers and loading the function.
    """
    executor = DagExecutor(max_workers=1, backend=backend)
    await executor.run(_no_op_chain(WARM_UP_CALLS))
    seconds, report = await timed(lambda: executor.run(_no_op_chain(calls)))
    if not report.ok:
        raise RuntimeError("a no-op call on the Dask cluster failed")
    return 1000 * seconds / calls


def _no_op_chain(length: int) -> list[Task]:
    tasks = [Task(id=0, fn=time.sleep, args=(0,), remote=True)]
    for index in range(1, length):
        tasks.append(Task(id=index, fn=_after, args=(Ref(index - 1),), remote=True))
    return tasks


def _after(_previous: object) -> None:
    return None
