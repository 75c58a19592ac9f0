"""McpServer: one persistent session to an MCP server, its tools, limits and reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any

from langchain_core.tools import BaseTool
from mcp import McpError, types

from ..._errors import ConfigurationError, UsageError
from ._config import McpServerConfig
from ._connection import Connection, NotSentError
from ._errors import McpConnectionError, McpTimeoutError, McpToolError
from ._tools import load_tools

__all__ = ["McpServer"]

logger = logging.getLogger(__name__)


class McpServer:
    """A connection to one MCP server, shared by every call of its tools.

    :meth:`start` opens one ``ClientSession`` (for stdio, one server process)
    and lists the server's tools as LangChain tools. Every call of those tools
    goes through that session, at most ``max_concurrency`` at once and each
    within its timeout. When the server crashes, the call in progress fails
    with :class:`McpConnectionError`, and the next call starts a new session.
    A cancelled call (a timeout, a pre-emption, a cancelled run) is cancelled
    on the server too.

    NOTE: over streamable HTTP, a server that dies during a call is noticed
    only when the call times out. mcp 1.30's client drops a response stream
    that was cut short without failing the request, so give HTTP servers a
    ``timeout`` (test_http_crash_then_restart_reconnects shows the case).

    Start and call the server on one event loop: ``LLMCompiler.invoke`` runs
    its own loop, so call ``ainvoke`` or ``arun`` inside ``async with``.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     config = McpServerConfig(name="files", command="mcp-server-files")
        ...     async with McpServer(config) as server:
        ...         return [tool.name for tool in server.tools]
    """

    def __init__(self, config: McpServerConfig) -> None:
        self.config = config
        self.sessions_opened = 0
        """Number of sessions opened so far: 1 after :meth:`start`, one more per reconnect."""
        self._tools: list[BaseTool] | None = None
        self._connection: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"McpServer(name={self.name!r}, transport={self.config.transport!r})"

    @property
    def name(self) -> str:
        """The server's name from its config."""
        return self.config.name

    @property
    def tools(self) -> list[BaseTool]:
        """The server's tools as LangChain tools, listed once by :meth:`start`.

        Raises:
            UsageError: The server has not been started.
        """
        if self._tools is None:
            raise UsageError(
                f"MCP server {self.name!r} has no tools yet: start it first with "
                "'async with McpServer(config) as server:' or 'await server.start()'"
            )
        return list(self._tools)

    async def start(self) -> list[BaseTool]:
        """Open the session, list the server's tools and return them.

        Raises:
            McpConnectionError: The server could not be started or reached.
            ConfigurationError: ``tool_timeouts`` names a tool the server does not have.
            UsageError: The server was started before.
        """
        if self._loop is not None:
            raise UsageError(
                f"MCP server {self.name!r} was started before; create a new McpServer "
                "to connect again"
            )
        self._loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        if self.config.max_concurrency is not None:
            self._slots = asyncio.Semaphore(self.config.max_concurrency)
        connection = await self._connect()
        try:
            tools = await load_tools(self, connection.session)
            self._check_tool_timeouts(tools)
        except BaseException:
            await self.aclose()
            raise
        self._tools = tools
        logger.info("MCP server %r (%s): %d tools", self.name, self.config.describe(), len(tools))
        return self.tools

    async def aclose(self) -> None:
        """End the session; for stdio, the server process exits. Later calls fail."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.aclose()

    async def __aenter__(self) -> McpServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call the MCP tool ``tool`` within the server's limits and return the raw result.

        Raises:
            McpConnectionError: The server could not be reached, or the
                connection was lost during the call.
            McpTimeoutError: The call took longer than its timeout.
            McpToolError: The server returned a JSON-RPC error for the call.
            UsageError: The server is not started, or is called from another
                event loop than the one that started it.
        """
        self._check_loop()
        slots = self._slots if self._slots is not None else contextlib.nullcontext()
        async with slots:
            timeout = self.config.timeout_for(tool)
            try:
                async with asyncio.timeout(timeout) as scope:
                    return await self._call(tool, arguments)
            except TimeoutError as error:
                if timeout is None or not scope.expired():
                    raise  # raised by the transport, not by this timeout
                raise McpTimeoutError(
                    f"MCP tool {tool!r} on server {self.name!r} timed out after {timeout:g} s "
                    f"and was cancelled; if it needs longer, raise tool_timeouts[{tool!r}] "
                    "or timeout in its McpServerConfig",
                    server=self.name,
                    tool=tool,
                    timeout=timeout,
                ) from error

    async def _call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        connection = await self._connected()
        try:
            return await self._call_on(connection, tool, arguments)
        except NotSentError:
            pass
        # The session had ended before the request went out, for instance
        # because the server crashed while idle. The server never saw the call,
        # so sending it once more on a new session cannot run it twice.
        connection = await self._connected()
        try:
            return await self._call_on(connection, tool, arguments)
        except NotSentError:
            raise McpConnectionError(
                f"MCP server {self.name!r} closed a new session before tool {tool!r} "
                "could be called; check the server's own log",
                server=self.name,
                tool=tool,
            ) from None

    async def _call_on(
        self, connection: Connection, tool: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        try:
            return await connection.call_tool(tool, arguments)
        except McpError as error:
            raise McpToolError(
                f"MCP server {self.name!r} rejected the call of tool {tool!r}: "
                f"{error.error.message} (JSON-RPC error {error.error.code})",
                server=self.name,
                tool=tool,
            ) from error

    async def _connect(self) -> Connection:
        connection = Connection(self.config)
        await connection.open()
        self._connection = connection
        self.sessions_opened += 1
        return connection

    async def _connected(self) -> Connection:
        """Return the open connection, first opening a new one if it was lost."""
        connection = self._connection
        if connection is not None and not connection.lost:
            return connection
        assert self._lock is not None  # _check_loop ensured start() ran
        # One caller reconnects; the others wait here and take its connection.
        async with self._lock:
            if self._closed:
                raise McpConnectionError(
                    f"MCP server {self.name!r} is closed; call its tools inside "
                    "'async with' or before aclose()",
                    server=self.name,
                )
            connection = self._connection
            if connection is not None and not connection.lost:
                return connection
            if connection is not None:
                logger.info("MCP server %r: the connection was lost, reconnecting", self.name)
                await connection.aclose()
            return await self._connect()

    def _check_loop(self) -> None:
        if self._loop is None:
            raise UsageError(
                f"MCP server {self.name!r} is not started; use 'async with McpServer(config)' "
                "or McpServers(...) before calling its tools"
            )
        if asyncio.get_running_loop() is not self._loop:
            raise UsageError(
                f"MCP server {self.name!r} was started on another event loop; call its tools "
                "on that loop, with ainvoke() or LLMCompiler.arun() inside the 'async with' "
                "block, not with invoke(), which runs a new loop"
            )

    def _check_tool_timeouts(self, tools: list[BaseTool]) -> None:
        names = {tool.metadata["dragonscale_mcp_tool"] for tool in tools if tool.metadata}
        unknown = sorted(set(self.config.tool_timeouts) - names)
        if unknown:
            raise ConfigurationError(
                f"MCP server {self.name!r}: tool_timeouts names tools the server does not "
                f"have: {', '.join(unknown)}; its tools are: {', '.join(sorted(names))}"
            )
