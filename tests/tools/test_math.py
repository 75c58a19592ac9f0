"""The math tool: arithmetic through numexpr, and the errors reported to the model."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from langchain_core.tools import ToolException

from dragonscale_lc.tools import builtin_tools, math_tool


def calc(expression: object) -> object:
    return math_tool.invoke({"expression": expression})


# -- values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(3 + 4) * 2", 14.0),
        ("1367110000*2", 2734220000.0),
        ("2 ** 70", 2.0**70),
        ("1e6", 1_000_000.0),
        ("2.5e-3 * 4", 0.01),
        ("7 / 2", 3.5),
        ("-7 // 2", -4.0),
        ("-7 % 3", 2.0),
        ("-2 ** 2", -4.0),
        ("2 ** -1", 0.5),
        ("sqrt(16) + abs(-3)", 7.0),
        ("round(2.5)", 2.0),
        ("pi", math.pi),
        ("log(e)", 1.0),
        ("  (1 + 1)  ", 2.0),
    ],
)
def test_evaluates(expression: str, expected: float) -> None:
    assert calc(expression) == expected


def test_whole_result_is_builtin_float() -> None:
    result = calc("6 * 7")

    assert type(result) is float
    assert result == 42.0


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("min(3, 1, 2)", 1.0),
        ("max(3, 1, 2)", 3.0),
        ("max(7)", 7.0),
        ("max(1367110000 * 2, 5)", 2734220000.0),
        ("min(5, max(1, 2), 3) * 10", 20.0),
        ("max(" + ", ".join(str(n) for n in range(150)) + ")", 149.0),
        ("min(" + ", ".join(str(n) for n in range(150, 0, -1)) + ")", 1.0),
    ],
)
def test_min_and_max_of_scalars(expression: str, expected: float) -> None:
    assert calc(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("where(3 > 2, 10, 20)", 10.0),
        ("where(2 >= 3, 10, 20)", 20.0),
        ("where(1367110000 * 2 == 2734220000, 1, 0)", 1.0),
    ],
)
def test_where_takes_a_comparison(expression: str, expected: float) -> None:
    assert calc(expression) == expected


def test_accepts_bare_number() -> None:
    assert calc(127080000) == 127080000.0


def test_ninety_term_sum_within_depth() -> None:
    assert calc("+".join(["1367110000"] * 90)) == 90 * 1367110000.0


async def test_ainvoke() -> None:
    assert await math_tool.ainvoke({"expression": "1367110000 * 2"}) == 2734220000.0


# -- errors --------------------------------------------------------------------------

PROSE = (
    "The population of Japan is about 125 million people, and Vietnam has roughly "
    "98 million, so Japan has more people than Vietnam."
)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "",
            r'^The expression is empty\. Pass one arithmetic expression such as "\(3 \+ 4\) \* 2"',
        ),
        ("   ", r"^The expression is empty\."),
        (
            PROSE,
            r"^'The population of Japan is about 125 million people, and Vi…' is not an "
            r"arithmetic expression \(invalid syntax, at character 5\)\. Pass one expression "
            r'such as "\(3 \+ 4\) \* 2", with numbers in place of words\.$',
        ),
        (
            "9" * 1001,
            r"^The expression '9{59}…' is 1001 characters long; the limit is 1000\. Pass one "
            r'arithmetic expression such as "\(3 \+ 4\) \* 2", not prose\.$',
        ),
        ("population * 2", r"^Unknown name 'population' in 'population \* 2'\. Replace it with"),
        ("foo(2)", r"^Unknown function 'foo' in 'foo\(2\)'\. Use numbers, \+ - \* / // % \*\*"),
        ("os.system(1)", r"^Unknown function 'os\.system'"),
        ("__import__('os')", r"^Unknown function '__import__'"),
        ("2(3 + 4)", r"calls something that is not a function name\. Write multiplication with \*"),
        ("1,367,110,000", r"comma outside a function call\. Write numbers without thousands"),
        ("2^10", r"^'\^' in '2\^10' is not a power operator\. Write powers with \*\*"),
        ("1 & 2", r"^'1 & 2' uses the operator '&', which math does not support\."),
        ("~1", r"^'~1' uses the operator '~'"),
        ("[1, 2]", r"^'\[1, 2\]' uses List syntax, which math does not support\."),
        ("3 > 2", r"^The comparison in '3 > 2' is allowed only as the first argument of where"),
        ("where(1, 2, 3)", r"^The first argument of where\(\) in 'where\(1, 2, 3\)' must be one"),
        ("where(1 < 2 < 3, 1, 0)", r"^The first argument of where\(\)"),
        ("where(1 < 2, 2)", r"^where\(\) in 'where\(1 < 2, 2\)' takes 3 argument\(s\), got 2\.$"),
        ("min()", r"^min\(\) in 'min\(\)' takes 1 or more argument\(s\), got 0\.$"),
        ("sqrt(x=2)", r"^sqrt\(\) in 'sqrt\(x=2\)' takes plain positional arguments only"),
        ("'abc' + 1", r"""^'abc' in "'abc' \+ 1" is not a real number\."""),
        ("True + 1", r"^True in 'True \+ 1' is not a real number\."),
        ("1j", r"^1j in '1j' is not a real number\."),
        ("1/0", r"^'1/0' divides by zero \(float division by zero\)\. Check the divisor\.$"),
        ("5 % (3 - 3)", r"^'5 % \(3 - 3\)' divides by zero"),
        ("log(0)", r"^'log\(0\)' evaluates to -inf, not a finite number: a division by zero"),
        ("sqrt(-1)", r"^'sqrt\(-1\)' evaluates to nan, not a finite number"),
        ("1e308 * 10", r"evaluates to inf, not a finite number"),
        ("(-8) ** (1/3)", r"evaluates to the complex number .*negative number raised to a"),
        ("10 ** 400", r"^'10 \*\* 400' overflows a 64-bit float, whose largest value is about"),
        ("1" + "0" * 400, r"^An integer in '10{58}…' is too large for a 64-bit float\."),
        ("1+" * 150 + "1", r"nests more than 100 levels deep\. Split it into several math steps"),
    ],
)
def test_rejects_with_a_clear_message(expression: str, message: str) -> None:
    with pytest.raises(ToolException, match=message):
        calc(expression)


def test_division_by_zero_keeps_cause() -> None:
    with pytest.raises(ToolException) as caught:
        calc("1 / 0")

    assert isinstance(caught.value.__cause__, ZeroDivisionError)


async def test_ainvoke_raises_the_same_error() -> None:
    with pytest.raises(ToolException, match=r"^Unknown name 'Japan'"):
        await math_tool.ainvoke({"expression": "Japan / 2"})


# -- name, arguments and description -----------------------------------------------


def test_registered_name_and_arguments() -> None:
    assert math_tool in builtin_tools()
    assert math_tool.name == "math"
    assert list(math_tool.args) == ["expression"]


def test_description_shows_plan_call() -> None:
    assert 'math("(3 + 4) * 2") returns 14.0' in math_tool.description


# -- property: exact integer arithmetic ----------------------------------------------

# Every integer of at most this size is exact as a float, so float arithmetic
# on such operands that stays below it gives Python's exact integer result.
EXACT = 2**53

OPERATORS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "//": operator.floordiv,
    "%": operator.mod,
}

# (text, exact value), or None when an operand is zero-divided or leaves EXACT.
Term = tuple[str, int] | None


def combine(left: Term, symbol: str, right: Term) -> Term:
    if left is None or right is None:
        return None
    if symbol in ("//", "%") and right[1] == 0:
        return None

    value = OPERATORS[symbol](left[1], right[1])
    return (f"({left[0]} {symbol} {right[0]})", value) if abs(value) < EXACT else None


leaves: st.SearchStrategy[Term] = st.integers(-10_000, 10_000).map(lambda n: (str(n), n))
terms: st.SearchStrategy[Term] = st.recursive(
    leaves,
    lambda inner: st.builds(combine, inner, st.sampled_from(sorted(OPERATORS)), inner),
    max_leaves=8,
)


@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(terms)
def test_integer_arithmetic_agrees_with_python(term: Term) -> None:
    assume(term is not None)
    assert term is not None
    text, exact = term

    assert calc(text) == exact


def test_expression_spanning_lines() -> None:
    assert math_tool.invoke({"expression": "12 /\n    4"}) == 3.0


def test_incomplete_expression_points_at_its_end() -> None:
    with pytest.raises(
        ToolException,
        match=r"'2 \+' is not an arithmetic expression \(invalid syntax, at character 3\)",
    ):
        math_tool.invoke({"expression": "2 +"})
