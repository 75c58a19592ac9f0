"""McpServerConfig: how to reach one MCP server, and the limits of its calls."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ..._errors import ConfigurationError

__all__ = ["McpServerConfig"]

# Server names become pool keys ("mcp:<name>") and appear in messages, so they
# are kept to characters a TOML bare key also allows.
_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServerConfig:
    """How to reach one MCP server, and the limits of its calls.

    Set exactly one of ``command`` (a server started as a subprocess and
    spoken to over stdio) and ``url`` (a server already running, spoken to
    over streamable HTTP).

    Attributes:
        name: Server name, made of letters, digits, ``_`` and ``-``. Its tools
            carry the worker-pool key ``"mcp:<name>"``, and errors name it.
        command: Executable that starts a stdio server, such as ``"python"``.
        args: Arguments for ``command``.
        env: Environment variables set for the server process.
        pass_env: Names of variables copied from this process's environment
            to the server's, when they are set. Any other variable is not
            passed, except the MCP SDK's defaults (``HOME``, ``LOGNAME``,
            ``PATH``, ``SHELL``, ``TERM`` and ``USER`` on POSIX, as of mcp
            1.30). ``env`` wins over a copied variable of the same name.
        cwd: Working directory of the server process; this process's when ``None``.
        url: Streamable HTTP endpoint, such as ``"http://127.0.0.1:8000/mcp"``.
        max_concurrency: Maximum number of calls to this server running at once, or
            ``None`` for no limit. The compiler's worker pool keeps further
            tasks waiting, and the server object makes any other caller wait.
        timeout: Seconds a call may take, or ``None`` for no limit. The time
            counts from when the call gets a slot under ``max_concurrency``
            and includes a reconnect before the call.
        tool_timeouts: Timeouts for single tools by MCP tool name, overriding
            ``timeout``.
        connect_timeout: Seconds to start the server or reach it and finish
            the MCP handshake.
        prefix_tool_names: Name the LangChain tools ``"<name>_<tool>"``, so
            two servers may offer tools of the same name.

    Example:
        >>> config = McpServerConfig(
        ...     name="search",
        ...     command="python",
        ...     args=["search_server.py"],
        ...     pass_env=["SEARCH_API_KEY"],
        ...     max_concurrency=2,
        ...     timeout=30,
        ... )
        >>> config.resource_key, config.timeout_for("lookup")
        ('mcp:search', 30)
    """

    name: str
    command: str | None = None
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    pass_env: Sequence[str] = ()
    cwd: str | None = None
    url: str | None = None
    max_concurrency: int | None = None
    timeout: float | None = None
    tool_timeouts: Mapping[str, float] = field(default_factory=dict)
    connect_timeout: float = 30.0
    prefix_tool_names: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_transport(self)
        # Frozen: normalise through object.__setattr__, so a list from a
        # config file cannot be changed behind the config's back.
        object.__setattr__(self, "args", _strings(self.name, "args", self.args))
        object.__setattr__(self, "pass_env", _strings(self.name, "pass_env", self.pass_env))
        object.__setattr__(self, "env", _env(self.name, self.env))
        if self.max_concurrency is not None:
            _check_count(self.name, "max_concurrency", self.max_concurrency)
        if self.timeout is not None:
            _check_seconds(self.name, "timeout", self.timeout)
        _check_seconds(self.name, "connect_timeout", self.connect_timeout)
        timeouts = dict(self.tool_timeouts)
        for tool, seconds in timeouts.items():
            _check_seconds(self.name, f"tool_timeouts[{tool!r}]", seconds)
        object.__setattr__(self, "tool_timeouts", MappingProxyType(timeouts))

    @property
    def resource_key(self) -> str:
        """Worker-pool key of this server's tools: ``"mcp:<name>"``."""
        return f"mcp:{self.name}"

    @property
    def transport(self) -> str:
        """``"stdio"`` or ``"streamable_http"``."""
        return "stdio" if self.command is not None else "streamable_http"

    def timeout_for(self, tool: str) -> float | None:
        """Return the timeout in seconds of a call to ``tool``, or ``None`` for none."""
        return self.tool_timeouts.get(tool, self.timeout)

    def server_env(self) -> dict[str, str]:
        """Return the variables to set for the server process, before the SDK's defaults."""
        copied = {name: os.environ[name] for name in self.pass_env if name in os.environ}
        return {**copied, **self.env}

    def describe(self) -> str:
        """Return the command line or URL, for messages."""
        if self.command is not None:
            return " ".join([self.command, *self.args])
        return str(self.url)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"invalid MCP server name {name!r}: use letters, digits, '_' and '-' only, "
            "such as 'search' or 'web-tools'"
        )


def _check_transport(config: McpServerConfig) -> None:
    if (config.command is None) == (config.url is None):
        count = "both" if config.command is not None else "neither"
        raise ConfigurationError(
            f"MCP server {config.name!r} sets {count} of command and url: set command "
            "to start a stdio server, or url to reach a streamable HTTP server"
        )
    if config.command is not None and (not isinstance(config.command, str) or not config.command):
        raise ConfigurationError(
            f"MCP server {config.name!r} has an invalid command {config.command!r}: "
            "pass the executable as a non-empty string and its arguments in args"
        )
    if config.url is not None and (
        not isinstance(config.url, str) or not config.url.startswith(("http://", "https://"))
    ):
        raise ConfigurationError(
            f"MCP server {config.name!r} has an invalid url {config.url!r}: pass an "
            "http:// or https:// address, such as 'http://127.0.0.1:8000/mcp'"
        )
    if config.url is not None and (config.args or config.env or config.pass_env or config.cwd):
        raise ConfigurationError(
            f"MCP server {config.name!r} sets url and also args, env, pass_env or cwd, "
            "which only apply to a server started with command; remove them"
        )


def _strings(server: str, name: str, values: object) -> tuple[str, ...]:
    # A bare string is a sequence too, and would become one argument per letter.
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigurationError(
            f"MCP server {server!r}: {name} must be a list of strings, got {values!r}"
        )
    for value in values:
        if not isinstance(value, str):
            raise ConfigurationError(
                f"MCP server {server!r}: {name} must contain strings only, got {value!r}"
            )
    return tuple(values)


def _env(server: str, env: object) -> Mapping[str, str]:
    if not isinstance(env, Mapping):
        raise ConfigurationError(
            f"MCP server {server!r}: env must map variable names to strings, got {env!r}"
        )
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError(
                f"MCP server {server!r}: env must map variable names to strings, "
                f"got {name!r}: {value!r}"
            )
    return MappingProxyType(dict(env))


def _check_count(server: str, name: str, value: object) -> None:
    # bool is an int subclass, but max_concurrency=True is a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"MCP server {server!r}: {name} must be an int of at least 1, got {value!r}"
        )


def _check_seconds(server: str, name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"MCP server {server!r}: {name} must be a positive number of seconds, got {value!r}"
        )
