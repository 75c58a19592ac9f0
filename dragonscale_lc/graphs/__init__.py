"""LangGraph integration: a prebuilt LLMCompiler graph and a node for your own graphs.

Example:
    >>> from langchain_openai import ChatOpenAI
    >>> from dragonscale_lc.graphs import create_llm_compiler_graph
    >>> from dragonscale_lc.tools import builtin_tools
    >>> graph = create_llm_compiler_graph(ChatOpenAI(model="gpt-4o"), builtin_tools())
"""

from ._graph import create_llm_compiler_graph, recursion_limit
from ._node import LLMCompilerNode
from ._state import (
    CompilerProgress,
    DecisionState,
    ErrorState,
    LLMCompilerState,
    PlanErrorState,
    RoundState,
    SavedTaskError,
    TaskState,
)

__all__ = [
    "CompilerProgress",
    "DecisionState",
    "ErrorState",
    "LLMCompilerNode",
    "LLMCompilerState",
    "PlanErrorState",
    "RoundState",
    "SavedTaskError",
    "TaskState",
    "create_llm_compiler_graph",
    "recursion_limit",
]
