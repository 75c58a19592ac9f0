"""Peak memory of building, analysing and running a large random DAG.

A process's peak resident set size only grows, so whatever ran before in the
same process would count. :func:`measure_memory` therefore measures in a
fresh Python process (this module, run with ``python -m``), where nothing but
the interpreter, the runtime and this benchmark ran before. The benchmarks
package imports LangGraph lazily, so that process does not load it either.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..runtime import DagExecutor, TaskGraph, critical_path, upward_ranks
from ._common import random_dag
from ._overhead import executor_tasks

__all__ = [
    "MemoryResult",
    "measure_memory",
    "measure_memory_in_process",
    "peak_rss_mb",
    "ru_maxrss_mb",
]

GOAL_PEAK_RSS_MB = 300.0


def peak_rss_mb() -> float:
    """Return the peak resident set size of this process so far, in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``. ``ru_maxrss`` is
    not used there, because in a process started by another one it is at
    least the parent's resident size at that moment: ``exec`` carries the
    peak of the address space it replaces over into the new program's
    ``ru_maxrss``.
    """
    high_water = _high_water_mark_kib()
    return high_water / 2**10 if high_water is not None else ru_maxrss_mb()


def ru_maxrss_mb() -> float:
    """Return ``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux counts kibibytes, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _high_water_mark_kib() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class MemoryResult:
    """Peak memory of the process and the seconds each step took.

    Attributes:
        baseline_rss_mb: Peak resident size after the imports, before the graph.
        peak_rss_mb: Peak resident size at the end, as :func:`peak_rss_mb` reads it.
        ru_maxrss_mb: ``ru_maxrss`` at the end, which can include the parent's size.
        critical_path_tasks: Tasks on the critical path, each at the default cost.
    """

    nodes: int
    edges: int
    seed: int
    workers: int
    baseline_rss_mb: float
    peak_rss_mb: float
    ru_maxrss_mb: float
    build_s: float
    analysis_s: float
    run_s: float
    critical_path_tasks: int

    @property
    def graph_rss_mb(self) -> float:
        """What the graph, its analysis and its run added to the peak."""
        return self.peak_rss_mb - self.baseline_rss_mb

    @property
    def goals(self) -> dict[str, bool]:
        return {"peak_rss_mb_le_300": self.peak_rss_mb <= GOAL_PEAK_RSS_MB}

    def to_dict(self) -> dict[str, Any]:
        """Return the measurements, the difference derived from them and the goals."""
        return {**asdict(self), "graph_rss_mb": self.graph_rss_mb, "goals": self.goals}


async def measure_memory_in_process(nodes: int, *, seed: int = 0) -> MemoryResult:
    """Build, analyse and run a random DAG of no-op tasks in this process.

    The peak includes whatever this process did before, so call it first
    thing in a fresh process, or use :func:`measure_memory`.

    The steps are timed apart: building the tasks and the ``TaskGraph``,
    the analysis (``upward_ranks`` and ``critical_path``), and the run on a
    ``DagExecutor`` with its default workers, which computes the ranks again.
    """
    if nodes < 1:
        raise ValueError(f"nodes must be at least 1, got {nodes}")
    baseline = peak_rss_mb()

    start = time.perf_counter()
    dag = random_dag(nodes, seed=seed)
    graph = TaskGraph(executor_tasks(dag))
    built = time.perf_counter()
    upward_ranks(graph)
    path = critical_path(graph).path
    analysed = time.perf_counter()
    executor = DagExecutor()
    report = await executor.run(graph)
    ran = time.perf_counter()
    if not report.ok:
        raise RuntimeError(f"the executor did not finish every task of the {nodes}-node graph")

    return MemoryResult(
        nodes=nodes,
        edges=sum(len(parents) for parents in dag),
        seed=seed,
        workers=executor.max_workers,
        baseline_rss_mb=baseline,
        peak_rss_mb=peak_rss_mb(),
        ru_maxrss_mb=ru_maxrss_mb(),
        build_s=built - start,
        analysis_s=analysed - built,
        run_s=ran - analysed,
        critical_path_tasks=len(path),
    )


async def measure_memory(nodes: int, *, seed: int = 0) -> MemoryResult:
    """Run :func:`measure_memory_in_process` in a fresh Python process and return its result.

    Raises:
        RuntimeError: The process failed or printed something other than a result.
    """
    if nodes < 1:
        raise ValueError(f"nodes must be at least 1, got {nodes}")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        "--nodes",
        str(nodes),
        "--seed",
        str(seed),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"the memory benchmark process exited with status {process.returncode}: "
            f"{stderr.decode(errors='replace').strip()[-2000:]}"
        )
    try:
        fields = json.loads(stdout)
        return MemoryResult(**{key: fields[key] for key in MemoryResult.__dataclass_fields__})
    except (ValueError, KeyError, TypeError) as error:
        raise RuntimeError(
            f"the memory benchmark process printed no valid result: {stdout[:200]!r}"
        ) from error


def main(argv: list[str] | None = None) -> None:
    """Measure in this process and print the result as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    result = asyncio.run(measure_memory_in_process(options.nodes, seed=options.seed))
    sys.stdout.write(json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    main()
