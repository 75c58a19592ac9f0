"""Character-level scanning of plan text: brackets, string literals and references.

The parser needs to know where a call's argument list ends while the text is
still arriving, and which ``$`` signs are outside string literals. Both depend
on Python's string syntax, so this module tracks quotes, escapes and triple
quotes without evaluating anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "REF_SENTINEL_CLOSE",
    "REF_SENTINEL_OPEN",
    "ArgumentScan",
    "mark_bare_refs",
    "scan_arguments",
]

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
_BARE_REF = re.compile(r"\$\{(\d+)\}|\$(\d+)")

# A bare reference such as `$1` outside quotes is not a Python literal, so it is
# rewritten into a string holding these private-use characters around the
# number; the parser turns such strings back into references.
REF_SENTINEL_OPEN = "\ue000"
REF_SENTINEL_CLOSE = "\ue001"


@dataclass(frozen=True, slots=True)
class ArgumentScan:
    """Where an argument list ends, or why it cannot end.

    Attributes:
        end: Index of the closing parenthesis, or ``None`` while it is missing.
        unterminated_string: A one-line string literal ran into a line break.
        mismatched: A closing bracket did not match the innermost opener.
        error_at: Index of the line break or bracket that made the call invalid.
        line_breaks: Indices of the line breaks seen outside string literals.
    """

    end: int | None
    unterminated_string: bool = False
    mismatched: str | None = None
    error_at: int | None = None
    line_breaks: tuple[int, ...] = ()


def scan_arguments(text: str, start: int) -> ArgumentScan:
    """Find the parenthesis that closes the argument list opened at ``text[start - 1]``."""
    stack = [")"]
    breaks: list[int] = []
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            after = _skip_string(text, i)
            if after == -2:
                newline = text.index("\n", i)
                return ArgumentScan(
                    None, unterminated_string=True, error_at=newline, line_breaks=tuple(breaks)
                )
            if after == -1:
                return ArgumentScan(None, line_breaks=tuple(breaks))
            i = after
            continue
        if ch == "\n":
            breaks.append(i)
        elif ch in _OPENERS:
            stack.append(_OPENERS[ch])
        elif ch in _CLOSERS:
            if ch != stack[-1]:
                return ArgumentScan(None, mismatched=ch, error_at=i, line_breaks=tuple(breaks))
            stack.pop()
            if not stack:
                return ArgumentScan(i, line_breaks=tuple(breaks))
        i += 1
    return ArgumentScan(None, line_breaks=tuple(breaks))


def _skip_string(text: str, i: int) -> int:
    """Return the index after the string literal starting at ``i``.

    Returns -1 when the text ends inside the literal (more may arrive) and -2
    when a one-line literal meets a line break (it can never be completed).
    """
    quote = text[i]
    triple = text.startswith(quote * 3, i)
    delimiter = quote * 3 if triple else quote
    j = i + len(delimiter)
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "\n" and not triple:
            return -2
        if text.startswith(delimiter, j):
            return j + len(delimiter)
        j += 1
    return -1


def mark_bare_refs(arguments: str) -> str:
    """Rewrite ``$N`` and ``${N}`` outside string literals into sentinel strings."""
    pieces: list[str] = []
    i = 0
    plain_start = 0
    while i < len(arguments):
        if arguments[i] in "'\"":
            pieces.append(_mark_plain(arguments[plain_start:i]))
            end = _skip_string(arguments, i)
            end = len(arguments) if end < 0 else end
            pieces.append(arguments[i:end])
            i = plain_start = end
            continue
        i += 1
    pieces.append(_mark_plain(arguments[plain_start:]))
    return "".join(pieces)


def _mark_plain(code: str) -> str:
    return _BARE_REF.sub(
        lambda m: f'"{REF_SENTINEL_OPEN}{m.group(1) or m.group(2)}{REF_SENTINEL_CLOSE}"', code
    )
