"""The ``math`` tool: one arithmetic expression in, one float out.

The expression is parsed with :mod:`ast` (parsing only, nothing is executed),
checked against a small grammar, rewritten and then evaluated by ``numexpr``.
The rewrite does three things numexpr would not do on its own:

- every number becomes a 64-bit float, so integer arithmetic cannot overflow
  numexpr's fixed-width integers (32-bit for literals that fit in 32 bits);
- ``pi`` and ``e`` become their values;
- ``min(...)`` and ``max(...)`` of scalars, which numexpr reads as array
  reductions, become nested ``minimum``/``maximum`` calls.
"""

from __future__ import annotations

import ast
import math

import numexpr  # type: ignore[import-untyped]
import numpy as np
from langchain_core.tools import ToolException
from pydantic import BaseModel, ConfigDict, Field

from .._tool_metadata import CACHEABLE_KEY
from ._base import BuiltinTool

__all__ = ["math_tool"]

# Long enough for a sum of dozens of ten-digit numbers.
MAX_LENGTH = 1000

# The rewrite, ast.unparse and numexpr all recurse once or more per level of
# nesting, and the tool may be called deep in a LangChain call stack. A sum of
# n terms nests about n levels deep.
MAX_DEPTH = 100

_EXAMPLE = '"(3 + 4) * 2"'

# Each function name maps to its fewest and largest argument counts. A largest
# count of None means there is no upper bound.
_FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "sqrt": (1, 1),
    "exp": (1, 1),
    "log": (1, 1),
    "log10": (1, 1),
    "log2": (1, 1),
    "sin": (1, 1),
    "cos": (1, 1),
    "tan": (1, 1),
    "arcsin": (1, 1),
    "arccos": (1, 1),
    "arctan": (1, 1),
    "arctan2": (2, 2),
    "floor": (1, 1),
    "ceil": (1, 1),
    "round": (1, 1),
    "hypot": (2, 2),
    "min": (1, None),
    "max": (1, None),
    "where": (3, 3),
}

_CONSTANTS = {"pi": math.pi, "e": math.e}

_BINARY_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)

_COMPARISONS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)

_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Not: "not",
}

_GRAMMAR = (
    "Use numbers, + - * / // % **, parentheses, the constants pi and e, and the functions "
    + ", ".join(_FUNCTIONS)
)


class _MathArgs(BaseModel):
    # A plan may pass a bare number, such as the output of an earlier step.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    expression: str = Field(
        description=f"One arithmetic expression with numbers only, such as {_EXAMPLE}.",
    )


def evaluate(expression: str) -> float:
    """Evaluate one arithmetic expression with numexpr.

    Args:
        expression: Numbers, operators, parentheses and allowed functions,
            for example ``"(3 + 4) * 2"`` or ``"max(1367110000, 1e9) / 2"``.

    Returns:
        The value as a float, also when it is a whole number.

    Raises:
        ToolException: The expression is empty, too long, not arithmetic, uses
            an unknown name, or its value is not a finite real number.

    Example:
        >>> evaluate("1367110000 * 2")
        2734220000.0
    """
    tree = _parse(expression)
    rewritten = ast.unparse(_Rewrite(expression).expr(tree.body))

    return _run(expression, rewritten)


def _parse(expression: str) -> ast.Expression:
    # Line breaks inside an expression are plain white space in arithmetic,
    # but Python's parser only accepts them inside parentheses.
    text = " ".join(expression.split())
    if not text:
        raise ToolException(
            f"The expression is empty. Pass one arithmetic expression such as {_EXAMPLE}."
        )
    if len(text) > MAX_LENGTH:
        raise ToolException(
            f"The expression {_shorten(text)!r} is {len(text)} characters long; the limit is "
            f"{MAX_LENGTH}. Pass one arithmetic expression such as {_EXAMPLE}, not prose."
        )

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ToolException(
            f"{_shorten(text)!r} is not an arithmetic expression ({error.msg}, at character "
            f"{error.offset or len(text)}). Pass one expression such as {_EXAMPLE}, "
            "with numbers in place of words."
        ) from error

    if _depth(tree) > MAX_DEPTH:
        raise ToolException(
            f"{_shorten(text)!r} nests more than {MAX_DEPTH} levels deep. Split it into "
            "several math steps, for example sum the first half and the second half separately."
        )
    return tree


def _depth(tree: ast.AST) -> int:
    # Iterative, because the point is to reject trees too deep to recurse into.
    deepest = 0
    pending = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _run(expression: str, rewritten: str) -> float:
    # numpy reports log(0) and the like as warnings, so they are silenced here
    # and the finiteness check below turns them into one clear error instead.
    # NOTE: numexpr 2.14 folds expressions made only of constants with Python's
    # operators, which is why % and // follow Python's sign rules and 1/0 raises
    # ZeroDivisionError; test_integer_arithmetic_agrees_with_python checks this.
    try:
        with np.errstate(all="ignore"):
            result = numexpr.evaluate(rewritten, local_dict={}, global_dict={})
    except ZeroDivisionError as error:
        raise ToolException(
            f"{_shorten(expression)!r} divides by zero ({error}). Check the divisor."
        ) from error
    except OverflowError as error:
        raise ToolException(
            f"{_shorten(expression)!r} overflows a 64-bit float, whose largest value is about "
            "1.8e308. Check the inputs."
        ) from error
    except (ArithmeticError, ValueError, TypeError, KeyError) as error:
        raise ToolException(
            f"numexpr could not evaluate {_shorten(expression)!r}: {error}. {_GRAMMAR}."
        ) from error

    return _to_float(expression, result)


def _to_float(expression: str, result: np.ndarray) -> float:
    if np.iscomplexobj(result):
        raise ToolException(
            f"{_shorten(expression)!r} evaluates to the complex number {complex(result)}, "
            "for example from a negative number raised to a fractional power. Check the inputs."
        )

    value = float(result)
    if not math.isfinite(value):
        raise ToolException(
            f"{_shorten(expression)!r} evaluates to {value}, not a finite number: a division "
            "by zero, an overflow, or a value outside a function's domain such as log(0) or "
            "sqrt(-1). Check the inputs."
        )
    return value


class _Rewrite:
    """Validator that rewrites one parsed expression into numexpr's dialect."""

    def __init__(self, expression: str) -> None:
        self._quoted = repr(_shorten(expression))

    def expr(self, node: ast.expr) -> ast.expr:
        match node:
            case ast.Constant():
                return self._number(node)
            case ast.Name(id=name):
                return self._name(name)
            case ast.UnaryOp(op=ast.UAdd() | ast.USub()):
                return ast.UnaryOp(op=node.op, operand=self.expr(node.operand))
            case ast.BinOp():
                return self._binary(node)
            case ast.Call():
                return self._call(node)
        raise self._unsupported(node)

    def _number(self, node: ast.Constant) -> ast.expr:
        value = node.value
        # bool is an int subclass, but True + 1 is not arithmetic anyone meant.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolException(
                f"{_shorten(repr(value))} in {self._quoted} is not a real number. "
                f"Pass numbers only, as in {_EXAMPLE}."
            )

        try:
            return ast.Constant(float(value))
        except OverflowError as error:
            raise ToolException(
                f"An integer in {self._quoted} is too large for a 64-bit float. "
                "Write it in scientific notation such as 1e300, or scale it down."
            ) from error

    def _name(self, name: str) -> ast.expr:
        if name in _CONSTANTS:
            return ast.Constant(_CONSTANTS[name])

        raise ToolException(
            f"Unknown name {name!r} in {self._quoted}. Replace it with its numeric value; "
            f"the only names math knows are pi and e. {_GRAMMAR}."
        )

    def _binary(self, node: ast.BinOp) -> ast.expr:
        if isinstance(node.op, ast.BitXor):
            raise ToolException(
                f"'^' in {self._quoted} is not a power operator. Write powers with **, "
                "as in 2 ** 10."
            )
        if not isinstance(node.op, _BINARY_OPERATORS):
            raise self._unsupported(node.op)

        return ast.BinOp(left=self.expr(node.left), op=node.op, right=self.expr(node.right))

    def _call(self, node: ast.Call) -> ast.expr:
        name = self._function_name(node.func)
        self._check_arguments(name, node)

        if name == "where":
            condition, if_true, if_false = node.args
            arguments = [self._condition(condition), self.expr(if_true), self.expr(if_false)]
            return _function_call("where", arguments)
        arguments = [self.expr(argument) for argument in node.args]
        if name in ("min", "max"):
            return _fold("minimum" if name == "min" else "maximum", arguments)
        return _function_call(name, arguments)

    def _function_name(self, func: ast.expr) -> str:
        if isinstance(func, ast.Name | ast.Attribute):
            name = ast.unparse(func)
            if name not in _FUNCTIONS:
                raise ToolException(f"Unknown function {name!r} in {self._quoted}. {_GRAMMAR}.")
            return name

        # A number or a bracket followed by "(" is almost always an implied product.
        raise ToolException(
            f"{self._quoted} calls something that is not a function name. Write "
            "multiplication with *, as in 2 * (3 + 4) rather than 2(3 + 4)."
        )

    def _check_arguments(self, name: str, node: ast.Call) -> None:
        fewest, largest = _FUNCTIONS[name]
        count = len(node.args)
        if node.keywords or any(isinstance(argument, ast.Starred) for argument in node.args):
            raise ToolException(
                f"{name}() in {self._quoted} takes plain positional arguments only, "
                f"as in {name}({', '.join(['2'] * fewest)})."
            )
        if count < fewest or (largest is not None and count > largest):
            expected = f"{fewest} or more" if largest is None else str(fewest)
            raise ToolException(
                f"{name}() in {self._quoted} takes {expected} argument(s), got {count}."
            )

    def _condition(self, node: ast.expr) -> ast.expr:
        if (
            not isinstance(node, ast.Compare)
            or len(node.ops) != 1
            or not isinstance(node.ops[0], _COMPARISONS)
        ):
            raise ToolException(
                f"The first argument of where() in {self._quoted} must be one comparison "
                "such as a > b (one of < <= > >= == !=), as in where(3 > 2, 10, 20)."
            )

        left, right = self.expr(node.left), self.expr(node.comparators[0])
        return ast.Compare(left=left, ops=node.ops, comparators=[right])

    def _unsupported(self, node: ast.AST) -> ToolException:
        if isinstance(node, ast.Tuple):
            return ToolException(
                f"{self._quoted} contains a comma outside a function call. Write numbers "
                "without thousands separators, as in 1367110000 rather than 1,367,110,000."
            )
        if isinstance(node, ast.Compare):
            return ToolException(
                f"The comparison in {self._quoted} is allowed only as the first argument of "
                "where(condition, if_true, if_false)."
            )

        if isinstance(node, ast.UnaryOp):
            node = node.op
        symbol = _OPERATOR_SYMBOLS.get(type(node))
        construct = f"the operator {symbol!r}" if symbol else f"{type(node).__name__} syntax"
        return ToolException(
            f"{self._quoted} uses {construct}, which math does not support. {_GRAMMAR}."
        )


def _function_call(name: str, arguments: list[ast.expr]) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=arguments, keywords=[])


def _fold(name: str, arguments: list[ast.expr]) -> ast.expr:
    # Pairwise rather than left to right, so that min() of many arguments
    # nests only logarithmically deep.
    while len(arguments) > 1:
        pairs = [arguments[start : start + 2] for start in range(0, len(arguments), 2)]
        arguments = [pair[0] if len(pair) == 1 else _function_call(name, pair) for pair in pairs]
    return arguments[0]


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


math_tool = BuiltinTool.from_function(
    func=evaluate,
    name="math",
    metadata={CACHEABLE_KEY: True},
    description=(
        "Evaluate one arithmetic expression and return its value as a float (14.0, not 14). "
        "Accepts numbers such as 1367110000, 2.5 or 1e6 (no thousands separators), "
        "+ - * / // % ** and parentheses, the constants pi and e, and the functions "
        "abs, sqrt, exp, log (natural), log10, log2, sin, cos, tan, arcsin, arccos, arctan, "
        "arctan2, floor, ceil, round (halves to even), hypot, min, max and "
        "where(condition, if_true, if_false). "
        "Pass numbers, not words: put the outputs of earlier steps into the expression. "
        f"Example: math({_EXAMPLE}) returns 14.0."
    ),
    args_schema=_MathArgs,
)
