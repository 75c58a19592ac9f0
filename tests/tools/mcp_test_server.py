"""An MCP server for the MCP tool tests, run over stdio or streamable HTTP.

Usage: ``python mcp_test_server.py stdio`` or
``python mcp_test_server.py http PORT``. HTTP binds to 127.0.0.1 only and
prints ``ready`` on stdout once it listens, so a test can wait for that line.

When ``DRAGONSCALE_TEST_STARTS`` names a file, the server appends one line to
it at start, so a test can count the processes that were started. The
``hold``, ``release`` and ``wait_running`` tools let a test see how many calls
of a group run at once without timing anything: held calls wait for the
test's ``release``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn
from mcp.server.fastmcp import Context, FastMCP


@dataclass
class Group:
    """Calls of ``hold`` and ``wait_forever`` that share a group name.

    State changes are synchronous, so a cancelled call can record its
    cancellation without awaiting anything; waiters wake on ``changed``.
    """

    running: int = 0
    peak: int = 0
    cancelled: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def update(self, running: int = 0, cancelled: int = 0) -> None:
        self.running += running
        self.peak = max(self.peak, self.running)
        self.cancelled += cancelled
        self.changed.set()
        self.changed = asyncio.Event()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self.changed.wait()


groups: defaultdict[str, Group] = defaultdict(Group)
sessions: set[int] = set()
calls: list[str] = []  # names of the tools called, in order

server = FastMCP("dragonscale-test", log_level="WARNING")


def _seen(ctx: Context, tool: str) -> None:  # type: ignore[type-arg]
    calls.append(tool)
    sessions.add(id(ctx.session))


@server.tool()
def add(a: int, b: int, ctx: Context) -> int:  # type: ignore[type-arg]
    """Add two integers."""
    _seen(ctx, "add")
    return a + b


@server.tool()
def echo(text: str, ctx: Context) -> str:  # type: ignore[type-arg]
    """Return the text unchanged."""
    _seen(ctx, "echo")
    return text


@server.tool()
def fail(reason: str) -> str:
    """Raise an error with the given reason."""
    raise ValueError(reason)


@server.tool()
def getenv(name: str) -> str:
    """Return an environment variable of the server process, or '<unset>'."""
    return os.environ.get(name, "<unset>")


@server.tool()
def stats(ctx: Context) -> dict[str, int]:  # type: ignore[type-arg]
    """Return this process's id, its tool calls and the sessions that made them."""
    _seen(ctx, "stats")
    return {"pid": os.getpid(), "calls": len(calls), "sessions": len(sessions)}


@server.tool()
def crash() -> str:
    """End the server process at once, as a crash would."""
    os._exit(1)


async def _run_until(state: Group, event: asyncio.Event) -> None:
    state.update(running=1)
    try:
        await event.wait()
    except asyncio.CancelledError:
        state.update(cancelled=1)
        raise
    finally:
        state.update(running=-1)


@server.tool()
async def hold(group: str, value: int = 0) -> int:
    """Wait until the group is released, then return the value."""
    state = groups[group]
    await _run_until(state, state.released)
    return value


@server.tool()
async def wait_forever(group: str) -> str:
    """Wait until cancelled."""
    await _run_until(groups[group], asyncio.Event())
    return "unreachable"


@server.tool()
async def wait_running(group: str, count: int) -> int:
    """Wait until at least ``count`` calls of the group run at once; return the peak."""
    state = groups[group]
    await state.wait_until(lambda: state.running >= count)
    return state.peak


@server.tool()
async def wait_cancelled(group: str, count: int) -> int:
    """Wait until ``count`` calls of the group were cancelled; return that count."""
    state = groups[group]
    await state.wait_until(lambda: state.cancelled >= count)
    return state.cancelled


@server.tool()
def release(group: str) -> int:
    """Let every current and later ``hold`` call of the group return; return the peak."""
    state = groups[group]
    state.released.set()
    return state.peak


@server.tool()
def peak(group: str) -> int:
    """Return the most calls of the group that ran at once."""
    return groups[group].peak


def main() -> None:
    starts = os.environ.get("DRAGONSCALE_TEST_STARTS")
    if starts:
        with open(starts, "a", encoding="utf-8") as file:
            file.write(f"{os.getpid()}\n")
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        serve_http(int(sys.argv[2]))


def serve_http(port: int) -> None:
    # Binding before uvicorn starts lets the server print "ready" once it
    # accepts connections, so the test need not poll the port.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    print("ready", flush=True)
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
