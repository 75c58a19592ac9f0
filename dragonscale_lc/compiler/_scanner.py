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
    "ArgumentScanner",
    "mark_bare_refs",
]

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
_BARE_REF = re.compile(r"\$\{(\d+)\}|\$(\d+)")

# A bare reference such as `$1` outside quotes is not a Python literal, so it is
# rewritten into a string that contains these private-use characters around
# the number. The parser turns such strings back into references.
REF_SENTINEL_OPEN = "\ue000"
REF_SENTINEL_CLOSE = "\ue001"


@dataclass(frozen=True, slots=True)
class ArgumentScan:
    """The end of an argument list, or the reason it cannot end.

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


class ArgumentScanner:
    """Find the end of an argument list in text that grows between calls.

    Each call to :meth:`advance` resumes where the previous one stopped,
    inside a string literal if need be, so scanning a long call that arrives
    in many small chunks costs time in proportion to its length.

    Args:
        start: Index just after the opening parenthesis.
    """

    def __init__(self, start: int) -> None:
        self._pos = start
        self._stack = [")"]
        self._breaks: list[int] = []
        self._quote: str | None = None  # the open string literal's delimiter
        self._result: ArgumentScan | None = None

    @property
    def line_breaks(self) -> list[int]:
        """Indices of the line breaks seen so far outside string literals."""
        return self._breaks

    def advance(self, text: str) -> ArgumentScan:
        """Scan ``text`` from where the last call stopped; ``text`` must only have grown."""
        if self._result is None:
            self._result = self._scan(text)
        return self._result if self._result is not None else self._pending()

    def _pending(self) -> ArgumentScan:
        return ArgumentScan(None, line_breaks=tuple(self._breaks))

    def _scan(self, text: str) -> ArgumentScan | None:
        i = self._pos
        while i < len(text):
            if self._quote is not None:
                i = self._scan_string(text, i)
                if i < 0:
                    return self._done(unterminated_string=True, error_at=-i - 1)
                if self._quote is not None:
                    break  # the literal continues in text not yet received
                continue
            ch = text[i]
            if ch in "'\"":
                if len(text) - i < 3 and (ch * 3).startswith(text[i:]):
                    break  # one or two quotes at the end may still become three
                self._quote = ch * 3 if text.startswith(ch * 3, i) else ch
                i += len(self._quote)
                continue
            if ch == "\n":
                self._breaks.append(i)
            elif ch in _OPENERS:
                self._stack.append(_OPENERS[ch])
            elif ch in _CLOSERS:
                if ch != self._stack[-1]:
                    return self._done(mismatched=ch, error_at=i)
                self._stack.pop()
                if not self._stack:
                    return self._done(end=i)
            i += 1
        self._pos = i
        return None

    def _scan_string(self, text: str, i: int) -> int:
        """Advance through the open string literal from ``i``.

        Returns the index after its closing quote, ``len(text)`` when the text
        ends inside it, or ``-(index + 1)`` of a line break that ends a
        one-line literal.
        """
        quote = self._quote
        assert quote is not None
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                if i + 1 == len(text):
                    return i  # resume at the backslash once its escape arrives
                i += 2
                continue
            if ch == "\n" and len(quote) == 1:
                return -(i + 1)
            if text.startswith(quote, i):
                self._quote = None
                return i + len(quote)
            if len(quote) == 3 and len(text) - i < 3 and quote.startswith(text[i:]):
                return i  # a closing triple quote may be arriving
            i += 1
        return i

    def _done(self, **fields: object) -> ArgumentScan:
        return ArgumentScan(
            fields.pop("end", None),  # type: ignore[arg-type]
            line_breaks=tuple(self._breaks),
            **fields,  # type: ignore[arg-type]
        )


def _skip_string(text: str, i: int) -> int:
    """Return the index after the string literal starting at ``i``, or -1 if it is not closed."""
    quote = text[i]
    delimiter = quote * 3 if text.startswith(quote * 3, i) else quote
    j = i + len(delimiter)
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
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
