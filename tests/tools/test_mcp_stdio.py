"""MCP tools from a real server process over stdio, called directly and from plans.

One server process serves the whole module; the crash tests start their own.
The server appends a line to a file each time a process starts, so the tests
count processes, and its ``stats`` tool counts the sessions that called it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from langchain_core.messages import ToolCall
from mcp_helpers import stdio_config, tool

from dragonscale_lc import ConfigurationError, LLMCompiler, TaskStatus, UsageError
from dragonscale_lc.tools import builtin_tools
from dragonscale_lc.tools.mcp import (
    McpConnectionError,
    McpServer,
    McpServerConfig,
    McpServers,
    McpTimeoutError,
    McpToolError,
    load_mcp_server_tools,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUESTION = "What do the tools return?"


@pytest.fixture(scope="module")
def starts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp") / "starts.txt"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(starts: Path) -> AsyncIterator[McpServer]:
    config = stdio_config(
        "local",
        env={"DRAGONSCALE_TEST_STARTS": str(starts)},
        pass_env=["DRAGONSCALE_TEST_ALLOWED"],
        tool_timeouts={"wait_forever": 0.2},
    )
    server = McpServer(config)
    with pytest.MonkeyPatch.context() as patch:
        # The server process copies its environment when it starts.
        patch.setenv("DRAGONSCALE_TEST_ALLOWED", "passed")
        patch.setenv("DRAGONSCALE_TEST_SECRET", "not passed")
        await server.start()
    try:
        yield server
    finally:
        await server.aclose()


def process_starts(starts: Path) -> int:
    return len(starts.read_text(encoding="utf-8").splitlines())


async def test_tools_listed_with_pool_key(server: McpServer) -> None:
    names = {tool.name for tool in server.tools}
    add = tool(server, "add")

    assert {"add", "echo", "fail", "crash", "hold", "wait_forever"} <= names
    assert add.metadata is not None
    assert add.metadata["dragonscale_resources"] == ("mcp:local",)
    assert add.metadata["dragonscale_mcp_server"] == "local"
    assert "dragonscale_resource_limits" not in add.metadata
    assert set(add.args) == {"a", "b"}
    assert "Add two integers" in add.description


async def test_call_returns_text(server: McpServer) -> None:
    output = await tool(server, "add").ainvoke({"a": 2, "b": 3})

    assert output == "5"


async def test_tool_call_returns_structured_artifact(server: McpServer) -> None:
    call = ToolCall(name="add", args={"a": 2, "b": 3}, id="call-1", type="tool_call")

    message = await tool(server, "add").ainvoke(call)

    assert message.content == "5"
    assert message.artifact == {"structured_content": {"result": 5}}


async def test_env_passes_allowed_variables_only(server: McpServer, starts: Path) -> None:
    getenv = tool(server, "getenv")

    assert await getenv.ainvoke({"name": "DRAGONSCALE_TEST_ALLOWED"}) == "passed"
    assert await getenv.ainvoke({"name": "DRAGONSCALE_TEST_SECRET"}) == "<unset>"
    assert await getenv.ainvoke({"name": "DRAGONSCALE_TEST_STARTS"}) == str(starts)


async def test_parallel_plan_uses_one_session(server: McpServer, starts: Path) -> None:
    calls = [f"{number}. add({number}, {number})" for number in range(1, 9)]
    plan = "\n".join([*calls, '9. echo("done")', "10. join()"])
    compiler = LLMCompiler(tools=server.tools, plan=plan)

    result = await compiler.arun(QUESTION)
    stats = json.loads(await tool(server, "stats").ainvoke({}))

    outputs = [result.report[number].output for number in range(1, 9)]
    assert outputs == [str(2 * number) for number in range(1, 9)]
    assert result.answer == "done"
    assert stats["sessions"] == 1
    assert server.sessions_opened == 1
    assert process_starts(starts) == 1


async def test_plan_mixes_mcp_and_builtin_tools(server: McpServer) -> None:
    plan = '1. add(20, 1)\n2. math("$1 * 2")\n3. join()'
    compiler = LLMCompiler(tools=[*server.tools, *builtin_tools()], plan=plan)

    result = await compiler.arun(QUESTION)

    assert result.report[1].output == "21"
    assert result.answer == "42"


async def test_tool_error_becomes_observation(server: McpServer) -> None:
    plan = '1. fail("disk full")\n2. add(1, 1)\n3. join()'
    compiler = LLMCompiler(tools=server.tools, plan=plan)

    result = await compiler.arun(QUESTION)

    failed = result.report[1]
    assert failed.status is TaskStatus.FAILED
    assert isinstance(failed.error, McpToolError)
    assert str(failed.error) == (
        "MCP tool 'fail' on server 'local' returned an error: Error executing tool fail: disk full"
    )
    assert result.report[2].output == "2"


async def test_timeout_names_server_tool_and_limit(server: McpServer) -> None:
    plan = '1. wait_forever("timeout")\n2. add(2, 2)\n3. join()'
    compiler = LLMCompiler(tools=server.tools, plan=plan)

    result = await compiler.arun(QUESTION)

    failed = result.report[1]
    assert failed.status is TaskStatus.FAILED
    assert isinstance(failed.error, McpTimeoutError)
    assert str(failed.error).startswith(
        "MCP tool 'wait_forever' on server 'local' timed out after 0.2 s and was cancelled"
    )
    assert failed.error.timeout == 0.2
    assert isinstance(failed.error.__cause__, TimeoutError)
    assert result.report[2].output == "4"


async def test_timeout_cancels_server_call(server: McpServer) -> None:
    with pytest.raises(McpTimeoutError):
        await tool(server, "wait_forever").ainvoke({"group": "server-timeout"})

    cancelled = await tool(server, "wait_cancelled").ainvoke(
        {"group": "server-timeout", "count": 1}
    )

    assert cancelled == "1"
    assert await tool(server, "add").ainvoke({"a": 1, "b": 2}) == "3"
    assert server.sessions_opened == 1


async def test_cancelled_run_cancels_server_call(server: McpServer) -> None:
    compiler = LLMCompiler(tools=server.tools, plan='1. hold("run-cancel")\n2. join()')
    run = asyncio.create_task(compiler.arun(QUESTION))
    await tool(server, "wait_running").ainvoke({"group": "run-cancel", "count": 1})

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    cancelled = await tool(server, "wait_cancelled").ainvoke({"group": "run-cancel", "count": 1})

    assert cancelled == "1"
    assert await tool(server, "echo").ainvoke({"text": "usable"}) == "usable"
    assert server.sessions_opened == 1


async def test_call_from_other_event_loop_fails_clearly(server: McpServer) -> None:
    compiler = LLMCompiler(tools=server.tools, plan="1. add(1, 2)\n2. join()")

    # invoke() runs the plan on a new event loop in this worker thread.
    result = await asyncio.to_thread(compiler.run, QUESTION)

    error = result.report[1].error
    assert isinstance(error, UsageError)
    assert "MCP server 'local' was started on another event loop" in str(error)


async def test_unknown_tool_timeout_rejected() -> None:
    config = stdio_config("strict", tool_timeouts={"missing": 1.0})

    with pytest.raises(ConfigurationError, match=r"tool_timeouts names tools the server does "):
        async with load_mcp_server_tools(config):
            pass


async def test_missing_command_fails_to_start() -> None:
    config = McpServerConfig(name="missing", command="/nonexistent/dragonscale-mcp-server")

    with pytest.raises(McpConnectionError) as caught:
        async with load_mcp_server_tools(config):
            pass

    assert str(caught.value).startswith(
        "cannot start MCP server 'missing' with '/nonexistent/dragonscale-mcp-server': "
        "FileNotFoundError"
    )
    assert str(caught.value).endswith(
        "check that the command exists and starts an MCP stdio server"
    )
    assert caught.value.server == "missing"


async def test_same_tool_names_need_prefix() -> None:
    with pytest.raises(ConfigurationError, match=r"'one' and 'two' both offer a tool named"):
        async with McpServers([stdio_config("one"), stdio_config("two")]):
            pass

    async with McpServers(
        [stdio_config("one"), stdio_config("two", prefix_tool_names=True)]
    ) as servers:
        names = [tool.name for tool in servers.tools]
        output = await tool(servers["two"], "two_add").ainvoke({"a": 1, "b": 1})

    assert "add" in names
    assert "two_add" in names
    assert output == "2"


async def test_crash_fails_call_and_reconnects(server: McpServer, tmp_path: Path) -> None:
    starts = tmp_path / "starts.txt"
    config = stdio_config(
        "fragile", env={"DRAGONSCALE_TEST_STARTS": str(starts)}, prefix_tool_names=True
    )
    plan = '1. fragile_crash()\n2. math("6 * 7")\n3. echo("still here")\n4. join()'
    async with McpServer(config) as fragile:
        tools = [*fragile.tools, *builtin_tools(), tool(server, "echo")]
        result = await LLMCompiler(tools=tools, plan=plan).arun(QUESTION)
        after = await tool(fragile, "fragile_add").ainvoke({"a": 2, "b": 3})
        sessions = fragile.sessions_opened

    error = result.report[1].error
    assert isinstance(error, McpConnectionError)
    assert str(error).startswith(
        "MCP server 'fragile' closed the connection during a call of tool 'crash'"
    )
    assert error.server == "fragile"
    assert error.tool == "crash"
    assert result.report[2].output == 42.0
    assert result.report[3].output == "still here"
    assert after == "5"
    assert sessions == 2
    assert process_starts(starts) == 2


async def test_closed_server_rejects_calls(server: McpServer) -> None:
    async with McpServer(stdio_config("short")) as short:
        add = tool(short, "add")

    with pytest.raises(McpConnectionError, match=r"MCP server 'short' is closed"):
        await add.ainvoke({"a": 1, "b": 1})
