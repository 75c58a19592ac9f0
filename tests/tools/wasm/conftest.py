"""The make_tool fixture: WASM tools built from WAT text with small limits."""

from __future__ import annotations

from typing import Any

import pytest
from wasm_modules import NO_ARGUMENTS, SMALL_LIMITS, MakeTool
from wasmtime import wat2wasm

from dragonscale_lc.tools.wasm import WasmEngine, WasmTool, wasm_tool


@pytest.fixture
def make_tool() -> MakeTool:
    """Return a factory of WASM tools from WAT text, with small limits by default."""

    def make(
        wat: str,
        name: str,
        *,
        args_schema: dict[str, Any] | None = None,
        engine: WasmEngine | None = None,
        **options: Any,
    ) -> WasmTool:
        return wasm_tool(
            wat2wasm(wat),
            name=name,
            description=f"The {name} test module.",
            args_schema=args_schema or NO_ARGUMENTS,
            engine=engine,
            **{**SMALL_LIMITS, **options},
        )

    return make
