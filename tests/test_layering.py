"""The runtime core stays free of LLM, sandbox and cluster frameworks and of upper layers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN_PACKAGES = frozenset(
    {
        "langchain_core",
        "langchain_openai",
        "langgraph",
        "openai",
        "mcp",
        "langchain_mcp_adapters",
        "wasmtime",
        "dask",
        "distributed",
    }
)
UPPER_LAYERS = (
    "dragonscale_lc.compiler",
    "dragonscale_lc.graphs",
    "dragonscale_lc.tools",
    "dragonscale_lc.cli",
)

# Imports the runtime, runs a small graph (so imports done lazily at run time
# count too) and prints every module that ended up loaded. The top-level
# package loads the compiler and tools only on first use, so a plain import
# must load nothing beyond the runtime core.
PROBE = """
import asyncio, json, sys
from dragonscale_lc import DagExecutor, Ref, Task

async def double(x):
    return 2 * x

tasks = [Task(id=1, fn=len, args=("abc",)), Task(id=2, fn=double, args=(Ref(1),))]
report = asyncio.run(DagExecutor().run(tasks))
assert report[2].output == 6, report[2]
print(json.dumps(sorted(sys.modules)))
"""


def test_import_linter_contracts_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")

    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.fixture(scope="module")
def loaded_modules() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_runtime_loads_no_forbidden_package(loaded_modules: list[str]) -> None:
    top_level = {name.partition(".")[0] for name in loaded_modules}

    assert sorted(top_level & FORBIDDEN_PACKAGES) == []


def test_runtime_loads_no_upper_layer(loaded_modules: list[str]) -> None:
    upper = [
        name
        for name in loaded_modules
        if any(name == layer or name.startswith(f"{layer}.") for layer in UPPER_LAYERS)
    ]

    assert upper == []
