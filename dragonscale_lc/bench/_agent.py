"""The compiler benchmark's simulated agent: slow tools, scripted replies and a ReAct loop.

The simulated chat model stores one plan per question. As the planner it
writes that plan. As the joiner it returns a Finish with the last observation
in its prompt. As a ReAct agent it writes the plan's next call, with the
earlier observations from its prompt in place of the ``$N`` references. Every
reply is computed from the prompt, so a wrong observation gives a wrong answer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool

from .._errors import RunError
from ..compiler import Finish, ToolBox, format_output, parse_join_text, parse_plan
from ..tools import builtin_tools

__all__ = ["SimulatedAgent", "SleepingTools", "run_react"]

_QUESTION = re.compile(r"^Question: (.+)$", re.MULTILINE)
_OBSERVATION = re.compile(r"^Observation: (.*)$", re.MULTILINE)
_CALL_LINE = re.compile(r"^\s*\d+\.\s*(.+?)\s*$")
_REFERENCE = re.compile(r"\$\{(\d+)\}|\$(\d+)")
_ACTION = re.compile(r"^Action: (.+)$", re.MULTILINE)

_REACT_SYSTEM = """\
Answer the question with the tools below, one call at a time. Reply with one \
thought and one action:
Thought: <what you need next>
Action: <tool_name(arguments)>
You then get the tool's output as an observation. When you can answer, reply:
Thought: <why you can answer>
Action: Finish(<answer>)

Tools:
{tools}"""

_REACT_STEP_THOUGHT = "I need this value next."
_FINISH_THOUGHT = "The last observation answers the question."


class SleepingTools:
    """The built-in tools, each waiting ``latency`` seconds before it runs, with a call count."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls = 0
        self.tools = [self._with_latency(tool) for tool in builtin_tools()]

    def _with_latency(self, tool: BaseTool) -> BaseTool:
        async def call(**tool_input: Any) -> Any:
            self.calls += 1
            await asyncio.sleep(self.latency)
            return await tool.ainvoke(tool_input)

        return StructuredTool.from_function(
            coroutine=call,
            name=tool.name,
            description=tool.description,
            args_schema=tool.args_schema,
        )


class SimulatedAgent:
    """Replies of the simulated model in its three roles, from one plan per question.

    Args:
        plans: Plan text by question, in the compiler's plan format.
    """

    def __init__(self, plans: Mapping[str, str]) -> None:
        self._plans = dict(plans)

    def plan(self, messages: list[BaseMessage]) -> str:
        """Return the plan for the question in the prompt, as the planner."""
        return self._plans[_question_in(messages)]

    def join(self, messages: list[BaseMessage]) -> str:
        """Return a Finish decision whose answer is the prompt's last observation."""
        observations = _OBSERVATION.findall(messages[-1].text)
        if not observations:
            raise RunError("the joiner prompt has no observation to answer with")
        return f"Thought: {_FINISH_THOUGHT}\nAction: Finish({observations[-1]})"

    def react_step(self, messages: list[BaseMessage]) -> str:
        """Return the next thought and action of a ReAct agent that follows the plan.

        The step is the number of observations so far. References to earlier
        calls become those calls' observations, as a model would copy them.
        """
        observations: list[str] = [
            observation
            for message in messages[2:]
            if isinstance(message, HumanMessage)
            for observation in _OBSERVATION.findall(message.text)
        ]
        calls = _plan_calls(self._plans[_question_in(messages)])
        if len(observations) >= len(calls):
            return f"Thought: {_FINISH_THOUGHT}\nAction: Finish({observations[-1]})"

        def observation_of(match: re.Match[str]) -> str:
            return observations[int(match.group(1) or match.group(2)) - 1]

        action = _REFERENCE.sub(observation_of, calls[len(observations)])
        return f"Thought: {_REACT_STEP_THOUGHT}\nAction: {action}"


async def run_react(
    question: str,
    model: BaseChatModel,
    toolbox: ToolBox,
    *,
    max_steps: int = 20,
    config: RunnableConfig | None = None,
) -> str:
    """Answer ``question`` ReAct-style: one model call per tool call, then one for the answer.

    Each model call sees the question and every earlier thought, action and
    observation. The tool runs only after the model's whole reply has arrived.

    Raises:
        RunError: A reply has no action, names an invalid call, or the loop
            reaches ``max_steps`` model calls without a Finish.
    """
    messages: list[BaseMessage] = [
        SystemMessage(_REACT_SYSTEM.format(tools=toolbox.describe())),
        HumanMessage(f"Question: {question}"),
    ]
    for _ in range(max_steps):
        reply = await model.ainvoke(messages, config)
        action = _last_action(reply.text)
        if action.startswith("Finish("):
            decision = parse_join_text(reply.text)
            if isinstance(decision, Finish):
                return decision.answer
        output = await _call_tool(toolbox, action, config)
        messages.append(AIMessage(reply.text))
        messages.append(HumanMessage(f"Observation: {format_output(output)}"))
    raise RunError(f"the ReAct loop made {max_steps} model calls without a Finish action")


def _question_in(messages: list[BaseMessage]) -> str:
    # Only human messages: the planner's system prompt has example questions.
    for message in messages:
        match = _QUESTION.search(message.text) if isinstance(message, HumanMessage) else None
        if match:
            return match.group(1)
    raise RunError("no human message of the prompt has a 'Question: ...' line")


def _plan_calls(plan: str) -> list[str]:
    """Return the plan's numbered calls without their numbers, join() left out."""
    calls = []
    for line in plan.splitlines():
        match = _CALL_LINE.match(line)
        if match and match.group(1) != "join()":
            calls.append(match.group(1))
    return calls


def _last_action(reply: str) -> str:
    actions = _ACTION.findall(reply)
    if not actions:
        raise RunError(f"the ReAct reply has no 'Action:' line: {reply!r}")
    return str(actions[-1]).strip()


async def _call_tool(toolbox: ToolBox, action: str, config: RunnableConfig | None) -> Any:
    """Parse ``action`` as one plan call and run its tool."""
    parsed = parse_plan(f"1. {action}\n", toolbox.names)
    if parsed.errors or len(parsed.tasks) != 1:
        problems = "; ".join(str(error) for error in parsed.errors) or "no call"
        raise RunError(f"invalid ReAct action {action!r}: {problems}")
    task = toolbox.make_task(parsed.tasks[0], config or {})
    return await task.fn(*task.args, **task.kwargs)
