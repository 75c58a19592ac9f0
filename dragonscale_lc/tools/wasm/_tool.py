"""WasmTool and wasm_tool: a WASI module as a LangChain tool."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import wasmtime
from jsonschema import Draft202012Validator, SchemaError
from jsonschema import ValidationError as SchemaValidationError
from langchain_core.tools import ToolException

from ..._errors import ConfigurationError
from .._base import BuiltinTool
from ._engine import WasmEngine, default_engine
from ._limits import (
    DEFAULT_FUEL,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIMEOUT,
    WasmLimits,
)
from ._sandbox import WASI, run_module

__all__ = ["WasmTool", "wasm_tool"]

logger = logging.getLogger(__name__)


class WasmTool(BuiltinTool):
    """A tool that runs a WASI module once per call, in a fresh sandbox.

    Only a sync implementation exists, so the compiler runs each call in one
    of its worker threads and a direct ``ainvoke`` runs it in the event loop's
    default executor. wasmtime-py calls Wasmtime through ctypes, which releases
    the GIL while WebAssembly runs, so calls of WASM tools run at the same time
    as each other and as other tools.

    Attributes:
        limits: The sandbox limits of every call.
        env: Names of host environment variables passed to the module. All
            others are hidden from it.
        sha256: SHA-256 of the module's bytes, in hex.
    """

    limits: WasmLimits
    env: tuple[str, ...] = ()
    sha256: str


class _Call:
    """The function behind a WasmTool: check the arguments, then run the module."""

    def __init__(
        self,
        *,
        engine: WasmEngine,
        module: wasmtime.Module,
        name: str,
        validator: Draft202012Validator,
        limits: WasmLimits,
        env: tuple[str, ...],
    ) -> None:
        self._engine = engine
        self._module = module
        self._name = name
        self._validator = validator
        self._limits = limits
        self._env = env

    def __call__(self, **arguments: Any) -> Any:
        problems = sorted(self._validator.iter_errors(arguments), key=lambda error: error.path)
        if problems:
            described = "; ".join(_describe(problem) for problem in problems[:5])
            raise ToolException(
                f"Invalid arguments for {self._name}: {described}. Fix them and call it again."
            )
        return run_module(
            self._engine,
            self._module,
            tool=self._name,
            arguments=arguments,
            limits=self._limits,
            env=self._env,
        )


def wasm_tool(
    module: str | os.PathLike[str] | bytes | bytearray,
    *,
    name: str,
    description: str,
    args_schema: Mapping[str, Any],
    fuel: int | None = DEFAULT_FUEL,
    timeout: float | None = DEFAULT_TIMEOUT,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    max_output: int = DEFAULT_MAX_OUTPUT,
    env: Iterable[str] = (),
    engine: WasmEngine | None = None,
) -> WasmTool:
    """Return a tool that runs a WASI (preview 1) command module once per call.

    The module reads the call's arguments as one JSON object on stdin. It
    writes its result as one JSON value on stdout, and exit code 0 means
    success. It runs with no preopened directory, no network, ``argv ==
    [name]`` and only the environment variables named in ``env``. Every
    keyword except ``engine`` is plain data, so a configuration file can
    declare the tool.

    Args:
        module: Path of a ``.wasm`` file, or the module's binary bytes (such as
            the output of ``wasmtime.wat2wasm``).
        name: The tool's name in plans.
        description: What the tool does, for the planner.
        args_schema: JSON Schema of the arguments object, with ``properties``;
            each call is validated against it before the module runs.
        fuel: Fuel units per call (about one per instruction); ``None`` for no limit.
        timeout: Wall-clock seconds per call; ``None`` for no limit.
        memory_limit: Bytes of linear memory per call; ``None`` for no limit.
        max_output: Bytes of stdout per call.
        env: Names of host environment variables to pass to the module; their
            values are read at each call, and unset names are left out.
        engine: The engine to compile and run in; by default one shared by
            every WASM tool in the process.

    Raises:
        ConfigurationError: The file is missing, the module is invalid or not
            a WASI command, the schema is invalid, or a limit is not positive.

    Example:
        >>> from wasmtime import wat2wasm
        >>> tool = wasm_tool(
        ...     wat2wasm('(module (memory (export "memory") 1) (func (export "_start")))'),
        ...     name="noop",
        ...     description="Do nothing.",
        ...     args_schema={"type": "object", "properties": {}},
        ... )
        >>> tool.limits.timeout
        10.0
    """
    limits = WasmLimits(
        fuel=fuel, timeout=timeout, memory_limit=memory_limit, max_output=max_output
    )
    if not name:
        raise ConfigurationError("a WASM tool needs a non-empty name")
    schema = _check_schema(name, args_schema)
    engine = engine or default_engine()
    compiled, digest = _compile(engine, name, module)
    variables = tuple(env)
    logger.debug("Loaded WASM tool %s (sha256 %s)", name, digest)

    call = _Call(
        engine=engine,
        module=compiled,
        name=name,
        validator=Draft202012Validator(schema),
        limits=limits,
        env=variables,
    )
    return WasmTool(
        name=name,
        description=description,
        args_schema=schema,
        func=call,
        limits=limits,
        env=variables,
        sha256=digest,
    )


def _check_schema(name: str, args_schema: Mapping[str, Any]) -> dict[str, Any]:
    schema = dict(args_schema)
    if schema.get("type", "object") != "object" or not isinstance(schema.get("properties"), dict):
        raise ConfigurationError(
            f"args_schema of WASM tool {name!r} must be a JSON Schema of an object with "
            '"properties", such as {"type": "object", "properties": {"text": {"type": '
            '"string"}}, "required": ["text"]}'
        )
    schema.setdefault("type", "object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise ConfigurationError(
            f"args_schema of WASM tool {name!r} is not a valid JSON Schema: {error.message}"
        ) from error
    return schema


def _compile(
    engine: WasmEngine, name: str, module: str | os.PathLike[str] | bytes | bytearray
) -> tuple[wasmtime.Module, str]:
    if isinstance(module, bytes | bytearray):
        wasm, origin = bytes(module), "the given bytes"
    else:
        try:
            wasm = Path(module).read_bytes()
        except OSError as error:
            raise ConfigurationError(
                f"cannot read the module of WASM tool {name!r} from {os.fspath(module)!r}: "
                f"{error.strerror}"
            ) from error
        origin = repr(os.fspath(module))

    try:
        compiled, digest = engine.compile(wasm)
    except wasmtime.WasmtimeError as error:
        raise ConfigurationError(
            f"the module of WASM tool {name!r} ({origin}) is not valid WebAssembly: {error}"
        ) from error
    _check_interface(name, compiled)
    return compiled, digest


def _check_interface(name: str, module: wasmtime.Module) -> None:
    foreign = [f"{item.module}.{item.name}" for item in module.imports if item.module != WASI]
    if foreign:
        raise ConfigurationError(
            f"WASM tool {name!r} imports {', '.join(foreign)}; a WASM tool may import only "
            f"{WASI} functions"
        )
    starts = [item for item in module.exports if item.name == "_start"]
    if not starts or not isinstance(starts[0].type, wasmtime.FuncType):
        raise ConfigurationError(
            f"WASM tool {name!r} exports no _start function; build it as a WASI command "
            "(a program with a main function), not as a library"
        )


def _describe(problem: SchemaValidationError) -> str:
    location = problem.json_path.removeprefix("$.").removeprefix("$") or "input"
    return f"{location}: {problem.message}"
