"""Benchmarks of the runtime: per-task overhead, uneven chains and real workflows.

Each benchmark compares the :class:`~dragonscale_lc.runtime.DagExecutor` with
a reference: bare asyncio and LangGraph for overhead, LangGraph's supersteps
for uneven chains, and the critical path, a zero-overhead list-scheduling
simulation and FIFO order for workflows in WfFormat. The ``dragonscale
bench`` command runs them.

Example:
    >>> from dragonscale_lc.bench import simulate_list_schedule
    >>> simulate_list_schedule({"a": 2.0, "b": 1.0, "c": 1.0}, {"a": (), "b": (), "c": ()}, 2)
    2.0
"""

from __future__ import annotations

from ._common import Dag, critical_path, random_dag, topological_order
from ._langgraph import build_langgraph, run_langgraph
from ._overhead import (
    OverheadResult,
    executor_tasks,
    measure_overhead,
    noop,
    run_floor,
    run_naive,
)
from ._uneven import UnevenResult, chain_parents, measure_uneven, uneven_chains
from ._wfformat import Workflow, load_workflow
from ._workflow import (
    WorkflowResult,
    measure_workflow,
    scale_for_critical_path,
    simulate_list_schedule,
    upward_ranks_of,
)

__all__ = [
    "Dag",
    "OverheadResult",
    "UnevenResult",
    "Workflow",
    "WorkflowResult",
    "build_langgraph",
    "chain_parents",
    "critical_path",
    "executor_tasks",
    "load_workflow",
    "measure_overhead",
    "measure_uneven",
    "measure_workflow",
    "noop",
    "random_dag",
    "run_floor",
    "run_langgraph",
    "run_naive",
    "scale_for_critical_path",
    "simulate_list_schedule",
    "topological_order",
    "uneven_chains",
    "upward_ranks_of",
]
