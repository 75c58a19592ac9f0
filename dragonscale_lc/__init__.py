"""dragonscale_lc: fast, dependable LLM tool use.

An LLMCompiler-style planner writes a plan of tool calls as a task graph, the
Dragonscale runtime runs the graph concurrently, and a joiner answers or
replans. Everything is a LangChain Runnable.

Example:
    >>> from dragonscale_lc import LLMCompiler, builtin_tools
    >>> plan = '1. math("6 * 7")\\n2. join()'
    >>> LLMCompiler(tools=builtin_tools(), plan=plan).invoke("What is 6 times 7?").content
    '42'
"""

from __future__ import annotations

from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from ._errors import (
    ConfigurationError,
    DagRunError,
    DragonscaleError,
    GraphError,
    ModelCallError,
    PlanError,
    ReplanLimitError,
    RunError,
    TaskError,
    TaskTimeoutError,
    UsageError,
)
from ._lazy import lazy_attributes as _lazy_attributes
from .runtime import (
    DagExecutor,
    ErrorObservation,
    Event,
    EventBus,
    FailurePolicy,
    Ref,
    RunReport,
    ScheduledJob,
    Task,
    TaskGraph,
    TaskRecord,
    TaskStatus,
    Template,
    TimedScheduler,
    executor_job,
)

if TYPE_CHECKING:
    from .compiler import (
        CompilerResult,
        Finish,
        Joiner,
        LLMCompiler,
        PlanTask,
        Replan,
        StreamingPlanParser,
        parse_join_text,
        parse_plan,
    )
    from .graphs import LLMCompilerNode, LLMCompilerState, create_llm_compiler_graph
    from .runnables import DagNode, DagRunnable
    from .tools import argmax_tool, argmin_tool, builtin_tools, country_facts_tool, math_tool

__version__ = _version("dragonscale_lc")

# The compiler, the Runnables, the graphs and the tools load LangChain, and
# the graphs LangGraph. They are imported on first use, so
# `import dragonscale_lc.runtime` stays free of them.
_LAZY = {
    **dict.fromkeys(
        [
            "CompilerResult",
            "Finish",
            "Joiner",
            "LLMCompiler",
            "PlanTask",
            "Replan",
            "StreamingPlanParser",
            "parse_join_text",
            "parse_plan",
        ],
        "compiler",
    ),
    **dict.fromkeys(["DagNode", "DagRunnable"], "runnables"),
    **dict.fromkeys(["LLMCompilerNode", "LLMCompilerState", "create_llm_compiler_graph"], "graphs"),
    **dict.fromkeys(
        ["argmax_tool", "argmin_tool", "builtin_tools", "country_facts_tool", "math_tool"], "tools"
    ),
}


__getattr__, __dir__ = _lazy_attributes(globals(), _LAZY)

__all__ = [
    "CompilerResult",
    "ConfigurationError",
    "DagExecutor",
    "DagNode",
    "DagRunError",
    "DagRunnable",
    "DragonscaleError",
    "ErrorObservation",
    "Event",
    "EventBus",
    "FailurePolicy",
    "Finish",
    "GraphError",
    "Joiner",
    "LLMCompiler",
    "LLMCompilerNode",
    "LLMCompilerState",
    "ModelCallError",
    "PlanError",
    "PlanTask",
    "Ref",
    "Replan",
    "ReplanLimitError",
    "RunError",
    "RunReport",
    "ScheduledJob",
    "StreamingPlanParser",
    "Task",
    "TaskError",
    "TaskGraph",
    "TaskRecord",
    "TaskStatus",
    "TaskTimeoutError",
    "Template",
    "TimedScheduler",
    "UsageError",
    "__version__",
    "argmax_tool",
    "argmin_tool",
    "builtin_tools",
    "country_facts_tool",
    "create_llm_compiler_graph",
    "executor_job",
    "math_tool",
    "parse_join_text",
    "parse_plan",
]
