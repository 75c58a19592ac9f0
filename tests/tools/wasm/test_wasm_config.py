"""Building WASM tools: limits, schemas, module checks and the module cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from wasm_modules import ECHO, NO_ARGUMENTS, TEXT_SCHEMA
from wasmtime import wat2wasm

from dragonscale_lc import ConfigurationError
from dragonscale_lc.tools.wasm import WasmEngine, WasmLimits, wasm_tool


def load(module: Any, **options: Any) -> Any:
    return wasm_tool(
        module,
        **{"name": "echo", "description": "Echo.", "args_schema": TEXT_SCHEMA, **options},
    )


def test_defaults_are_documented_limits() -> None:
    tool = load(wat2wasm(ECHO))

    assert tool.limits == WasmLimits(
        fuel=1_000_000_000, timeout=10.0, memory_limit=64 * 1024 * 1024, max_output=1024 * 1024
    )
    assert tool.env == ()


def test_loads_module_from_path(tmp_path: Path) -> None:
    path = tmp_path / "echo.wasm"
    path.write_bytes(wat2wasm(ECHO))

    tool = load(path)

    assert tool.invoke({"text": "file"}) == {"echo": {"text": "file"}}


def test_missing_file_is_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.wasm"

    with pytest.raises(ConfigurationError) as caught:
        load(missing)

    assert str(caught.value) == (
        f"cannot read the module of WASM tool 'echo' from {str(missing)!r}: "
        "No such file or directory"
    )


def test_invalid_module_is_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"\(the given bytes\) is not valid WebAssembly"):
        load(b"not wasm")


def test_module_without_start_rejected() -> None:
    library = wat2wasm('(module (func (export "run")))')

    with pytest.raises(ConfigurationError, match=r"exports no _start function"):
        load(library)


def test_foreign_import_rejected() -> None:
    module = wat2wasm('(module (import "env" "now" (func)) (func (export "_start")))')

    with pytest.raises(ConfigurationError) as caught:
        load(module)

    assert str(caught.value) == (
        "WASM tool 'echo' imports env.now; a WASM tool may import only "
        "wasi_snapshot_preview1 functions"
    )


@pytest.mark.parametrize(
    "schema",
    [{"type": "string"}, {"type": "object"}, {"type": "object", "properties": []}],
)
def test_non_object_schema_rejected(schema: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"must be a JSON Schema of an object"):
        load(wat2wasm(ECHO), args_schema=schema)


def test_invalid_schema_rejected() -> None:
    schema = {"type": "object", "properties": {"text": {"type": "text"}}}

    with pytest.raises(ConfigurationError, match=r"is not a valid JSON Schema: "):
        load(wat2wasm(ECHO), args_schema=schema)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("fuel", 0, "fuel=0 is invalid: pass a positive integer or None"),
        ("fuel", True, "fuel=True is invalid: pass a positive integer or None"),
        ("memory_limit", -1, "memory_limit=-1 is invalid: pass a positive integer or None"),
        ("max_output", None, "max_output=None is invalid: pass a positive integer"),
        ("timeout", 0, "timeout=0 is invalid: pass a positive number of seconds, or None"),
        ("timeout", float("inf"), "timeout=inf is invalid"),
    ],
)
def test_invalid_limit_rejected(option: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        load(wat2wasm(ECHO), **{option: value})


def test_empty_name_rejected() -> None:
    with pytest.raises(ConfigurationError, match="non-empty name"):
        load(wat2wasm(ECHO), name="")


def test_engine_compiles_each_module_once() -> None:
    engine = WasmEngine()
    wasm = wat2wasm(ECHO)

    first = load(wasm, engine=engine, name="first")
    second = load(bytes(wasm), engine=engine, name="second", args_schema=NO_ARGUMENTS)

    assert engine.module_count == 1
    assert first.sha256 == second.sha256


def test_deadline_ticks_round_up_with_one_spare() -> None:
    engine = WasmEngine(epoch_interval=0.01, epoch_ticker=False)

    assert engine.deadline_ticks(0.05) == 6
    assert engine.deadline_ticks(0.001) == 2
