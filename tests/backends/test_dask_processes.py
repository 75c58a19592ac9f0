"""DaskBackend and the workflow benchmark on a local cluster of two worker processes.

Slow: each test starts worker processes, which takes a few seconds. Remote
functions come from the standard library, so the worker processes can load
them without importing the test modules.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from typer.testing import CliRunner

pytest.importorskip("distributed")

from distributed import Client, LocalCluster

from dragonscale_lc.backends import DaskBackend
from dragonscale_lc.cli import app
from dragonscale_lc.runtime import Call, DagExecutor, Ref, Task

pytestmark = pytest.mark.slow

TINY_WORKFLOW = {
    "name": "tiny",
    "schemaVersion": "1.5",
    "workflow": {
        "specification": {
            "tasks": [
                {"id": "split_1", "parents": []},
                {"id": "split_2", "parents": []},
                {"id": "split_3", "parents": []},
                {"id": "merge", "parents": ["split_1", "split_2", "split_3"]},
            ],
            "files": [],
        },
        "execution": {
            "makespanInSeconds": 9.0,
            "tasks": [
                {"id": "split_1", "runtimeInSeconds": 4.0},
                {"id": "split_2", "runtimeInSeconds": 2.0},
                {"id": "split_3", "runtimeInSeconds": 1.0},
                {"id": "merge", "runtimeInSeconds": 1.5},
            ],
        },
    },
}


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


@pytest_asyncio.fixture
async def client() -> AsyncIterator[Client]:
    async with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            asynchronous=True,
        ) as cluster,
        Client(cluster, asynchronous=True) as client,
    ):
        yield client


async def test_two_processes_run_by_priority(client: Client) -> None:
    backend = RecordingBackend(DaskBackend(client))
    tasks = [
        Task(id="low", fn=operator.add, args=(1, 2), remote=True),
        Task(id="urgent", fn=os.getpid, remote=True, priority=3),
        Task(id="long", fn=operator.mul, args=(3, 4), remote=True, cost=9.0),
        Task(id="sum", fn=operator.add, args=(Ref("low"), Ref("long")), remote=True),
    ]

    report = await DagExecutor(max_workers=1, backend=backend).run(tasks)

    assert backend.submitted == ["urgent", "long", "low", "sum"]
    assert report["sum"].output == 15
    assert report["urgent"].output != os.getpid()  # ran in a worker process


def test_workflow_bench_on_dask(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_WORKFLOW))

    result = CliRunner().invoke(
        app,
        [
            "bench",
            "workflow",
            str(path),
            "--backend",
            "dask",
            "--workers",
            "2",
            "--target-critical-path",
            "0.2",
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["backend"] == "dask"
    assert summary["tasks"] == 4
    assert summary["makespan_s"] >= summary["critical_path_s"]
    assert summary["fifo_makespan_s"] >= summary["critical_path_s"]
    assert summary["overhead_per_task_ms"] > 0
    assert summary["local_overhead_per_task_ms"] > 0
    assert summary["round_trip_ms"] > 0
