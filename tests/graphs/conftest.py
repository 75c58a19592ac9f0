"""Fixtures of the LangGraph tests: the fake OpenAI endpoint and tools that count their calls."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest
import respx
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.types import interrupt

POPULATIONS = {"Japan": 127080000, "Vietnam": 89708900}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture
def calls() -> collections.Counter[str]:
    """Tool invocations, keyed ``"tool(argument)"``."""
    return collections.Counter()


@pytest.fixture
def tools(calls: collections.Counter[str]) -> list[BaseTool]:
    async def population(country: str) -> int:
        """Return the population of a country."""
        calls[f"population({country})"] += 1
        if country not in POPULATIONS:
            raise ValueError(f"unknown country {country!r}")
        return POPULATIONS[country]

    async def ratio(a: float, b: float) -> float:
        """Return a divided by b."""
        calls[f"ratio({a}, {b})"] += 1
        return a / b

    def ask_human(question: str) -> str:
        """Ask the user a question and return the reply."""
        calls[f"ask_human({question})"] += 1
        return str(interrupt(question))

    return [
        StructuredTool.from_function(coroutine=population),
        StructuredTool.from_function(coroutine=ratio),
        StructuredTool.from_function(ask_human),
    ]
