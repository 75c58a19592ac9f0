"""Worker-pool keys and caps that tools declare in their metadata, and resource_limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool

from dragonscale_lc import ConfigurationError, LLMCompiler, UsageError
from dragonscale_lc.compiler import PlanTask, ToolBox


def make_tool(name: str, metadata: dict[str, Any] | None = None) -> StructuredTool:
    async def lookup(query: str) -> str:
        """Look the query up."""
        return query

    return StructuredTool.from_function(coroutine=lookup, name=name, metadata=metadata)


def plan_task(tool: str) -> PlanTask:
    return PlanTask(id=1, number=1, tool=tool, args=("x",), kwargs={}, line_no=1)


class PeakCounter:
    """An async tool body that records how many calls ran at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def lookup(self, query: str) -> str:
        """Look the query up."""
        self.running += 1
        self.peak = max(self.peak, self.running)
        # Yield a few times so calls admitted together overlap.
        for _ in range(3):
            await asyncio.sleep(0)
        self.running -= 1
        return query


async def test_task_resources_from_metadata() -> None:
    toolbox = ToolBox(
        [
            make_tool("one", {"dragonscale_resources": "mcp:search"}),
            make_tool("two", {"dragonscale_resources": ["mcp:search", "api:quota"]}),
            make_tool("three"),
        ]
    )
    config = RunnableConfig()

    assert toolbox.make_task(plan_task("one"), config).resources == ("mcp:search",)
    assert toolbox.make_task(plan_task("two"), config).resources == ("mcp:search", "api:quota")
    assert toolbox.make_task(plan_task("three"), config).resources == ()


def test_resource_limits_from_metadata() -> None:
    toolbox = ToolBox(
        [
            make_tool("one", {"dragonscale_resource_limits": {"mcp:search": 2}}),
            make_tool("two", {"dragonscale_resource_limits": {"mcp:search": 2}}),
        ]
    )

    assert toolbox.resource_limits == {"mcp:search": 2}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"dragonscale_resources": 3}, r"tool 'bad' has invalid metadata\['dragonscale_resources'"),
        ({"dragonscale_resources": ["ok", ""]}, r"pass a string or a list of non-empty strings"),
        ({"dragonscale_resource_limits": ["mcp:search"]}, r"pass a dict of key to cap"),
    ],
)
def test_invalid_resource_metadata_rejected(metadata: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ToolBox([make_tool("bad", metadata)])


def test_conflicting_caps_rejected() -> None:
    tools = [
        make_tool("one", {"dragonscale_resource_limits": {"mcp:search": 2}}),
        make_tool("two", {"dragonscale_resource_limits": {"mcp:search": 3}}),
    ]

    with pytest.raises(
        ConfigurationError,
        match=r"tools 'one' and 'two' declare different caps for key 'mcp:search' \(2 and 3\)",
    ):
        ToolBox(tools)


def test_invalid_resource_limit_rejected_at_construction() -> None:
    with pytest.raises(UsageError, match=r"cap for key 'mcp:search' must be an int of at least 1"):
        LLMCompiler(tools=[make_tool("one")], plan="1. one('x')", resource_limits={"mcp:search": 0})


@pytest.mark.parametrize(
    ("metadata", "resource_limits"),
    [
        ({"dragonscale_resources": "api:quota"}, {"api:quota": 2}),
        (
            {
                "dragonscale_resources": "api:quota",
                "dragonscale_resource_limits": {"api:quota": 2},
            },
            {},
        ),
        ({"dragonscale_resource_limits": {"api:quota": 5}}, {"lookup": 2}),
    ],
    ids=["compiler-option", "tool-metadata", "tool-name-key"],
)
async def test_cap_limits_concurrent_calls(
    metadata: dict[str, Any], resource_limits: dict[str, int]
) -> None:
    counter = PeakCounter()
    lookup = StructuredTool.from_function(
        coroutine=counter.lookup, name="lookup", description="Look up.", metadata=metadata
    )
    plan = "\n".join([*(f'{n}. lookup("q{n}")' for n in range(1, 7)), "7. join()"])
    compiler = LLMCompiler(tools=[lookup], plan=plan, resource_limits=resource_limits)

    result = await compiler.arun("Look everything up.")

    assert result.answer == "q6"
    assert counter.peak == 2


async def test_no_caps_keeps_plain_concurrency() -> None:
    counter = PeakCounter()
    lookup = StructuredTool.from_function(
        coroutine=counter.lookup, name="lookup", description="Look up."
    )
    plan = "\n".join([*(f'{n}. lookup("q{n}")' for n in range(1, 7)), "7. join()"])

    await LLMCompiler(tools=[lookup], plan=plan).arun("Look everything up.")

    assert counter.peak == 6
