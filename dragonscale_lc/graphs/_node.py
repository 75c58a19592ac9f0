"""LLMCompilerNode: the whole compiler as one node of a user's own ``StateGraph``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphInterrupt

from ..compiler import DEFAULT_TASK_TIMEOUT
from ..runtime import FailurePolicy
from ._graph import StepNode, stream_writer
from ._steps import CompilerSteps

if TYPE_CHECKING:
    from ..tools._config import ToolsConfig

__all__ = ["LLMCompilerNode"]


class LLMCompilerNode(StepNode):
    """Answer the last human message of ``messages`` with LLMCompiler, inside any ``StateGraph``.

    The node plans, runs the tasks, joins and replans within one step. It
    returns ``{"messages": [...]}``: for each round an ``AIMessage`` with one
    tool call per task followed by a ``ToolMessage`` per result, then an
    ``AIMessage`` with the answer, whose ``response_metadata["dragonscale"]``
    lists the tasks. The list stays valid input for chat models that require
    every tool call to be answered. Progress goes to the custom stream, and the
    planner's and joiner's tokens to the messages stream, as in
    :func:`create_llm_compiler_graph`.

    The node works in sync (``invoke``) and async (``ainvoke``) graphs, and can
    be called directly with a state and a config.

    Because a node saves nothing until it returns, a tool that calls
    ``interrupt()`` pauses the graph only after its sibling tasks settle, and
    resuming runs the whole node again: the planner is asked again and every
    task runs again. Use :func:`create_llm_compiler_graph` (as a subgraph, if
    need be) when completed tasks must not run twice.

    Args:
        model: Chat model that writes plans, and joins unless ``joiner_model`` is set.
        tools: Tools the plans may call: LangChain tools or plain functions.
        joiner_model: Chat model that decides between answering and replanning.
        direct_join: Answer with the last task's output instead of asking a joiner.
        max_replans: How many times the node may plan again after the first plan.
        max_concurrency: Most tool calls running at once.
        task_timeout: Seconds before a tool call is cancelled and becomes an error observation
            (300 by default; ``None`` for no limit).
        failure_policy: Policy for the tasks downstream of a failed tool call.
        name: The node's name in traces.

    Example:
        >>> from langgraph.graph import START, MessagesState, StateGraph
        >>> builder = StateGraph(MessagesState)  # doctest: +SKIP
        >>> builder.add_node("compiler", LLMCompilerNode(model, tools))  # doctest: +SKIP
        >>> builder.add_edge(START, "compiler")  # doctest: +SKIP
    """

    def __init__(
        self,
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
        name: str = "llm_compiler",
    ) -> None:
        self.steps = CompilerSteps(
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
        self.name = name

    def __call__(
        self, state: Mapping[str, Any], config: RunnableConfig | None = None
    ) -> dict[str, Any]:
        """Run the node synchronously; the same as :meth:`invoke`."""
        return self.invoke(state, config)

    async def arun(self, state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        writer = stream_writer()
        messages = state.get("messages", [])
        progress = None
        new_messages: list[BaseMessage] = []
        while progress is None or progress["answer"] is None:
            step = await self.steps.plan_and_execute(messages, progress, config, writer)
            if step.interrupts:
                raise GraphInterrupt(tuple(step.interrupts))
            progress, joined = await self.steps.join(step.progress, config, writer)
            new_messages += [*step.messages, *joined]
        return {"messages": new_messages}
