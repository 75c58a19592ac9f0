"""Per-task overhead of the executor on a random DAG of no-op async tasks.

The same graph runs four ways. :class:`DagExecutor` runs it as a task graph.
The floor creates one bare asyncio task per node and ignores dependencies, so
it costs what creating and finishing asyncio tasks costs. The naive runner
gives each node a coroutine that awaits an ``asyncio.Event`` per parent.
LangGraph runs a smaller graph from the same generator as a ``StateGraph``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from ..runtime import DagExecutor, RunReport, Task
from ._common import Dag, random_dag, timed

__all__ = [
    "OverheadResult",
    "executor_tasks",
    "measure_overhead",
    "noop",
    "run_floor",
    "run_naive",
]

GOAL_RATIO_TO_FLOOR = 2.5
GOAL_RATIO_TO_NAIVE = 1.0
GOAL_LANGGRAPH_FACTOR = 20.0

Work = Callable[[int], Coroutine[Any, Any, object]]


async def noop(index: int) -> None:
    """Do nothing: the body of every task in the overhead benchmark."""


async def run_floor(nodes: int, work: Work = noop) -> None:
    """Run ``work(i)`` for ``i`` in ``0 .. nodes-1`` as asyncio tasks, all at once."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*[loop.create_task(work(index)) for index in range(nodes)])


async def run_naive(parents: Dag, work: Work = noop) -> None:
    """Run ``work(i)`` for every node once its parents have run, with one event per node."""
    finished = [asyncio.Event() for _ in parents]

    async def run_node(index: int) -> None:
        for parent in parents[index]:
            await finished[parent].wait()
        await work(index)
        finished[index].set()

    loop = asyncio.get_running_loop()
    await asyncio.gather(*[loop.create_task(run_node(index)) for index in range(len(parents))])


def executor_tasks(parents: Dag, work: Work = noop) -> list[Task]:
    """Return one :class:`Task` per node, running ``work(i)`` after the node's parents."""
    return [
        Task(id=index, fn=work, args=(index,), dependencies=frozenset(node_parents))
        for index, node_parents in enumerate(parents)
    ]


@dataclass(frozen=True, slots=True)
class OverheadResult:
    """Best-of-``repeat`` wall-clock seconds of each way of running the graph."""

    nodes: int
    seed: int
    repeat: int
    langgraph_nodes: int
    workers: int
    ours_s: float
    floor_s: float
    naive_asyncio_s: float
    ours_at_langgraph_nodes_s: float
    langgraph_s: float

    @property
    def ratio_to_floor(self) -> float:
        return self.ours_s / self.floor_s

    @property
    def ratio_to_naive(self) -> float:
        return self.ours_s / self.naive_asyncio_s

    @property
    def ours_per_node_us(self) -> float:
        return self.ours_s / self.nodes * 1e6

    @property
    def ours_per_node_us_at_langgraph_nodes(self) -> float:
        return self.ours_at_langgraph_nodes_s / self.langgraph_nodes * 1e6

    @property
    def langgraph_per_node_us(self) -> float:
        return self.langgraph_s / self.langgraph_nodes * 1e6

    @property
    def langgraph_factor(self) -> float:
        """LangGraph's per-node time over ours at ``nodes`` nodes."""
        return self.langgraph_per_node_us / self.ours_per_node_us

    @property
    def langgraph_factor_same_size(self) -> float:
        """LangGraph's time over ours, both on the ``langgraph_nodes``-node graph."""
        return self.langgraph_s / self.ours_at_langgraph_nodes_s

    @property
    def goals(self) -> dict[str, bool]:
        return {
            "ratio_to_floor_le_2_5": self.ratio_to_floor <= GOAL_RATIO_TO_FLOOR,
            "ratio_to_naive_le_1_0": self.ratio_to_naive <= GOAL_RATIO_TO_NAIVE,
            "langgraph_per_node_ge_20x_ours": self.langgraph_factor >= GOAL_LANGGRAPH_FACTOR,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the measurements, the ratios derived from them and the goals."""
        return {
            **asdict(self),
            "ratio_to_floor": self.ratio_to_floor,
            "ratio_to_naive": self.ratio_to_naive,
            "ours_per_node_us": self.ours_per_node_us,
            "ours_per_node_us_at_langgraph_nodes": self.ours_per_node_us_at_langgraph_nodes,
            "langgraph_per_node_us": self.langgraph_per_node_us,
            "langgraph_factor": self.langgraph_factor,
            "langgraph_factor_same_size": self.langgraph_factor_same_size,
            "goals": self.goals,
        }


async def measure_overhead(
    nodes: int,
    *,
    seed: int = 0,
    repeat: int = 5,
    langgraph_nodes: int = 1000,
    workers: int | None = None,
) -> OverheadResult:
    """Time every runner ``repeat`` times, interleaved, and keep the best time of each.

    ``workers`` sets the executor's ``max_workers``. Without it the executor
    keeps its default, because bounded concurrency is how it is meant to run.
    The asyncio baselines have no limit. A first untimed round warms up every
    runner and checks that it ran every node.
    """
    # LangGraph is imported here, not at the top, so that importing the
    # benchmarks (as the memory benchmark's fresh process does) does not load it.
    from ._langgraph import build_langgraph, run_langgraph  # noqa: PLC0415

    if nodes < 1 or langgraph_nodes < 1 or repeat < 1 or (workers is not None and workers < 1):
        raise ValueError(
            f"nodes, langgraph_nodes, repeat and workers must be at least 1, "
            f"got {nodes}, {langgraph_nodes}, {repeat} and {workers}"
        )
    dag = random_dag(nodes, seed=seed)
    small_dag = random_dag(langgraph_nodes, seed=seed)
    tasks = executor_tasks(dag)
    small_tasks = executor_tasks(small_dag)
    executor = _executor(workers)
    small_executor = _executor(workers)
    graph = build_langgraph(dict(enumerate(small_dag)), noop)

    runners: dict[str, Callable[[], Awaitable[object]]] = {
        "ours": lambda: executor.run(tasks),
        "floor": lambda: run_floor(nodes),
        "naive": lambda: run_naive(dag),
        "ours_small": lambda: small_executor.run(small_tasks),
        "langgraph": lambda: run_langgraph(graph, langgraph_nodes),
    }
    await _check_runners(runners, langgraph_nodes)

    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for round_index in range(repeat):
        # Rotate the order, so that no runner always follows the same one.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, _ = await timed(runners[name])
            samples[name].append(seconds)

    best = {name: min(times) for name, times in samples.items()}
    return OverheadResult(
        nodes=nodes,
        seed=seed,
        repeat=repeat,
        langgraph_nodes=langgraph_nodes,
        workers=executor.max_workers,
        ours_s=best["ours"],
        floor_s=best["floor"],
        naive_asyncio_s=best["naive"],
        ours_at_langgraph_nodes_s=best["ours_small"],
        langgraph_s=best["langgraph"],
    )


def _executor(workers: int | None) -> DagExecutor:
    # Without a number of workers, max_workers keeps the executor's default.
    return DagExecutor() if workers is None else DagExecutor(max_workers=workers)


async def _check_runners(
    runners: dict[str, Callable[[], Awaitable[object]]], langgraph_nodes: int
) -> None:
    for name, runner in runners.items():
        result = await runner()
        if isinstance(result, RunReport) and not result.ok:
            raise RuntimeError(f"the executor did not finish every task of the {name!r} graph")
        if name == "langgraph" and isinstance(result, list) and len(result) != langgraph_nodes:
            raise RuntimeError(
                f"LangGraph ran {len(result)} of {langgraph_nodes} nodes of the overhead graph"
            )
