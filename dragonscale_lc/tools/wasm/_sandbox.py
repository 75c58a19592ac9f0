"""Run one call of a WASI module in a fresh store, and turn failures into tool errors."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from ._capture import OutputCapture
from ._engine import WasmEngine
from ._errors import (
    WasmExitError,
    WasmFileAccessError,
    WasmInvalidOutputError,
    WasmMemoryLimitError,
    WasmOutOfFuelError,
    WasmOutputLimitError,
    WasmTimeoutError,
    WasmToolError,
    WasmTrapError,
)
from ._limits import WasmLimits

__all__ = ["run_module"]

WASI = "wasi_snapshot_preview1"
STDERR_LIMIT = 8 * 1024
EXCERPT_LENGTH = 300
WASM_PAGE = 64 * 1024
EBADF = 8  # WASI preview 1 errno values differ from the host's.
# With fuel or a timeout turned off the store still needs a value, because
# Wasmtime traps at once on a store without fuel or without an epoch deadline.
UNLIMITED_FUEL = 2**64 - 1
UNLIMITED_TICKS = 2**63


@dataclass(slots=True)
class _Call:
    """Record of one call: its limits, its output and the files it tried to open."""

    tool: str
    limits: WasmLimits
    stdout: OutputCapture
    stderr: OutputCapture = field(
        default_factory=lambda: OutputCapture(STDERR_LIMIT, fail_past_limit=False)
    )
    opened_paths: list[str] = field(default_factory=list)

    def stderr_text(self) -> str:
        return self.stderr.getvalue().decode("utf-8", errors="replace").strip()

    def with_stderr(self, message: str) -> str:
        text = self.stderr_text()
        if not text:
            return f"{message} The module wrote nothing to stderr."
        return f"{message} stderr: {_excerpt(text)}"


def run_module(
    engine: WasmEngine,
    module: wasmtime.Module,
    *,
    tool: str,
    arguments: dict[str, Any],
    limits: WasmLimits,
    env: Sequence[str] = (),
) -> Any:
    """Run ``module``'s ``_start`` with ``arguments`` as JSON on stdin; return its JSON output.

    Raises:
        WasmToolError: The module broke a limit, failed or wrote invalid JSON.
    """
    call = _Call(tool, limits, OutputCapture(limits.max_output, fail_past_limit=True))
    store = wasmtime.Store(engine.engine)
    store.set_fuel(limits.fuel if limits.fuel is not None else UNLIMITED_FUEL)
    if limits.memory_limit is not None:
        store.set_limits(memory_size=limits.memory_limit)
    store.set_wasi(_wasi_config(call, json.dumps(arguments).encode(), env))
    linker = _linker(engine, call)

    with engine.running():
        # The deadline counts from the current epoch, so it is set only once
        # the ticker runs for this call.
        ticks = UNLIMITED_TICKS
        if limits.timeout is not None:
            ticks = engine.deadline_ticks(limits.timeout)
        store.set_epoch_deadline(ticks)
        failure = _run(store, linker, module, call)

    if failure is not None:
        raise failure
    return _parse_output(call)


def _wasi_config(call: _Call, stdin: bytes, env: Sequence[str]) -> wasmtime.WasiConfig:
    # Nothing is inherited and no directory is preopened, so the module can read
    # no host files, arguments or variables beyond these.
    config = wasmtime.WasiConfig()
    config.argv = [call.tool]
    config.env = [(name, os.environ[name]) for name in env if name in os.environ]
    # NOTE: with wasmtime 51 these callbacks are released on Wasmtime's own
    # threads some time after the store is gone. If the interpreter exits in
    # that window, a Rust panic message is printed at exit.
    config.stdout_custom = call.stdout.write
    config.stderr_custom = call.stderr.write

    # The Python binding takes stdin only as a file. Wasmtime opens it right
    # away, so the file is removed before the module starts.
    descriptor, path = tempfile.mkstemp(prefix="dragonscale-wasm-stdin-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(stdin)
        config.stdin_file = path
    finally:
        os.unlink(path)
    return config


def _linker(engine: WasmEngine, call: _Call) -> wasmtime.Linker:
    """Return a WASI linker whose ``path_open`` records the path and fails with EBADF.

    With no preopened directory the real ``path_open`` fails with EBADF too;
    the replacement only adds the record, so the error can name the file.

    NOTE: wasi-libc (C, Rust std) looks for a preopened directory before it
    calls ``path_open``, so such programs likely fail without calling it. They
    then end with WasmExitError or WasmTrapError and their own message.
    """
    linker = wasmtime.Linker(engine.engine)
    linker.define_wasi()
    linker.allow_shadowing = True

    def path_open(caller: wasmtime.Caller, _fd: int, _dirflags: int, path: int, length: int,
                  *_rest: int) -> int:  # fmt: skip
        memory = caller.get("memory")
        if isinstance(memory, wasmtime.Memory):
            raw = memory.read(caller, path, path + length)
            call.opened_paths.append(bytes(raw).decode("utf-8", errors="replace"))
        else:
            call.opened_paths.append("<unreadable path>")
        return EBADF

    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    params = [i32, i32, i32, i32, i32, i64, i64, i32, i32]
    linker.define_func(
        WASI, "path_open", wasmtime.FuncType(params, [i32]), path_open, access_caller=True
    )
    return linker


def _run(
    store: wasmtime.Store, linker: wasmtime.Linker, module: wasmtime.Module, call: _Call
) -> WasmToolError | None:
    try:
        instance = linker.instantiate(store, module)
    except wasmtime.Trap as trap:
        return _trap_error(call, trap, None, store)
    except wasmtime.WasmtimeError as error:
        return _start_error(call, error)

    start = instance.exports(store)["_start"]
    assert isinstance(start, wasmtime.Func)
    try:
        start(store)
    except wasmtime.ExitTrap as exit_:
        if exit_.code != 0:
            return _exit_error(call, exit_.code, instance, store)
    except wasmtime.Trap as trap:
        return _trap_error(call, trap, instance, store)
    except wasmtime.WasmtimeError as error:
        return WasmToolError(
            call.with_stderr(f"WASM tool {call.tool!r} failed: {error}."), tool=call.tool
        )
    return None


def _start_error(call: _Call, error: wasmtime.WasmtimeError) -> WasmToolError:
    text = str(error)
    if "exceeds memory limits" in text:
        return WasmMemoryLimitError(
            f"WASM tool {call.tool!r} did not start: its initial memory is larger than "
            f"memory_limit={call.limits.memory_limit} bytes ({text}). Raise memory_limit "
            "for this tool.",
            tool=call.tool,
            limit=call.limits.memory_limit or 0,
        )
    return WasmToolError(
        f"WASM tool {call.tool!r} could not be instantiated: {text}", tool=call.tool
    )


def _trap_error(
    call: _Call, trap: wasmtime.Trap, instance: wasmtime.Instance | None, store: wasmtime.Store
) -> WasmToolError:
    code = trap.trap_code
    stderr = call.stderr_text()
    if code is wasmtime.TrapCode.OUT_OF_FUEL:
        return WasmOutOfFuelError(
            f"WASM tool {call.tool!r} ran out of fuel: it used all {call.limits.fuel} units "
            "(about one per instruction), which usually means an endless loop. Fix the "
            "module, or raise fuel for this tool if the work is legitimately that large.",
            tool=call.tool,
            limit=call.limits.fuel or 0,
            stderr=stderr,
        )
    if code is wasmtime.TrapCode.INTERRUPT:
        return WasmTimeoutError(
            f"WASM tool {call.tool!r} timed out after {call.limits.timeout:g} s. Fix the "
            "module if it loops, or raise timeout for this tool.",
            tool=call.tool,
            limit=call.limits.timeout or 0.0,
            stderr=stderr,
        )
    limit_error = _secondary_cause(call, instance, store)
    if limit_error is not None:
        return limit_error
    message = _trap_message(trap)
    return WasmTrapError(
        call.with_stderr(f"WASM tool {call.tool!r} trapped ({message}), a bug in the module."),
        tool=call.tool,
        trap=message,
        stderr=stderr,
    )


def _exit_error(
    call: _Call, exit_code: int, instance: wasmtime.Instance, store: wasmtime.Store
) -> WasmToolError:
    limit_error = _secondary_cause(call, instance, store)
    if limit_error is not None:
        return limit_error
    return WasmExitError(
        call.with_stderr(f"WASM tool {call.tool!r} exited with code {exit_code}."),
        tool=call.tool,
        exit_code=exit_code,
        stderr=call.stderr_text(),
    )


def _secondary_cause(
    call: _Call, instance: wasmtime.Instance | None, store: wasmtime.Store
) -> WasmToolError | None:
    """Return the sandbox restriction that most likely made the module fail, if any.

    A module that hits one of these gets only a failed call (EFBIG from
    ``fd_write``, EBADF from ``path_open``, -1 from ``memory.grow``) and then
    exits or traps in its own way, so the cause is read from the call's record.
    """
    stderr = call.stderr_text()
    if call.stdout.overflowed:
        return _output_limit_error(call)
    if call.opened_paths:
        paths = ", ".join(repr(path) for path in call.opened_paths)
        return WasmFileAccessError(
            call.with_stderr(
                f"WASM tool {call.tool!r} failed after trying to open {paths}: WASM tools "
                "have no filesystem access (no directory is preopened, so path_open "
                "returns EBADF). Pass the data in the tool's arguments instead."
            ),
            tool=call.tool,
            paths=tuple(call.opened_paths),
            stderr=stderr,
        )
    size = _memory_size(instance, store)
    limit = call.limits.memory_limit
    if limit is not None and size is not None and size + WASM_PAGE > limit:
        return WasmMemoryLimitError(
            call.with_stderr(
                f"WASM tool {call.tool!r} failed at the memory limit: its linear memory "
                f"is {size} bytes and memory_limit={limit} bytes leaves no room for "
                "another 64 KiB page. Raise memory_limit for this tool, or make it use "
                "less memory."
            ),
            tool=call.tool,
            limit=limit,
            stderr=stderr,
        )
    return None


def _output_limit_error(call: _Call) -> WasmOutputLimitError:
    return WasmOutputLimitError(
        f"WASM tool {call.tool!r} wrote more than max_output={call.limits.max_output} "
        "bytes to stdout. Raise max_output for this tool, or make its result smaller.",
        tool=call.tool,
        limit=call.limits.max_output,
        stderr=call.stderr_text(),
    )


def _memory_size(instance: wasmtime.Instance | None, store: wasmtime.Store) -> int | None:
    if instance is None:
        return None
    memory = instance.exports(store).get("memory")
    return memory.data_len(store) if isinstance(memory, wasmtime.Memory) else None


def _trap_message(trap: wasmtime.Trap) -> str:
    # Wasmtime's message starts with a backtrace; the cause is its last line,
    # such as "wasm trap: integer divide by zero".
    lines = [line.strip() for line in trap.message.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown trap"


def _parse_output(call: _Call) -> Any:
    if call.stdout.overflowed:
        raise _output_limit_error(call)
    output = call.stdout.getvalue()
    if not output.strip():
        raise WasmInvalidOutputError(
            call.with_stderr(
                f"WASM tool {call.tool!r} wrote nothing to stdout; it must write its "
                "result as one JSON value."
            ),
            tool=call.tool,
            stderr=call.stderr_text(),
        )
    try:
        return json.loads(output)
    except ValueError as error:
        raise WasmInvalidOutputError(
            f"WASM tool {call.tool!r} wrote invalid JSON to stdout ({error}); the output "
            f"starts with {_excerpt(output.decode('utf-8', errors='replace'))!r}. The "
            "module must write its result as exactly one JSON value.",
            tool=call.tool,
            stderr=call.stderr_text(),
        ) from error


def _excerpt(text: str) -> str:
    if len(text) <= EXCERPT_LENGTH:
        return text
    return text[: EXCERPT_LENGTH - 1] + "…"
