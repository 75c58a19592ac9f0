"""Errors of WASM tool calls.

Every error is a :class:`langchain_core.tools.ToolException`, so the compiler
records it as a failed task and a ``ToolCall`` gets it back as an error
message, and a :class:`~dragonscale_lc.RunError`::

    WasmToolError                 a call of a WASM tool failed
    ├── WasmLimitError            a sandbox limit stopped the module
    │   ├── WasmOutOfFuelError    fuel ran out
    │   ├── WasmTimeoutError      wall-clock timeout (epoch deadline)
    │   ├── WasmMemoryLimitError  linear memory reached memory_limit
    │   └── WasmOutputLimitError  stdout exceeded max_output
    ├── WasmFileAccessError       the module tried to open a file
    ├── WasmExitError             the module exited with a non-zero code
    ├── WasmTrapError             the module trapped (a bug in the module)
    └── WasmInvalidOutputError    stdout is not one JSON value
"""

from __future__ import annotations

from langchain_core.tools import ToolException

from ..._errors import RunError

__all__ = [
    "WasmExitError",
    "WasmFileAccessError",
    "WasmInvalidOutputError",
    "WasmLimitError",
    "WasmMemoryLimitError",
    "WasmOutOfFuelError",
    "WasmOutputLimitError",
    "WasmTimeoutError",
    "WasmToolError",
    "WasmTrapError",
]


class WasmToolError(ToolException, RunError):
    """A call of a WASM tool failed; the run and the tool stay usable.

    Attributes:
        tool: The name of the tool.
        stderr: What the module wrote to stderr, decoded and truncated.
    """

    def __init__(self, message: str, *, tool: str, stderr: str = "") -> None:
        super().__init__(message)
        self.tool = tool
        self.stderr = stderr


class WasmLimitError(WasmToolError):
    """A sandbox limit stopped the module.

    Attributes:
        limit: The value of the limit that was reached, in its own unit
            (fuel units, seconds or bytes).
    """

    def __init__(self, message: str, *, tool: str, limit: float, stderr: str = "") -> None:
        super().__init__(message, tool=tool, stderr=stderr)
        self.limit = limit


class WasmOutOfFuelError(WasmLimitError):
    """The module used all of its fuel."""


class WasmTimeoutError(WasmLimitError):
    """The module ran past its wall-clock timeout."""


class WasmMemoryLimitError(WasmLimitError):
    """The module needed more linear memory than its memory limit."""


class WasmOutputLimitError(WasmLimitError):
    """The module wrote more than ``max_output`` bytes to stdout."""


class WasmFileAccessError(WasmToolError):
    """The module tried to open a file, and the sandbox has no filesystem.

    Attributes:
        paths: The paths the module passed to ``path_open``, in call order.
    """

    def __init__(
        self, message: str, *, tool: str, paths: tuple[str, ...], stderr: str = ""
    ) -> None:
        super().__init__(message, tool=tool, stderr=stderr)
        self.paths = paths


class WasmExitError(WasmToolError):
    """The module exited with a non-zero exit code.

    Attributes:
        exit_code: The code the module passed to ``proc_exit``.
    """

    def __init__(self, message: str, *, tool: str, exit_code: int, stderr: str = "") -> None:
        super().__init__(message, tool=tool, stderr=stderr)
        self.exit_code = exit_code


class WasmTrapError(WasmToolError):
    """The module trapped, for example on ``unreachable`` (how a Rust panic ends).

    Attributes:
        trap: Wasmtime's trap message, such as ``wasm trap: integer divide by zero``.
    """

    def __init__(self, message: str, *, tool: str, trap: str, stderr: str = "") -> None:
        super().__init__(message, tool=tool, stderr=stderr)
        self.trap = trap


class WasmInvalidOutputError(WasmToolError):
    """The module exited normally, but its stdout is not exactly one JSON value."""
