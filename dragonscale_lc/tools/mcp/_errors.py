"""Exceptions raised by MCP tools.

They extend the package's tree under :class:`~dragonscale_lc.RunError`::

    RunError
    └── McpError                 an MCP server or one of its tools failed
        ├── McpConnectionError   the server could not be started or reached,
        │                        or its connection was lost during a call
        ├── McpTimeoutError      a call ran longer than its timeout
        └── McpToolError         the server ran the tool and it reported an error

Every ``McpError`` is also a LangChain ``ToolException``. So an agent that
calls an MCP tool with a ``ToolCall`` gets the message back as a
``ToolMessage`` with status ``"error"``, while the compiler, which calls tools
with plain arguments, records the exception as a failed task.
"""

from __future__ import annotations

from langchain_core.tools import ToolException

from ..._errors import RunError

__all__ = ["McpConnectionError", "McpError", "McpTimeoutError", "McpToolError"]


class McpError(RunError, ToolException):
    """An MCP server or one of its tools failed.

    Attributes:
        server: The name of the server, as in its ``McpServerConfig``.
        tool: The MCP tool being called, or ``None`` when no call was involved.
    """

    def __init__(self, message: str, *, server: str, tool: str | None = None) -> None:
        super().__init__(message)
        self.server = server
        self.tool = tool


class McpConnectionError(McpError):
    """The server could not be started or reached, or its connection was lost.

    After a lost connection the next call starts a new session.
    """


class McpTimeoutError(McpError):
    """A call ran longer than its timeout and was cancelled.

    The ``TimeoutError`` behind it is the ``__cause__``, so the runtime's worker
    pool counts the call as a timeout.

    Attributes:
        timeout: The limit in seconds.
    """

    def __init__(self, message: str, *, server: str, tool: str, timeout: float) -> None:
        super().__init__(message, server=server, tool=tool)
        self.timeout = timeout


class McpToolError(McpError):
    """The server ran the tool, and the tool reported an error."""
