"""The Dragonscale runtime: task graphs, their analysis and concurrent execution.

This package has no LangChain, LangGraph, OpenAI, MCP, WebAssembly or Dask
imports; it runs any sync or async Python callables.
"""

from ._analysis import DEFAULT_COST, upward_ranks
from ._events import Event, EventBus, Subscription
from ._executor import DagExecutor, FailurePolicy, Run
from ._graph import TaskGraph
from ._refs import ErrorObservation, Ref, Template, find_refs, resolve
from ._report import RunReport, TaskRecord
from ._task import Task, TaskStatus

__all__ = [
    "DEFAULT_COST",
    "DagExecutor",
    "ErrorObservation",
    "Event",
    "EventBus",
    "FailurePolicy",
    "Ref",
    "Run",
    "RunReport",
    "Subscription",
    "Task",
    "TaskGraph",
    "TaskRecord",
    "TaskStatus",
    "Template",
    "find_refs",
    "resolve",
    "upward_ranks",
]
