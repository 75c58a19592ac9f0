"""MCP tools from a real server over streamable HTTP on a loopback port.

One server process serves the module; the crash test starts its own. The
concurrency tests hold calls on the server until the test releases them,
after the server reports how many run at once, so no test depends on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from mcp_helpers import HttpServer, free_port, tool

from dragonscale_lc import LLMCompiler, TaskStatus
from dragonscale_lc.tools.mcp import McpConnectionError, McpServer, McpTimeoutError

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUESTION = "What do the tools return?"


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpServer]:
    server = HttpServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(http_server: HttpServer) -> AsyncIterator[McpServer]:
    async with McpServer(http_server.config("web")) as server:
        yield server


def hold_plan(group: str, calls: int) -> str:
    lines = [f'{number}. hold("{group}", {number})' for number in range(1, calls + 1)]
    return "\n".join([*lines, f"{calls + 1}. join()"])


async def release_at(web: McpServer, group: str, running: int) -> None:
    """Wait until ``running`` calls of ``group`` are held on the server, then release them all."""
    await tool(web, "wait_running").ainvoke({"group": group, "count": running})
    await tool(web, "release").ainvoke({"group": group})


async def test_http_call_returns_text(web: McpServer) -> None:
    output = await tool(web, "add").ainvoke({"a": 40, "b": 2})

    assert output == "42"
    assert web.config.transport == "streamable_http"


async def test_resource_limit_caps_server_calls(web: McpServer) -> None:
    compiler = LLMCompiler(
        tools=web.tools, plan=hold_plan("pool-cap", 6), resource_limits={"mcp:web": 2}
    )

    run = asyncio.create_task(compiler.arun(QUESTION))
    await release_at(web, "pool-cap", 2)
    result = await run
    peak = await tool(web, "peak").ainvoke({"group": "pool-cap"})

    assert [result.report[number].output for number in range(1, 7)] == list("123456")
    assert peak == "2"


async def test_config_cap_limits_compiler_runs(web: McpServer, http_server: HttpServer) -> None:
    async with McpServer(http_server.config("capped", max_concurrency=2)) as capped:
        compiler = LLMCompiler(tools=capped.tools, plan=hold_plan("config-cap", 6))
        run = asyncio.create_task(compiler.arun(QUESTION))
        # The control calls go through the uncapped server, which shares the process.
        await release_at(web, "config-cap", 2)
        result = await run
    peak = await tool(web, "peak").ainvoke({"group": "config-cap"})

    assert compiler.toolbox.resource_limits == {"mcp:capped": 2}
    assert all(result.report[number].status is TaskStatus.DONE for number in range(1, 7))
    assert peak == "2"


async def test_config_cap_limits_direct_calls(web: McpServer, http_server: HttpServer) -> None:
    async with McpServer(http_server.config("capped", max_concurrency=2)) as capped:
        hold = tool(capped, "hold")
        calls = [hold.ainvoke({"group": "direct-cap", "value": value}) for value in range(5)]
        outputs = asyncio.gather(*calls)
        await release_at(web, "direct-cap", 2)
        values = await outputs
    peak = await tool(web, "peak").ainvoke({"group": "direct-cap"})

    assert values == ["0", "1", "2", "3", "4"]
    assert peak == "2"


async def test_http_timeout_cancels_server_call(web: McpServer, http_server: HttpServer) -> None:
    async with McpServer(http_server.config("slow", timeout=0.2)) as slow:
        compiler = LLMCompiler(tools=slow.tools, plan='1. wait_forever("http-timeout")\n2. join()')
        result = await compiler.arun(QUESTION)
        cancelled = await tool(web, "wait_cancelled").ainvoke({"group": "http-timeout", "count": 1})
        after = await tool(slow, "echo").ainvoke({"text": "usable"})

    error = result.report[1].error
    assert isinstance(error, McpTimeoutError)
    assert str(error).startswith(
        "MCP tool 'wait_forever' on server 'slow' timed out after 0.2 s and was cancelled"
    )
    assert cancelled == "1"
    assert after == "usable"


async def test_http_crash_then_restart_reconnects() -> None:
    process = HttpServer(free_port())
    process.start()
    try:
        async with McpServer(process.config("fragile", timeout=0.5)) as fragile:
            # NOTE: the crash shows as a timeout. mcp 1.30's streamable HTTP
            # client drops an SSE response cut short without failing the request.
            with pytest.raises(McpTimeoutError, match=r"MCP tool 'crash' on server 'fragile'"):
                await tool(fragile, "crash").ainvoke({})
            with pytest.raises(McpConnectionError) as refused:
                await tool(fragile, "add").ainvoke({"a": 1, "b": 1})
            process.stop()
            process.start()
            after = await tool(fragile, "add").ainvoke({"a": 2, "b": 3})
            sessions = fragile.sessions_opened
    finally:
        process.stop()

    # Telling the stopped server about the cancelled call failed and ended
    # the session, so the next call found it closed and could not reconnect.
    assert str(refused.value) == (
        f"cannot reach MCP server 'fragile' at {process.url}: ConnectError: All connection "
        "attempts failed; check that the server is running and the url is right"
    )
    assert after == "5"
    assert sessions == 2
