"""The argmax and argmin tools: pick a label by its value."""

from __future__ import annotations

import pytest
from langchain_core.tools import StructuredTool, ToolException

from dragonscale_lc.tools import argmax_tool, argmin_tool, builtin_tools

COUNTRIES = ["Japan", "Vietnam", "Thailand"]


def pick(tool: StructuredTool, labels: list[str], values: list[object]) -> object:
    return tool.invoke({"labels": labels, "values": values})


# -- values --------------------------------------------------------------------------


def test_argmax_picks_largest() -> None:
    assert pick(argmax_tool, COUNTRIES, [127.0, 97.5, 300.25]) == "Thailand"


def test_argmin_picks_smallest() -> None:
    assert pick(argmin_tool, COUNTRIES, [127.0, 97.5, 300.25]) == "Vietnam"


def test_numeric_text_compared_numerically() -> None:
    # As text, "9" sorts after "10", but as a number it is smaller.
    values: list[object] = ["9", " 10.0 ", "2.5e0"]

    assert pick(argmax_tool, COUNTRIES, values) == "Vietnam"
    assert pick(argmin_tool, COUNTRIES, values) == "Thailand"


def test_numbers_and_numeric_text_mix() -> None:
    assert pick(argmax_tool, COUNTRIES, [127080000, "89708900.0", 69037513.5]) == "Japan"


@pytest.mark.parametrize(
    ("tool", "values", "expected"),
    [
        (argmax_tool, [5, "5", 5.0], "a"),
        (argmin_tool, [5, "5", 5.0], "a"),
        (argmax_tool, [1, 7, 7], "b"),
        (argmin_tool, [7, 1, 1], "b"),
    ],
)
def test_ties_go_to_the_first_label(
    tool: StructuredTool, values: list[object], expected: str
) -> None:
    assert pick(tool, ["a", "b", "c"], values) == expected


@pytest.mark.parametrize("tool", [argmax_tool, argmin_tool])
def test_single_label(tool: StructuredTool) -> None:
    assert pick(tool, ["Japan"], [1]) == "Japan"


async def test_ainvoke() -> None:
    result = await argmax_tool.ainvoke({"labels": COUNTRIES, "values": [1, "3", 2]})

    assert result == "Vietnam"


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("tool", [argmax_tool, argmin_tool])
def test_lengths_must_match(tool: StructuredTool) -> None:
    with pytest.raises(
        ToolException,
        match=r"^len\(labels\) is 3 but len\(values\) is 2\. Pass exactly one value per label",
    ):
        pick(tool, COUNTRIES, [1, 2])


@pytest.mark.parametrize("tool", [argmax_tool, argmin_tool])
def test_empty_lists(tool: StructuredTool) -> None:
    with pytest.raises(ToolException, match=r"^labels and values are empty\. Pass at least one"):
        pick(tool, [], [])


def test_non_numeric_value_names_position() -> None:
    with pytest.raises(ToolException) as caught:
        pick(argmax_tool, COUNTRIES, [1, 2, "98 million"])

    assert str(caught.value) == (
        "values[2] = '98 million' is not a number. Pass numbers or numeric text such as "
        "'1.5e6', without units or thousands separators."
    )
    assert isinstance(caught.value.__cause__, ValueError)


def test_thousands_separators_are_rejected() -> None:
    with pytest.raises(ToolException, match=r"^values\[0\] = '1,000' is not a number\."):
        pick(argmin_tool, ["a", "b"], ["1,000", 2])


@pytest.mark.parametrize("value", ["nan", "inf", float("nan"), float("-inf")])
def test_non_finite_values_rejected(value: object) -> None:
    # NaN compares false with everything, so it would otherwise win or lose silently.
    with pytest.raises(ToolException, match=r"^values\[1\] = .* is not a finite number\."):
        pick(argmax_tool, ["a", "b"], [1, value])


async def test_ainvoke_raises_the_same_error() -> None:
    with pytest.raises(ToolException, match=r"^len\(labels\) is 1 but len\(values\) is 0\."):
        await argmin_tool.ainvoke({"labels": ["a"], "values": []})


# -- names, arguments and descriptions ---------------------------------------------


@pytest.mark.parametrize(("tool", "name"), [(argmax_tool, "argmax"), (argmin_tool, "argmin")])
def test_registered_name_and_arguments(tool: StructuredTool, name: str) -> None:
    assert tool in builtin_tools()
    assert tool.name == name
    assert list(tool.args) == ["labels", "values"]


@pytest.mark.parametrize("tool", [argmax_tool, argmin_tool])
def test_description_shows_call_and_ties(tool: StructuredTool) -> None:
    assert f'{tool.name}(["Japan", "Vietnam"], [$1, $2]) returns' in tool.description
    assert "On a tie the first such label wins." in tool.description


def test_builtin_tools_returns_fresh_list() -> None:
    tools = builtin_tools()
    tools.append(argmax_tool)

    assert [tool.name for tool in builtin_tools()] == ["math", "country_facts", "argmax", "argmin"]
