"""The built-in tools called with a ToolCall, as a chat model's agent loop calls them."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool, ToolException

from dragonscale_lc import LLMCompiler
from dragonscale_lc.tools import (
    argmax_tool,
    argmin_tool,
    builtin_tools,
    country_facts_tool,
    math_tool,
)

BAD_SYNTAX = (
    "'1/' is not an arithmetic expression (invalid syntax, at character 2). "
    'Pass one expression such as "(3 + 4) * 2", with numbers in place of words.'
)

UNKNOWN_COUNTRY = (
    "Unknown country 'Narnia'. Did you mean 'Armenia', 'Argentina' or 'Mauritania'? "
    "Pass an English country name such as 'Japan' or an ISO code such as 'JP' or 'JPN'."
)


def tool_call(tool: BaseTool, args: dict[str, Any]) -> ToolCall:
    return ToolCall(name=tool.name, args=args, id="call-1", type="tool_call")


async def call_both_ways(tool: BaseTool, args: dict[str, Any]) -> list[ToolMessage]:
    """Return the replies of invoke and ainvoke, so each test checks both paths."""
    return [tool.invoke(tool_call(tool, args)), await tool.ainvoke(tool_call(tool, args))]


# -- outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args", "content"),
    [
        (math_tool, {"expression": "(3 + 4) * 2"}, "14.0"),
        (country_facts_tool, {"name": "Japan", "field": "capital"}, "Tokyo"),
        (argmax_tool, {"labels": ["a", "b"], "values": [1, "2"]}, "b"),
        (argmin_tool, {"labels": ["a", "b"], "values": [1, "2"]}, "a"),
    ],
)
async def test_tool_call_returns_tool_message(
    tool: BaseTool, args: dict[str, Any], content: str
) -> None:
    for message in await call_both_ways(tool, args):
        assert isinstance(message, ToolMessage)
        assert message.content == content
        assert message.tool_call_id == "call-1"
        assert message.name == tool.name
        assert message.status == "success"


async def test_list_output_becomes_json_text() -> None:
    # As content blocks, the three strings would reach a model as "defrit".
    args = {"name": "Switzerland", "field": "languages"}

    for message in await call_both_ways(country_facts_tool, args):
        assert message.content == '["de", "fr", "it"]'
        assert message.artifact == ["de", "fr", "it"]
        assert message.status == "success"


def test_plain_arguments_still_return_values() -> None:
    assert math_tool.invoke({"expression": "6 * 7"}) == 42.0
    languages = country_facts_tool.invoke({"name": "Switzerland", "field": "languages"})
    assert languages == ["de", "fr", "it"]


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args", "content"),
    [
        (math_tool, {"expression": "1/"}, BAD_SYNTAX),
        (country_facts_tool, {"name": "Narnia"}, UNKNOWN_COUNTRY),
        (
            argmax_tool,
            {"labels": ["a"], "values": ["1,000"]},
            "values[0] = '1,000' is not a number. Pass numbers or numeric text such as "
            "'1.5e6', without units or thousands separators.",
        ),
        (
            math_tool,
            {},
            "Invalid arguments for math: expression: Field required. Fix them and call it again.",
        ),
        (
            argmin_tool,
            {"labels": "a", "values": [1]},
            "Invalid arguments for argmin: labels: Input should be a valid list, got 'a'. "
            "Fix them and call it again.",
        ),
    ],
)
async def test_tool_call_error_becomes_error_message(
    tool: BaseTool, args: dict[str, Any], content: str
) -> None:
    for message in await call_both_ways(tool, args):
        assert isinstance(message, ToolMessage)
        assert message.status == "error"
        assert message.content == content
        assert message.name == tool.name
        assert message.tool_call_id == "call-1"


def test_plain_arguments_still_raise() -> None:
    # The compiler calls tools with plain arguments and needs the exception
    # to mark the task as failed.
    with pytest.raises(ToolException) as caught:
        math_tool.invoke({"expression": "1/"})

    assert str(caught.value) == BAD_SYNTAX


async def test_compiler_reports_tool_and_message() -> None:
    plan = '1. math("1/")\n2. country_facts("Narnia")\n3. join()\n'
    compiler = LLMCompiler(plan=plan, tools=builtin_tools(), direct_join=True)

    result = await compiler.arun("Which fails?")

    tasks = result.to_dict()["tasks"]
    assert [task["tool"] for task in tasks] == ["math", "country_facts"]
    assert [task["status"] for task in tasks] == ["failed", "failed"]
    assert tasks[0]["error"] == f"ToolException: {BAD_SYNTAX}"
    assert tasks[1]["error"] == f"ToolException: {UNKNOWN_COUNTRY}"
