"""Parallel chains of uneven sleeps: dependency-driven dispatch against supersteps.

Each chain is a sequence of steps, each step an ``asyncio.sleep`` of a seeded
random duration. With a worker per chain, the executor starts a step as soon
as the step before it in the same chain ends, so the makespan stays close to
the longest chain. LangGraph runs one step of every chain per superstep, so
each step waits for the slowest step of its superstep, and its makespan tends
to the sum over steps of the slowest chain at that step.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass
from typing import Any

from ..runtime import DagExecutor, Task
from ._common import timed

__all__ = ["UnevenResult", "measure_uneven", "uneven_chains"]

GOAL_RATIO = 1.03
MIN_STEP_S = 0.005
MAX_STEP_S = 0.100

Chains = tuple[tuple[float, ...], ...]
"""Sleep seconds of each step of each chain."""


def uneven_chains(chains: int, length: int, *, seed: int = 0, scale: float = 1.0) -> Chains:
    """Return ``chains`` chains of ``length`` durations, uniform in 5-100 ms times ``scale``."""
    rng = random.Random(seed)
    return tuple(
        tuple(rng.uniform(MIN_STEP_S, MAX_STEP_S) * scale for _ in range(length))
        for _ in range(chains)
    )


def step_id(chain: int, step: int) -> str:
    """Return the task id of one step of one chain, such as ``"c0.s3"``."""
    return f"c{chain}.s{step}"


def chain_parents(durations: Chains) -> dict[str, tuple[str, ...]]:
    """Return the parents of every step: the step before it in its chain, if any."""
    return {
        step_id(chain, step): (step_id(chain, step - 1),) if step else ()
        for chain, steps in enumerate(durations)
        for step in range(len(steps))
    }


@dataclass(frozen=True, slots=True)
class UnevenResult:
    """Makespans of the chains on the executor and on LangGraph, in seconds."""

    chains: int
    length: int
    seed: int
    scale: float
    critical_path_s: float
    superstep_bound_s: float
    makespan_s: float
    langgraph_makespan_s: float

    @property
    def ratio(self) -> float:
        return self.makespan_s / self.critical_path_s

    @property
    def langgraph_ratio(self) -> float:
        return self.langgraph_makespan_s / self.critical_path_s

    @property
    def goals(self) -> dict[str, bool]:
        return {"ratio_le_1_03": self.ratio <= GOAL_RATIO}

    def to_dict(self) -> dict[str, Any]:
        """Return the measurements, the ratios derived from them and the goals."""
        return {
            **asdict(self),
            "ratio": self.ratio,
            "langgraph_ratio": self.langgraph_ratio,
            "goals": self.goals,
        }


async def measure_uneven(
    chains: int, length: int, *, seed: int = 0, scale: float = 1.0
) -> UnevenResult:
    """Run the chains on the executor with one worker per chain, then on LangGraph."""
    # Imported here so that importing the benchmarks does not load LangGraph.
    from ._langgraph import build_langgraph, run_langgraph  # noqa: PLC0415

    if chains < 1 or length < 1 or scale <= 0:
        raise ValueError(
            f"chains and length must be at least 1 and scale positive, "
            f"got {chains}, {length} and {scale}"
        )
    durations = uneven_chains(chains, length, seed=seed, scale=scale)
    parents = chain_parents(durations)
    seconds = {
        step_id(chain, step): duration
        for chain, steps in enumerate(durations)
        for step, duration in enumerate(steps)
    }

    tasks = [
        Task(
            id=tid,
            fn=asyncio.sleep,
            args=(seconds[tid],),
            cost=seconds[tid],
            dependencies=frozenset(step_parents),
        )
        for tid, step_parents in parents.items()
    ]
    executor = DagExecutor(max_workers=chains)
    makespan, report = await timed(lambda: executor.run(tasks))
    if not report.ok:
        raise RuntimeError("the executor did not finish every step of the chains")

    async def sleep_step(tid: str) -> None:
        await asyncio.sleep(seconds[tid])

    graph = build_langgraph(parents, sleep_step)
    langgraph_makespan, done = await timed(lambda: run_langgraph(graph, len(parents)))
    if len(done) != len(parents):
        raise RuntimeError(f"LangGraph ran {len(done)} of {len(parents)} steps of the chains")

    return UnevenResult(
        chains=chains,
        length=length,
        seed=seed,
        scale=scale,
        critical_path_s=max(sum(steps) for steps in durations),
        superstep_bound_s=sum(max(column) for column in zip(*durations, strict=True)),
        makespan_s=makespan,
        langgraph_makespan_s=langgraph_makespan,
    )
