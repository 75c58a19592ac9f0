"""McpServers and load_mcp_server_tools: MCP servers opened for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType

from langchain_core.tools import BaseTool

from ..._errors import ConfigurationError
from ._config import McpServerConfig
from ._server import McpServer

__all__ = ["McpServers", "load_mcp_server_tools"]


class McpServers:
    """Several MCP servers, started together and closed together.

    Entering the block starts every server at once, each with one session.
    If one fails to start, the others are closed and its error is raised.

    Raises:
        ConfigurationError: Two configs share a name, or two servers offer
            tools of the same name (set ``prefix_tool_names`` on one).

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     configs = [
        ...         McpServerConfig(name="files", command="mcp-server-files"),
        ...         McpServerConfig(name="search", url="http://127.0.0.1:8000/mcp"),
        ...     ]
        ...     async with McpServers(configs) as servers:
        ...         compiler = LLMCompiler(model=model, tools=servers.tools)
        ...         return await compiler.ainvoke("...")
    """

    def __init__(self, configs: Iterable[McpServerConfig]) -> None:
        self._servers: dict[str, McpServer] = {}
        for config in configs:
            if config.name in self._servers:
                raise ConfigurationError(
                    f"two MCP servers are named {config.name!r}; server names must be unique"
                )
            self._servers[config.name] = McpServer(config)

    def __getitem__(self, name: str) -> McpServer:
        return self._servers[name]

    def __iter__(self) -> Iterator[McpServer]:
        return iter(self._servers.values())

    def __len__(self) -> int:
        return len(self._servers)

    @property
    def tools(self) -> list[BaseTool]:
        """Every server's tools, in the order of the configs.

        Raises:
            UsageError: The servers have not been started.
        """
        return [tool for server in self._servers.values() for tool in server.tools]

    async def __aenter__(self) -> McpServers:
        servers = list(self._servers.values())
        results = await asyncio.gather(
            *(server.start() for server in servers), return_exceptions=True
        )
        failure = next((result for result in results if isinstance(result, BaseException)), None)
        if failure is None:
            try:
                _check_unique_names(servers)
            except ConfigurationError as error:
                failure = error
        if failure is not None:
            await self.aclose()
            raise failure
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every server."""
        await asyncio.gather(*(server.aclose() for server in self._servers.values()))


@contextlib.asynccontextmanager
async def load_mcp_server_tools(config: McpServerConfig) -> AsyncIterator[list[BaseTool]]:
    """Start one MCP server and yield its tools, which work until the block ends.

    Raises:
        McpConnectionError: The server could not be started or reached.
        ConfigurationError: ``tool_timeouts`` names a tool the server does not have.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     config = McpServerConfig(name="files", command="mcp-server-files", timeout=10)
        ...     async with load_mcp_server_tools(config) as tools:
        ...         return await tools[0].ainvoke({"path": "README.md"})
    """
    async with McpServer(config) as server:
        yield server.tools


def _check_unique_names(servers: list[McpServer]) -> None:
    owners: dict[str, str] = {}
    for server in servers:
        for tool in server.tools:
            other = owners.setdefault(tool.name, server.name)
            if other != server.name:
                raise ConfigurationError(
                    f"MCP servers {other!r} and {server.name!r} both offer a tool named "
                    f"{tool.name!r}; set prefix_tool_names=True on one of them"
                )
