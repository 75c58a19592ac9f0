"""WasmLimits: the sandbox limits of one WASM tool."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..._errors import ConfigurationError

__all__ = [
    "DEFAULT_FUEL",
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TIMEOUT",
    "WasmLimits",
]

# Wasmtime charges about one unit of fuel per WebAssembly instruction, so this
# allows roughly a billion instructions per call.
DEFAULT_FUEL = 1_000_000_000
DEFAULT_TIMEOUT = 10.0
DEFAULT_MEMORY_LIMIT = 64 * 1024 * 1024
DEFAULT_MAX_OUTPUT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class WasmLimits:
    """Limits applied to every call of a WASM tool; ``None`` turns a limit off.

    Attributes:
        fuel: Fuel units per call. Wasmtime charges roughly one unit per
            WebAssembly instruction and traps when the fuel runs out.
        timeout: Wall-clock seconds per call, enforced by epoch interruption.
        memory_limit: Bytes of linear memory per call. ``memory.grow`` fails
            beyond it, and a module whose initial memory is larger does not
            start.
        max_output: Bytes the module may write to stdout per call. Writes past
            it fail inside the module, and the call fails.

    Raises:
        ConfigurationError: A limit is not a positive number.
    """

    fuel: int | None = DEFAULT_FUEL
    timeout: float | None = DEFAULT_TIMEOUT
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT
    max_output: int = DEFAULT_MAX_OUTPUT

    def __post_init__(self) -> None:
        _check_count("fuel", self.fuel)
        _check_count("memory_limit", self.memory_limit)
        _check_count("max_output", self.max_output)
        timeout = self.timeout
        if timeout is not None and not (
            isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0
        ):
            raise ConfigurationError(
                f"timeout={timeout!r} is invalid: pass a positive number of seconds, "
                "or None for no time limit"
            )


def _check_count(name: str, value: int | None) -> None:
    # bool is an int subclass, and fuel=True is certainly a mistake.
    if value is None and name != "max_output":
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        allowed = "a positive integer" if name == "max_output" else "a positive integer or None"
        raise ConfigurationError(f"{name}={value!r} is invalid: pass {allowed}")
