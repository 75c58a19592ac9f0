"""The built-in tools against the langchain-tests standard suites.

Each tool gets one unit and one integration subclass. The tools are module
level instances, so tool_constructor returns the instance and
tool_constructor_params stays empty, as the suites require for instances.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from dragonscale_lc.tools import argmax_tool, argmin_tool, country_facts_tool, math_tool


class _MathExample:
    @property
    def tool_constructor(self) -> BaseTool:
        return math_tool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"expression": "(3 + 4) * 2"}


class _CountryFactsExample:
    @property
    def tool_constructor(self) -> BaseTool:
        return country_facts_tool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        # A list field, because a list output is the case where the text a
        # model reads differs most from the value returned.
        return {"name": "Switzerland", "field": "languages"}


class _ArgmaxExample:
    @property
    def tool_constructor(self) -> BaseTool:
        return argmax_tool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"labels": ["Japan", "Vietnam"], "values": [127080000, "90730000"]}


class _ArgminExample:
    @property
    def tool_constructor(self) -> BaseTool:
        return argmin_tool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"labels": ["Japan", "Vietnam"], "values": [127080000, "90730000"]}


class TestMathUnit(_MathExample, ToolsUnitTests):
    pass


class TestMathIntegration(_MathExample, ToolsIntegrationTests):
    pass


class TestCountryFactsUnit(_CountryFactsExample, ToolsUnitTests):
    pass


class TestCountryFactsIntegration(_CountryFactsExample, ToolsIntegrationTests):
    pass


class TestArgmaxUnit(_ArgmaxExample, ToolsUnitTests):
    pass


class TestArgmaxIntegration(_ArgmaxExample, ToolsIntegrationTests):
    pass


class TestArgminUnit(_ArgminExample, ToolsUnitTests):
    pass


class TestArgminIntegration(_ArgminExample, ToolsIntegrationTests):
    pass
