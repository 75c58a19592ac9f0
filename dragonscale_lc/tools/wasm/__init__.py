"""WASM tools: WASI modules run by wasmtime in a sandbox, as LangChain tools.

Requires the ``wasm`` extra: ``pip install 'dragonscale_lc[wasm]'``.

The interface a module implements (WASI preview 1, a command with ``_start``):

- stdin: one JSON object, the call's arguments, UTF-8, then end of file.
- stdout: one JSON value, the result. Surrounding whitespace is allowed;
  anything else fails the call.
- stderr: free text, kept (up to 8 KiB) for error messages.
- exit: returning from ``_start`` or ``proc_exit(0)`` is success; any other
  exit code fails the call with an excerpt of stderr.
- sandbox: ``argv == [tool name]``, an empty environment unless ``env`` names
  host variables, no preopened directory (so opening any file fails) and no
  sockets. Fuel, a wall-clock timeout, a memory limit and an output limit
  apply to each call, which runs in a fresh store and instance.

Example:
    >>> from wasmtime import wat2wasm
    >>> tool = wasm_tool(
    ...     wat2wasm('(module (memory (export "memory") 1) (func (export "_start")))'),
    ...     name="noop",
    ...     description="Do nothing.",
    ...     args_schema={"type": "object", "properties": {}},
    ...     timeout=1.0,
    ... )
    >>> tool.limits.timeout
    1.0
"""

from __future__ import annotations

try:
    import jsonschema  # noqa: F401
    import wasmtime  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ModuleNotFoundError(
        f"WASM tools need the {error.name!r} package: pip install 'dragonscale_lc[wasm]'",
        name=error.name,
    ) from error

from ._engine import WasmEngine
from ._errors import (
    WasmExitError,
    WasmFileAccessError,
    WasmInvalidOutputError,
    WasmLimitError,
    WasmMemoryLimitError,
    WasmOutOfFuelError,
    WasmOutputLimitError,
    WasmTimeoutError,
    WasmToolError,
    WasmTrapError,
)
from ._limits import WasmLimits
from ._tool import WasmTool, wasm_tool

__all__ = [
    "WasmEngine",
    "WasmExitError",
    "WasmFileAccessError",
    "WasmInvalidOutputError",
    "WasmLimitError",
    "WasmLimits",
    "WasmMemoryLimitError",
    "WasmOutOfFuelError",
    "WasmOutputLimitError",
    "WasmTimeoutError",
    "WasmTool",
    "WasmToolError",
    "WasmTrapError",
    "wasm_tool",
]
