"""The public surface: every name in ``__all__`` exists and every public name is listed."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "dragonscale_lc",
    "dragonscale_lc.runtime",
    "dragonscale_lc.compiler",
    "dragonscale_lc.runnables",
    "dragonscale_lc.graphs",
    "dragonscale_lc.tools",
    "dragonscale_lc.tools.wasm",
    "dragonscale_lc.tools.mcp",
    "dragonscale_lc.cli",
    "dragonscale_lc.testing",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_exist(package: str) -> None:
    module = importlib.import_module(package)

    missing = [name for name in module.__all__ if not hasattr(module, name)]

    assert missing == []


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_are_listed(package: str) -> None:
    module = importlib.import_module(package)

    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "TYPE_CHECKING"}
    }

    assert public - set(module.__all__) == set()
