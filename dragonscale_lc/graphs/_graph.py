"""The prebuilt LLMCompiler graph: plan-and-execute and join nodes with a replan edge."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.errors import GraphInterrupt
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from .._sync import run_sync
from ..compiler import DEFAULT_TASK_TIMEOUT
from ..runtime import FailurePolicy
from ._state import LLMCompilerState, is_unfinished
from ._steps import CompilerSteps, Writer

if TYPE_CHECKING:
    from ..tools._config import ToolsConfig

__all__ = ["StepNode", "create_llm_compiler_graph", "recursion_limit", "stream_writer"]

PLAN_AND_EXECUTE = "plan_and_execute"
JOIN = "join"


def create_llm_compiler_graph(
    model: BaseChatModel,
    tools: Sequence[BaseTool | Callable[..., Any]],
    *,
    joiner_model: BaseChatModel | None = None,
    direct_join: bool = False,
    max_replans: int = 2,
    max_concurrency: int = 16,
    task_timeout: float | None = DEFAULT_TASK_TIMEOUT,
    failure_policy: FailurePolicy | str = FailurePolicy.CONTINUE,
    tools_config: str | PathLike[str] | ToolsConfig | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    interrupt_before: Sequence[str] | None = None,
    interrupt_after: Sequence[str] | None = None,
    name: str = "llm_compiler",
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build a LangGraph graph that answers the last human message with LLMCompiler.

    The ``plan_and_execute`` node streams the planner's plan and runs each
    task on the Dragonscale runtime as soon as its line is parsed. The
    ``join`` node either returns the answer, which ends the graph, or requests
    a new plan, which routes back to ``plan_and_execute``. The state
    (:class:`LLMCompilerState`) is ``MessagesState`` plus a JSON-ready
    ``compiler`` key with every round's plan, tasks, join decision and token
    usage. Each settled round adds an ``AIMessage`` with one tool call per task
    and a ``ToolMessage`` per result to ``messages``; the answer is the last
    ``AIMessage``.

    Streaming. ``stream_mode="custom"`` yields one dict per progress event,
    its ``topic`` one of ``plan.task_parsed``, ``task.started``,
    ``task.completed``, ``task.failed``, ``task.skipped``, ``task.cancelled``,
    ``task.retrying``, ``task.interrupted`` (the tool called ``interrupt()``),
    ``task.deferred`` (it needs an interrupted task's output),
    ``plan.completed`` and ``join.decided``. ``stream_mode="messages"``
    yields the planner's and the joiner's tokens from the nodes that call them.

    Resuming. With a checkpointer, a thread resumed after an interrupt or a
    failure does not run completed tasks again, and later rounds read earlier
    outputs from the state. When a tool calls LangGraph's ``interrupt()``,
    its siblings finish first and their results are saved; the graph then
    pauses at the interrupt, and ``Command(resume=...)`` runs only the unfinished
    tasks. The tool's code before ``interrupt()`` runs again on each of those
    steps, as in any LangGraph node.

    What cannot be saved: a process killed in the middle of a node loses that
    node's step, so the round's unfinished tasks run again (and a killed
    planning step asks the planner again). Outputs are stored as JSON values,
    so a later round that references an output of another type (a tuple, an
    object) gets its JSON form (a list, its ``str()``). Resume values of
    several tools that call ``interrupt()`` in the same step are matched in
    the order the tools call it, which depends on timing.

    Args:
        model: Chat model that writes plans, and joins unless ``joiner_model`` is set.
        tools: Tools the plans may call: LangChain tools or plain functions.
        tools_config: A tool configuration file (or its loaded form) whose
            Python and WASM tools are added. For MCP servers, open the file
            with ``async with config.open() as tools`` and pass ``tools``.
        joiner_model: Chat model that decides between answering and replanning.
        direct_join: Answer with the last task's output instead of asking a joiner.
        max_replans: How many times the graph may plan again after the first plan.
        max_concurrency: Most tool calls running at once; ``RunnableConfig["max_concurrency"]``
            overrides it.
        task_timeout: Seconds before a tool call is cancelled and becomes an error observation
            (300 by default; ``None`` for no limit).
        failure_policy: Policy for the tasks downstream of a failed tool call.
        checkpointer: Where LangGraph saves the state after every step.
        interrupt_before: Nodes (``"plan_and_execute"``, ``"join"``) to pause before.
        interrupt_after: Nodes to pause after.
        name: The graph's name in traces and events.

    Returns:
        The compiled graph, with a recursion limit of :func:`recursion_limit`
        steps; a ``recursion_limit`` in the call's config overrides it.

    Raises:
        ConfigurationError: A setting is invalid, no tools are given, or two
            tools share a name.

    Example:
        >>> from langchain_openai import ChatOpenAI
        >>> from dragonscale_lc.tools import builtin_tools
        >>> graph = create_llm_compiler_graph(ChatOpenAI(model="gpt-4o"), builtin_tools())
        >>> graph.invoke({"messages": [("user", "Japan or Vietnam: which has more people?")]})[
        ...     "messages"
        ... ][-1].content  # doctest: +SKIP
        'Japan'
    """
    steps = CompilerSteps(
        model,
        tools,
        joiner_model=joiner_model,
        direct_join=direct_join,
        max_replans=max_replans,
        max_concurrency=max_concurrency,
        task_timeout=task_timeout,
        failure_policy=failure_policy,
        tools_config=tools_config,
    )
    builder = StateGraph(LLMCompilerState)
    builder.add_node(PLAN_AND_EXECUTE, _PlanAndExecuteNode(steps))
    builder.add_node(JOIN, _JoinNode(steps))
    builder.add_edge(START, PLAN_AND_EXECUTE)
    builder.add_conditional_edges(
        PLAN_AND_EXECUTE, _after_plan_and_execute, [PLAN_AND_EXECUTE, JOIN]
    )
    builder.add_conditional_edges(JOIN, _after_join, [PLAN_AND_EXECUTE, END])
    graph = builder.compile(
        checkpointer=checkpointer,
        interrupt_before=list(interrupt_before or []),
        interrupt_after=list(interrupt_after or []),
        name=name,
    )
    return graph.with_config(recursion_limit=recursion_limit(max_replans))


def recursion_limit(max_replans: int) -> int:
    """Return the most graph steps one call of the prebuilt graph can take.

    Each round takes a plan-and-execute step and a join step, and one more
    plan-and-execute step when a tool's interrupt made it save the round's
    progress before pausing. LangGraph counts the step that reads the input too.
    """
    return 3 * (max_replans + 1) + 1


def _after_plan_and_execute(state: LLMCompilerState) -> str:
    progress = state.get("compiler")
    if progress is not None and progress["rounds"] and is_unfinished(progress["rounds"][-1]):
        return PLAN_AND_EXECUTE
    return JOIN


def _after_join(state: LLMCompilerState) -> str:
    progress = state.get("compiler")
    return END if progress is None or progress["answer"] is not None else PLAN_AND_EXECUTE


def stream_writer() -> Writer:
    """Return LangGraph's custom stream writer, or one that drops items outside a graph."""
    try:
        return get_stream_writer()
    except RuntimeError:  # called outside a graph, where there is no stream
        return lambda _item: None


class StepNode(Runnable[Any, dict[str, Any]]):
    """A graph node that runs sync or async: ``invoke`` drives ``ainvoke`` on an event loop."""

    def invoke(
        self, input: Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return run_sync(lambda: self.ainvoke(input, config, **kwargs))

    async def ainvoke(
        self, input: Mapping[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return await self.arun(input, ensure_config(config))

    async def arun(self, state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        """Return the node's state update."""
        raise NotImplementedError


class _PlanAndExecuteNode(StepNode):
    def __init__(self, steps: CompilerSteps) -> None:
        self.steps = steps
        self.name = PLAN_AND_EXECUTE

    async def arun(self, state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        step = await self.steps.plan_and_execute(
            state.get("messages", []), state.get("compiler"), config, stream_writer()
        )
        if step.interrupts and not step.progressed:
            raise GraphInterrupt(tuple(step.interrupts))
        return {"compiler": step.progress, "messages": step.messages}


class _JoinNode(StepNode):
    def __init__(self, steps: CompilerSteps) -> None:
        self.steps = steps
        self.name = JOIN

    async def arun(self, state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        progress, messages = await self.steps.join(state["compiler"], config, stream_writer())
        return {"compiler": progress, "messages": messages}
