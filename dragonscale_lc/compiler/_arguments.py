"""Plan call arguments: Python literals with references to other tasks' outputs.

See the parser's module documentation for the reference rules this applies.
"""

from __future__ import annotations

import ast
import cmath
import re
from collections.abc import Callable
from typing import Any

from .._errors import PlanError
from ..runtime import Ref, Template
from ._scanner import REF_SENTINEL_CLOSE, REF_SENTINEL_OPEN, mark_bare_refs

__all__ = ["Resolve", "parse_arguments"]

Resolve = Callable[[int], int]
"""Maps a referenced task number to the id of that task, or raises PlanError."""

_REF_TOKEN = re.compile(
    r"\$\$|"
    rf"{REF_SENTINEL_OPEN}(?P<bare>\d+){REF_SENTINEL_CLOSE}|"
    r"\$\{(?P<braced>\d+)\}|"
    # The lookahead also rejects a digit, so that "$12.50" cannot match as "$1".
    r"\$(?P<plain>\d+)(?!\d|[.,]\d)"
)


def parse_arguments(
    arguments: str, number: int, resolve: Resolve
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Read a call's argument text as literals, with references as ``Ref`` and ``Template``.

    Args:
        arguments: The text between the call's parentheses.
        number: The calling task's number as written, which decides whether
            ``$N`` inside text can be a reference.
        resolve: Maps a referenced task number to its id, or raises
            :class:`PlanError`.
    """
    try:
        call = ast.parse(f"_({mark_bare_refs(arguments)})", mode="eval").body
    except SyntaxError as error:
        raise PlanError(f"invalid arguments: {error.msg}") from None
    except ValueError as error:  # a lone surrogate, which cannot be encoded
        raise PlanError(f"invalid arguments: {error}") from None
    except (MemoryError, RecursionError):  # what CPython's parser raises for deep nesting
        raise PlanError("invalid arguments: nested too deeply to parse") from None
    assert isinstance(call, ast.Call)
    args = tuple(_convert(_literal(node), number, resolve) for node in call.args)
    kwargs = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise PlanError("`**` arguments are not allowed in a plan")
        if keyword.arg in kwargs:
            raise PlanError(f"keyword argument {keyword.arg!r} is given twice")
        kwargs[keyword.arg] = _convert(_literal(keyword.value), number, resolve)
    return args, kwargs


def _convert(value: Any, number: int, resolve: Resolve) -> Any:
    """Replace reference text inside a literal with ``Ref`` and ``Template`` values."""
    if isinstance(value, str):
        return _convert_text(value, number, resolve)
    if isinstance(value, list):
        return [_convert(item, number, resolve) for item in value]
    if isinstance(value, tuple):
        return tuple(_convert(item, number, resolve) for item in value)
    if isinstance(value, set):
        return {_convert(item, number, resolve) for item in value}
    if isinstance(value, dict):
        return {
            _convert(k, number, resolve): _convert(v, number, resolve) for k, v in value.items()
        }
    _check_number(value)
    return value


def _convert_text(text: str, number: int, resolve: Resolve) -> str | Ref | Template:
    whole = _REF_TOKEN.fullmatch(text)
    if whole and whole.group(0) != "$$":
        referenced = int(whole.group("bare") or whole.group("braced") or whole.group("plain"))
        return Ref(resolve(referenced))
    parts: list[str | Ref] = []
    position = 0
    for match in _REF_TOKEN.finditer(text):
        if match.group(0) == "$$":
            literal = "$"
        elif match.group("plain") and int(match.group("plain")) >= number:
            literal = match.group(0)  # cannot name an earlier task: plain text
        else:
            literal = None
        parts.append(text[position : match.start()])
        if literal is None:
            referenced = int(match.group("bare") or match.group("braced") or match.group("plain"))
            parts.append(Ref(resolve(referenced)))
        else:
            parts.append(literal)
        position = match.end()
    parts.append(text[position:])
    if not any(isinstance(part, Ref) for part in parts):
        return "".join(parts)  # type: ignore[arg-type]
    return Template(tuple(_merge_text(parts)))


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, RecursionError):
        try:
            source = ast.unparse(node)
        except RecursionError:  # unparse recurses once per level of a long operator chain
            source = f"{type(node).__name__} expression nested too deeply to show"
        for sentinel in (REF_SENTINEL_OPEN, REF_SENTINEL_CLOSE):
            source = source.replace(sentinel, "")
        raise PlanError(
            f"`{source}` is not a literal; quote text, and write references as $N"
        ) from None


def _check_number(value: Any) -> None:
    """Reject numbers that plan text cannot carry.

    ``1e999`` reads as infinity, and Python refuses to write an int of more
    than 4300 digits (its default limit) in decimal.
    """
    if isinstance(value, float | complex) and not cmath.isfinite(value):
        raise PlanError(f"a number argument is {value!r}; write finite numbers only")
    if isinstance(value, int):
        try:
            str(value)
        except ValueError:
            raise PlanError(
                "an integer argument is too large to write in decimal; pass a smaller one"
            ) from None


def _merge_text(parts: list[str | Ref]) -> list[str | Ref]:
    merged: list[str | Ref] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return merged
