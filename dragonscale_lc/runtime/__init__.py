"""The Dragonscale runtime: task graphs, their analysis and concurrent execution.

The TimedScheduler starts jobs, DAG runs among them, at set times.

This package has no LangChain, LangGraph, OpenAI, MCP, WebAssembly or Dask
imports; it runs any sync or async Python callables.
"""

from ._analysis import DEFAULT_COST, CriticalPath, critical_path, downward_ranks, upward_ranks
from ._analysis_cache import AnalysisCache
from ._backend import Call, ExecutionBackend, LocalBackend
from ._cache import MISSING, Cache, CacheStats
from ._checkpoint import CheckpointToken, Preempted, checkpoint, current_checkpoint
from ._costs import CostModel
from ._delta import Compaction, Delta, DeltaKind
from ._events import DEFAULT_QUEUE_SIZE, Event, EventBus, OverflowPolicy, Subscription
from ._executor import DagExecutor
from ._graph import TaskGraph
from ._job import (
    ErrorPolicy,
    Firing,
    JobKind,
    JobState,
    MisfirePolicy,
    ScheduledJob,
    current_firing,
)
from ._job_targets import executor_job
from ._outcome import Outcome, classify
from ._pool import PoolResize, WorkerPool
from ._ranks import IncrementalRanks
from ._refs import ErrorObservation, Ref, Template, find_refs, resolve
from ._report import RunReport, TaskRecord
from ._retry import RetryPolicy, is_transient
from ._run import Run
from ._scheduler import TimedScheduler
from ._strategy import DispatchKey, Strategy
from ._task import FailurePolicy, Task, TaskStatus

__all__ = [
    "DEFAULT_COST",
    "DEFAULT_QUEUE_SIZE",
    "MISSING",
    "AnalysisCache",
    "Cache",
    "CacheStats",
    "Call",
    "CheckpointToken",
    "Compaction",
    "CostModel",
    "CriticalPath",
    "DagExecutor",
    "Delta",
    "DeltaKind",
    "DispatchKey",
    "ErrorObservation",
    "ErrorPolicy",
    "Event",
    "EventBus",
    "ExecutionBackend",
    "FailurePolicy",
    "Firing",
    "IncrementalRanks",
    "JobKind",
    "JobState",
    "LocalBackend",
    "MisfirePolicy",
    "Outcome",
    "OverflowPolicy",
    "PoolResize",
    "Preempted",
    "Ref",
    "RetryPolicy",
    "Run",
    "RunReport",
    "ScheduledJob",
    "Strategy",
    "Subscription",
    "Task",
    "TaskGraph",
    "TaskRecord",
    "TaskStatus",
    "Template",
    "TimedScheduler",
    "WorkerPool",
    "checkpoint",
    "classify",
    "critical_path",
    "current_checkpoint",
    "current_firing",
    "downward_ranks",
    "executor_job",
    "find_refs",
    "is_transient",
    "resolve",
    "upward_ranks",
]
