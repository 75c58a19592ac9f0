"""LangChain tools for an MCP server's tools, converted by langchain-mcp-adapters.

The adapters list the tools and convert each call's result; an interceptor
sends every call through the :class:`McpServer`, which owns the session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession

from .._base import BuiltinTool
from ._errors import McpError, McpToolError

if TYPE_CHECKING:
    from ._server import McpServer

__all__ = [
    "MCP_SERVER_KEY",
    "MCP_TOOL_KEY",
    "RESOURCES_KEY",
    "RESOURCE_LIMITS_KEY",
    "McpTool",
    "load_tools",
]

# Keys of a tool's metadata. The compiler's ToolBox reads the first two: the
# worker-pool keys of the tool's tasks, and caps for those keys.
RESOURCES_KEY = "dragonscale_resources"
RESOURCE_LIMITS_KEY = "dragonscale_resource_limits"
MCP_SERVER_KEY = "dragonscale_mcp_server"
MCP_TOOL_KEY = "dragonscale_mcp_tool"

Handler = Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]]


class McpTool(BuiltinTool):
    """A tool of an MCP server, called through the server's one session.

    Its output is the text of the result when every content block is text
    (joined by newlines), else the list of LangChain content blocks. The
    server's structured content, if any, is the artifact. Called with plain
    arguments, a failure raises an :class:`McpError`. Called with a
    ``ToolCall``, it becomes a ``ToolMessage`` with status ``"error"``.

    ``metadata`` contains the pool key (``"dragonscale_resources"``), the cap
    from ``max_concurrency`` (``"dragonscale_resource_limits"``), the server
    name and the MCP tool name, besides the tool's MCP annotations.
    """


async def load_tools(server: McpServer, session: ClientSession) -> list[BaseTool]:
    """List the server's tools on ``session`` and return them as :class:`McpTool`s."""

    async def route(request: MCPToolCallRequest, handler: Handler) -> MCPToolCallResult:
        # The adapters' handler would call the session the tools were listed
        # on. The server reconnects, limits concurrency and applies timeouts.
        return await server.call_tool(request.name, request.args)

    listed = await load_mcp_tools(
        session, tool_interceptors=[route], server_name=server.name, handle_tool_errors=False
    )
    return [_wrap(server, tool) for tool in listed]


def _wrap(server: McpServer, tool: BaseTool) -> McpTool:
    # load_mcp_tools returns StructuredTools with a coroutine (adapters 0.3.2).
    assert isinstance(tool, StructuredTool) and tool.coroutine is not None
    call = tool.coroutine
    mcp_name = tool.name
    config = server.config

    async def call_tool(**arguments: Any) -> tuple[Any, Any]:
        try:
            content, artifact = await call(**arguments)
        except McpError:
            raise
        except ToolException as error:
            # The adapters raise a ToolException for a result with isError set.
            raise McpToolError(
                f"MCP tool {mcp_name!r} on server {server.name!r} returned an error: {error}",
                server=server.name,
                tool=mcp_name,
            ) from error
        return _plain(content), artifact

    metadata: dict[str, Any] = {
        **(tool.metadata or {}),
        RESOURCES_KEY: (config.resource_key,),
        MCP_SERVER_KEY: server.name,
        MCP_TOOL_KEY: mcp_name,
    }
    if config.max_concurrency is not None:
        metadata[RESOURCE_LIMITS_KEY] = {config.resource_key: config.max_concurrency}
    return McpTool(
        name=f"{server.name}_{mcp_name}" if config.prefix_tool_names else mcp_name,
        description=tool.description,
        args_schema=tool.args_schema,
        coroutine=call_tool,
        response_format="content_and_artifact",
        metadata=metadata,
    )


def _plain(content: Any) -> Any:
    """Return the text of a list of text blocks, or ``content`` unchanged."""
    if not isinstance(content, list):
        return content
    if all(isinstance(block, dict) and block.get("type") == "text" for block in content):
        return "\n".join(block["text"] for block in content)
    return content
