"""Tools from MCP servers, over stdio or streamable HTTP, through langchain-mcp-adapters.

Each server gets one persistent session for as long as it is open, however
many calls its tools make. Its tools carry the worker-pool key
``"mcp:<name>"``, so a compiler run can cap the calls to one server. A call
that outlasts its timeout, or whose server crashes, raises an error that names
the server and the tool, and the next call reconnects.

Example:
    >>> from dragonscale_lc import LLMCompiler
    >>> from dragonscale_lc.tools.mcp import McpServerConfig, load_mcp_server_tools
    >>> config = McpServerConfig(
    ...     name="files", command="mcp-server-files", max_concurrency=2, timeout=10
    ... )
    >>> async def main():  # doctest: +SKIP
    ...     async with load_mcp_server_tools(config) as tools:
    ...         compiler = LLMCompiler(tools=tools, plan='1. read_file("a.txt")\\n2. join()')
    ...         return await compiler.ainvoke("What is in a.txt?")
"""

from ._config import McpServerConfig
from ._errors import McpConnectionError, McpError, McpTimeoutError, McpToolError
from ._server import McpServer
from ._servers import McpServers, load_mcp_server_tools
from ._tools import McpTool

__all__ = [
    "McpConnectionError",
    "McpError",
    "McpServer",
    "McpServerConfig",
    "McpServers",
    "McpTimeoutError",
    "McpTool",
    "McpToolError",
    "load_mcp_server_tools",
]
