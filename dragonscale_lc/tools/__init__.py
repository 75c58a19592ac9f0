"""Built-in LangChain tools for demos, benchmarks and tests.

Called with plain arguments, every tool raises
:class:`langchain_core.tools.ToolException` for bad input, so the message (what
was wrong and what to pass instead) reaches the joiner as an error observation.
Called with a ``ToolCall``, a tool returns that message as a ``ToolMessage``
with status ``"error"`` instead.

Example:
    >>> from dragonscale_lc.tools import builtin_tools
    >>> [tool.name for tool in builtin_tools()]
    ['math', 'country_facts', 'argmax', 'argmin']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import PythonToolEntry, ToolsConfig, WasmToolEntry, load_tools_config
from ._country import country_facts_tool
from ._math import math_tool
from ._ranking import argmax_tool, argmin_tool

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = [
    "PythonToolEntry",
    "ToolsConfig",
    "WasmToolEntry",
    "argmax_tool",
    "argmin_tool",
    "builtin_tools",
    "country_facts_tool",
    "load_tools_config",
    "math_tool",
]


def builtin_tools() -> list[BaseTool]:
    """Return the built-in tools: math, country_facts, argmax and argmin.

    Returns:
        A new list on each call, so callers may extend it with their own tools.
    """
    return [math_tool, country_facts_tool, argmax_tool, argmin_tool]
