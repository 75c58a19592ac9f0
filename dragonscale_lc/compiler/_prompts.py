"""The planner's prompt: tools, plan format, examples and replan instructions."""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

__all__ = ["PROMPT_VERSION", "planner_messages"]

PROMPT_VERSION = "planner-1"
"""Changes whenever the planner prompt's wording changes (part of plan-cache keys)."""

_SYSTEM = """\
You write plans of tool calls that answer a user's question. The calls run in \
parallel wherever they do not depend on each other, so plan independent work as \
separate calls.

Tools:
{tools}

Plan format:
- One call per line: `N. tool_name(arguments)`, numbered 1, 2, 3 and so on.
- Arguments are Python literals: quoted strings, numbers, lists, dicts, and \
keyword arguments such as `field="area"`.
- `$N` stands for the output of call N, which must come earlier in the plan. \
Use it as a whole argument (`$2`) to pass the output as it is, or inside text \
(`"$1 * 1.1"`) to insert it. Write `$$` for a literal dollar sign.
- You may put a line `Thought: ...` before a call to explain it.
- End the plan with a final numbered line `join()`, and write nothing after it.
- Use only the tools listed above. Never invent an output: call a tool for it.

Example, with the tools `country_facts` and `math`:
Question: How many times larger is Japan's population than Vietnam's?
1. country_facts("Japan")
2. country_facts("Vietnam")
Thought: Both lookups are independent; the ratio needs both.
3. math("$1 / $2")
4. join()

Example, picking a name by value with `argmax`:
Question: Which has more people, Canada or Peru?
1. country_facts("Canada")
2. country_facts("Peru")
3. argmax(["Canada", "Peru"], [$1, $2])
4. join()
"""

_REPLAN = """\
The plan so far did not finish the task. Here is what was planned and what \
each call returned:

{history}

Reason for a new plan: {reason}

Write a new plan that completes the answer. Number its calls from {next_id} on.{reuse} \
End with `join()`."""

_REUSE = """ You may reference the outputs above by their numbers ($1 and so on); do \
not repeat calls whose outputs you already have."""


def planner_messages(
    question: str,
    tools: str,
    *,
    history: str | None = None,
    reason: str | None = None,
    next_id: int = 1,
    has_outputs: bool = True,
) -> list[BaseMessage]:
    """Return the messages that ask the model for a plan, or for a replan with ``history``."""
    messages: list[BaseMessage] = [
        SystemMessage(_SYSTEM.format(tools=tools)),
        HumanMessage(f"Question: {question}"),
    ]
    if history is not None:
        messages.append(
            HumanMessage(
                _REPLAN.format(
                    history=history,
                    reason=reason or "none given",
                    next_id=next_id,
                    reuse=_REUSE if has_outputs else "",
                )
            )
        )
    return messages
