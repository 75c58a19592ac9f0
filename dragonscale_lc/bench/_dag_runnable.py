"""DagRunnable against nested RunnableParallel on parallel chains of uneven sleeps.

Both run the same chains of ``RunnableLambda`` sleeps. The nested
``RunnableParallel`` runs one step of every chain per level, and each level
waits for its slowest step, so its makespan tends to the sum over steps of
the slowest chain at that step. ``DagRunnable`` starts each step as soon as
the step before it in its chain ends, so its makespan stays close to the
longest chain.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel

from ..runnables import DagNode, DagRunnable
from ._common import timed
from ._uneven import Chains, step_id, uneven_chains

__all__ = [
    "DagRunnableResult",
    "build_dag_runnable",
    "build_nested_parallel",
    "measure_dag_runnable",
]


def sleep_step(name: str, seconds: float) -> Runnable[Any, str]:
    """Return a Runnable that sleeps ``seconds`` on the event loop and returns ``name``."""

    async def step(_: Any) -> str:
        await asyncio.sleep(seconds)
        return name

    return RunnableLambda(step, name=name)


def build_nested_parallel(durations: Chains) -> Runnable[Any, dict[str, str]]:
    """Return the chains as one ``RunnableParallel`` per step, piped one after another.

    Its output maps each chain's last step id to that id.
    """
    length = len(durations[0])
    levels: list[Runnable[Any, Any]] = [
        RunnableParallel(
            {
                f"c{chain}": sleep_step(step_id(chain, step), steps[step])
                for chain, steps in enumerate(durations)
            }
        )
        for step in range(length)
    ]
    last: Runnable[Any, dict[str, str]] = RunnableLambda(
        lambda level: {
            step_id(chain, length - 1): level[f"c{chain}"] for chain in range(len(durations))
        }
    )
    sequence: Runnable[Any, Any] = levels[0]
    for level in [*levels[1:], last]:
        sequence = sequence | level
    return sequence


def build_dag_runnable(durations: Chains, *, outputs: list[str] | None = None) -> DagRunnable:
    """Return the chains as one ``DagRunnable`` with a node per step."""
    nodes = {
        step_id(chain, step): DagNode(
            sleep_step(step_id(chain, step), seconds),
            depends_on=[step_id(chain, step - 1)] if step else [],
            cost=seconds,
        )
        for chain, steps in enumerate(durations)
        for step, seconds in enumerate(steps)
    }
    return DagRunnable(nodes=nodes, outputs=outputs, max_concurrency=len(durations))


@dataclass(frozen=True, slots=True)
class DagRunnableResult:
    """Makespans of the chains as nested RunnableParallel and as DagRunnable, in seconds."""

    chains: int
    length: int
    seed: int
    scale: float
    critical_path_s: float
    superstep_bound_s: float
    nested_parallel_makespan_s: float
    dag_runnable_makespan_s: float

    @property
    def ratio(self) -> float:
        """Nested RunnableParallel's makespan over DagRunnable's; above 1 when DagRunnable wins."""
        return self.nested_parallel_makespan_s / self.dag_runnable_makespan_s

    def to_dict(self) -> dict[str, Any]:
        """Return the measurements and the ratio."""
        return {**asdict(self), "ratio": self.ratio}


async def measure_dag_runnable(
    chains: int, length: int, *, seed: int = 0, scale: float = 1.0
) -> DagRunnableResult:
    """Run the chains as nested RunnableParallel, then as DagRunnable, and time both.

    Raises:
        ValueError: A count is below 1 or ``scale`` is not positive.
        RuntimeError: A runner returned other outputs than the chains' last steps.
    """
    if chains < 1 or length < 1 or scale <= 0:
        raise ValueError(
            f"chains and length must be at least 1 and scale positive, "
            f"got {chains}, {length} and {scale}"
        )
    durations = uneven_chains(chains, length, seed=seed, scale=scale)
    last_steps = [step_id(chain, length - 1) for chain in range(chains)]
    expected = {name: name for name in last_steps}

    nested = build_nested_parallel(durations)
    nested_makespan, nested_output = await timed(lambda: nested.ainvoke(None))
    dag = build_dag_runnable(durations, outputs=last_steps)
    dag_makespan, dag_output = await timed(lambda: dag.ainvoke(None))
    for runner, output in (("nested RunnableParallel", nested_output), ("DagRunnable", dag_output)):
        if output != expected:
            raise RuntimeError(f"{runner} returned {output!r}, expected {expected!r}")

    return DagRunnableResult(
        chains=chains,
        length=length,
        seed=seed,
        scale=scale,
        critical_path_s=max(sum(steps) for steps in durations),
        superstep_bound_s=sum(max(column) for column in zip(*durations, strict=True)),
        nested_parallel_makespan_s=nested_makespan,
        dag_runnable_makespan_s=dag_makespan,
    )
