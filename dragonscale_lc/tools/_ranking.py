"""The ``argmax`` and ``argmin`` tools: which label has the largest or smallest value."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from langchain_core.tools import ToolException
from pydantic import BaseModel, Field

from .._tool_metadata import CACHEABLE_KEY
from ._base import BuiltinTool

__all__ = ["argmax_tool", "argmin_tool"]


class _RankingArgs(BaseModel):
    labels: list[str] = Field(description="The names to choose from, such as country names.")
    # Outputs of earlier steps often arrive as text, so numeric strings are
    # accepted here and parsed with a clear error below.
    values: list[float | str] = Field(
        description="One number per label, in the same order; numeric text such as '1.5e6' "
        "is accepted.",
    )


def argmax(labels: list[str], values: Sequence[float | str]) -> str:
    """Return the label with the largest value; on a tie, the first such label.

    Args:
        labels: The names to choose from.
        values: One number (or numeric string) per label, in the same order.

    Returns:
        The label at the position of the largest value.

    Raises:
        ToolException: The lists are empty or differ in length, or a value is
            not a finite number.

    Example:
        >>> argmax(["Japan", "Vietnam"], [127080000, "90730000"])
        'Japan'
    """
    return _pick(max, labels, values)


def argmin(labels: list[str], values: Sequence[float | str]) -> str:
    """Return the label with the smallest value; on a tie, the first such label.

    Args:
        labels: The names to choose from.
        values: One number (or numeric string) per label, in the same order.

    Returns:
        The label at the position of the smallest value.

    Raises:
        ToolException: The lists are empty or differ in length, or a value is
            not a finite number.

    Example:
        >>> argmin(["Japan", "Vietnam"], [127080000, "90730000"])
        'Vietnam'
    """
    return _pick(min, labels, values)


def _pick(
    choose: Callable[..., int],
    labels: list[str],
    values: Sequence[float | str],
) -> str:
    if len(labels) != len(values):
        raise ToolException(
            f"len(labels) is {len(labels)} but len(values) is {len(values)}. "
            "Pass exactly one value per label, in the same order."
        )
    if not labels:
        raise ToolException("labels and values are empty. Pass at least one label and its value.")

    numbers = [_number(value, position) for position, value in enumerate(values)]

    # max() and min() return the first of equal items, which makes ties go to
    # the earliest label.
    return labels[choose(range(len(numbers)), key=numbers.__getitem__)]


def _number(value: float | str, position: int) -> float:
    try:
        number = float(value)
    except ValueError as error:
        raise ToolException(
            f"values[{position}] = {value!r} is not a number. Pass numbers or numeric text "
            "such as '1.5e6', without units or thousands separators."
        ) from error

    # NaN compares false with everything, so it would silently lose or win.
    if not math.isfinite(number):
        raise ToolException(
            f"values[{position}] = {value!r} is not a finite number. Check the step that "
            "produced it."
        )
    return number


argmax_tool = BuiltinTool.from_function(
    func=argmax,
    name="argmax",
    metadata={CACHEABLE_KEY: True},
    description=(
        "Return the label whose value is the largest, as text. `labels` and `values` are "
        "lists of the same length; values are numbers (numeric text is accepted). On a tie "
        "the first such label wins. "
        'Example: argmax(["Japan", "Vietnam"], [$1, $2]) returns "Japan" when $1 is larger.'
    ),
    args_schema=_RankingArgs,
)

argmin_tool = BuiltinTool.from_function(
    func=argmin,
    name="argmin",
    metadata={CACHEABLE_KEY: True},
    description=(
        "Return the label whose value is the smallest, as text. `labels` and `values` are "
        "lists of the same length; values are numbers (numeric text is accepted). On a tie "
        "the first such label wins. "
        'Example: argmin(["Japan", "Vietnam"], [$1, $2]) returns "Vietnam" when $2 is smaller.'
    ),
    args_schema=_RankingArgs,
)
