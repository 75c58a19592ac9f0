"""Starting the test MCP server (mcp_test_server.py) over stdio and streamable HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool

from dragonscale_lc.tools.mcp import McpServer, McpServerConfig

SERVER_SCRIPT = Path(__file__).with_name("mcp_test_server.py")


def stdio_config(name: str, **options: Any) -> McpServerConfig:
    """Return a config that starts the test server as a subprocess over stdio."""
    return McpServerConfig(
        name=name, command=sys.executable, args=[str(SERVER_SCRIPT), "stdio"], **options
    )


def tool(server: McpServer, name: str) -> BaseTool:
    """Return the server's tool called ``name``."""
    return next(tool for tool in server.tools if tool.name == name)


def free_port() -> int:
    """Return a loopback port that no socket was bound to a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HttpServer:
    """The test server as a process serving streamable HTTP on a loopback port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the process and wait until it listens."""
        self._process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "http", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line.strip() == "ready", f"the test server printed {line!r} instead of 'ready'"

    def stop(self) -> None:
        """End the process, if it still runs, and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()

    def config(self, name: str, **options: Any) -> McpServerConfig:
        """Return a config that reaches this server."""
        return McpServerConfig(name=name, url=self.url, **options)
