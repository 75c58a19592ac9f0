"""Benchmarks of the runtime: overhead, uneven chains, workflows, pre-emption and memory.

Each benchmark compares the :class:`~dragonscale_lc.runtime.DagExecutor` with
a reference: bare asyncio and LangGraph for overhead, LangGraph's supersteps
for uneven chains, and the critical path, a zero-overhead list-scheduling
simulation and FIFO order for workflows in WfFormat. The pre-emption
benchmark compares an urgent task's start with and without pre-emption; the
memory benchmark measures a large graph's peak memory against a fixed budget.
The workflow benchmark also runs on a local Dask cluster, with the local
backend's per-task overhead next to Dask's. The DagRunnable benchmark
compares ``DagRunnable`` with nested ``RunnableParallel`` steps on uneven
chains. The TimedScheduler benchmarks
measure its CPU use while idle and the drift of a fixed-rate job against a
naive sleep loop. The compiler benchmark times LLMCompiler against a
sequential ReAct loop and plan-then-execute, with a simulated chat model and
tools of fixed latency.
The ``dragonscale bench`` command runs them.

Example:
    >>> from dragonscale_lc.bench import simulate_list_schedule
    >>> simulate_list_schedule({"a": 2.0, "b": 1.0, "c": 1.0}, {"a": (), "b": (), "c": ()}, 2)
    2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes as _lazy_attributes
from ._common import Dag, critical_path, random_dag, topological_order
from ._overhead import (
    OverheadResult,
    executor_tasks,
    measure_overhead,
    noop,
    run_floor,
    run_naive,
)
from ._preemption import (
    PreemptionResult,
    PreemptionTrial,
    measure_preemption,
    run_preemption_trial,
)
from ._scheduler import (
    SchedulerDriftResult,
    SchedulerIdleResult,
    measure_scheduler_drift,
    measure_scheduler_idle,
    run_naive_loop,
)
from ._uneven import UnevenResult, chain_parents, measure_uneven, uneven_chains
from ._wfformat import Workflow, load_workflow
from ._workflow import (
    WorkflowResult,
    mean_overhead_ms,
    measure_workflow,
    scale_for_critical_path,
    simulate_list_schedule,
    upward_ranks_of,
)

if TYPE_CHECKING:
    from ._agent import SimulatedAgent, SleepingTools, run_react
    from ._compiler import (
        CompilerBenchResult,
        CompilerShape,
        ShapeResult,
        StrategyRun,
        compiler_shapes,
        measure_compiler,
    )
    from ._dag_runnable import (
        DagRunnableResult,
        build_dag_runnable,
        build_nested_parallel,
        measure_dag_runnable,
    )
    from ._dask import DaskClusterSpec, measure_round_trip, measure_workflow_on_dask
    from ._langgraph import build_langgraph, run_langgraph
    from ._memory import (
        MemoryResult,
        measure_memory,
        measure_memory_in_process,
        peak_rss_mb,
        ru_maxrss_mb,
    )

# Imported on first use. The Dask module needs the optional dask extra. The
# LangGraph and DagRunnable modules load LangGraph and LangChain, which the
# memory benchmark's fresh process should not pay for. That process runs the
# memory module with `python -m`, which warns if the package imported the
# module already.
_LAZY = {
    **dict.fromkeys(["SimulatedAgent", "SleepingTools", "run_react"], "_agent"),
    **dict.fromkeys(
        [
            "CompilerBenchResult",
            "CompilerShape",
            "ShapeResult",
            "StrategyRun",
            "compiler_shapes",
            "measure_compiler",
        ],
        "_compiler",
    ),
    **dict.fromkeys(
        [
            "DagRunnableResult",
            "build_dag_runnable",
            "build_nested_parallel",
            "measure_dag_runnable",
        ],
        "_dag_runnable",
    ),
    **dict.fromkeys(["build_langgraph", "run_langgraph"], "_langgraph"),
    **dict.fromkeys(["DaskClusterSpec", "measure_round_trip", "measure_workflow_on_dask"], "_dask"),
    **dict.fromkeys(
        [
            "MemoryResult",
            "measure_memory",
            "measure_memory_in_process",
            "peak_rss_mb",
            "ru_maxrss_mb",
        ],
        "_memory",
    ),
}


__getattr__, __dir__ = _lazy_attributes(globals(), _LAZY)

__all__ = [
    "CompilerBenchResult",
    "CompilerShape",
    "Dag",
    "DagRunnableResult",
    "DaskClusterSpec",
    "MemoryResult",
    "OverheadResult",
    "PreemptionResult",
    "PreemptionTrial",
    "SchedulerDriftResult",
    "SchedulerIdleResult",
    "ShapeResult",
    "SimulatedAgent",
    "SleepingTools",
    "StrategyRun",
    "UnevenResult",
    "Workflow",
    "WorkflowResult",
    "build_dag_runnable",
    "build_langgraph",
    "build_nested_parallel",
    "chain_parents",
    "compiler_shapes",
    "critical_path",
    "executor_tasks",
    "load_workflow",
    "mean_overhead_ms",
    "measure_compiler",
    "measure_dag_runnable",
    "measure_memory",
    "measure_memory_in_process",
    "measure_overhead",
    "measure_preemption",
    "measure_round_trip",
    "measure_scheduler_drift",
    "measure_scheduler_idle",
    "measure_uneven",
    "measure_workflow",
    "measure_workflow_on_dask",
    "noop",
    "peak_rss_mb",
    "random_dag",
    "ru_maxrss_mb",
    "run_floor",
    "run_langgraph",
    "run_naive",
    "run_naive_loop",
    "run_preemption_trial",
    "run_react",
    "scale_for_critical_path",
    "simulate_list_schedule",
    "topological_order",
    "uneven_chains",
    "upward_ranks_of",
]
