"""Streaming parser for LLMCompiler plans.

A plan is a numbered list of tool calls, optionally with ``Thought:`` lines,
ending in ``join()``::

    1. country_facts("Japan")
    2. country_facts("Vietnam", field="area")
    Thought: Both lookups are independent.
    3. math("$1 / $2")
    4. join()

The parser takes the model's text in chunks of any size and emits each task
as soon as its closing parenthesis arrives, so the executor can start it while
the model is still writing the rest of the plan. Arguments are Python literals
read with :func:`ast.literal_eval`; nothing is evaluated.

References. ``$N`` and ``${N}`` stand for the output of task N:

* A reference that is a whole argument (``$1``, ``"$1"`` or ``"${1}"``) passes
  the output with its type. Task N must already be defined; a reference to a
  later task, to the task itself or to a number the plan skipped is an error.
* ``${N}`` inside longer text is always a reference and is spliced in as text.
* ``$N`` inside longer text is a reference when N is lower than the current
  task's number, because only earlier tasks can be referenced; otherwise it is
  literal text, so ``"a $5 bill"`` in task 3 keeps its dollar sign.
  ``$N`` followed by ``.`` or ``,`` and a digit is an amount of money
  (``"$1.50"``, ``"$1,000"``), never a reference. ``$$`` is a literal ``$``.

Numbering. Ids continue across replans. When a replan restarts its numbering
at or below the last id of earlier rounds, its tasks are shifted to fresh ids
after them, so they can never overwrite earlier results. A task whose id would
still be an earlier round's (numbers that go back, say) is an error.
"""

from __future__ import annotations

import ast
import cmath
import re
from collections.abc import Collection
from typing import Any

from .._errors import PlanError
from ..runtime import Ref, Template, find_refs
from ._plan import PlanTask
from ._scanner import (
    REF_SENTINEL_CLOSE,
    REF_SENTINEL_OPEN,
    ArgumentScan,
    mark_bare_refs,
    scan_arguments,
)

__all__ = ["StreamingPlanParser", "parse_plan"]

_CALL_HEAD = re.compile(r"[ \t]*(?:[-*][ \t]*)?(\d+)[ \t]*[.)][ \t]*([A-Za-z_][\w.\-]*)[ \t]*\(")
_JOIN_HEAD = re.compile(r"[ \t]*(?:(\d+)[ \t]*[.)][ \t]*)?join[ \t]*\(")
_NUMBERED = re.compile(r"[ \t]*(\d+)[ \t]*\.[ \t]*\S")
_THOUGHT = re.compile(r"[ \t]*Thought[ \t]*:[ \t]*(.*)", re.IGNORECASE)
_REF_TOKEN = re.compile(
    r"\$\$|"
    rf"{REF_SENTINEL_OPEN}(?P<bare>\d+){REF_SENTINEL_CLOSE}|"
    r"\$\{(?P<braced>\d+)\}|"
    # The lookahead also rejects a digit, so that "$12.50" cannot match as "$1".
    r"\$(?P<plain>\d+)(?!\d|[.,]\d)"
)


class StreamingPlanParser:
    """Parse plan text chunk by chunk, emitting each task once its call is complete.

    Problems do not raise: each becomes a :class:`PlanError` in :attr:`errors`
    (with its line number) and parsing goes on with the next line, so valid
    tasks still run and the compiler can replan with every error at once.

    Args:
        tools: Names of the tools a plan may call, or ``None`` to accept any.
        known_ids: Ids of tasks from earlier rounds, which the plan may reference.

    Example:
        >>> parser = StreamingPlanParser()
        >>> [t.to_text() for t in parser.feed('1. math("2 + 3")\\n2. math("$1 * 2")\\n')]
        ['1. math("2 + 3")', '2. math("$1 * 2")']
    """

    def __init__(
        self, tools: Collection[str] | None = None, known_ids: Collection[int] = ()
    ) -> None:
        self._tools = None if tools is None else frozenset(tools)
        self._known = frozenset(known_ids)
        self._last_known = max(self._known, default=0)
        self._offset: int | None = None
        self._buffer = ""
        self._line_no = 1
        self._local_ids: dict[int, int] = {}
        self._invalid_numbers: dict[int, int] = {}
        self._thought: str | None = None
        self.tasks: list[PlanTask] = []
        self.errors: list[PlanError] = []
        self.final_thought: str | None = None
        self.joined = False
        self.trailing_text = ""

    def feed(self, chunk: str) -> list[PlanTask]:
        """Add ``chunk`` of plan text; return the tasks it completed, in order."""
        if self.joined:
            self.trailing_text += chunk
            return []
        self._buffer += chunk
        return self._drain(final=False)

    def close(self) -> list[PlanTask]:
        """Mark the end of the text; return the tasks that only the end completed.

        A plan without ``join()`` is complete here, as if it had ended with one.
        """
        emitted = [] if self.joined else self._drain(final=True)
        self.trailing_text = self.trailing_text.strip()
        self.joined = True
        return emitted

    def _drain(self, *, final: bool) -> list[PlanTask]:
        emitted: list[PlanTask] = []
        while self._buffer and not self.joined:
            consumed, task = self._consume_statement(final=final)
            if consumed == 0:
                break
            self._line_no += self._buffer.count("\n", 0, consumed)
            self._buffer = self._buffer[consumed:]
            if task is not None:
                emitted.append(task)
        return emitted

    def _consume_statement(self, *, final: bool) -> tuple[int, PlanTask | None]:
        """Parse the statement at the start of the buffer.

        Returns how many characters it used (0 when more text is needed) and
        the task it defined, if any.
        """
        text = self._buffer
        if join := _JOIN_HEAD.match(text):
            return self._consume_join(join.end(), final=final), None
        if head := _CALL_HEAD.match(text):
            return self._consume_call(head, final=final)
        newline = text.find("\n")
        if newline < 0 and not final:
            return 0, None  # the line could still become a call
        line_end = len(text) if newline < 0 else newline + 1
        self._consume_other_line(text[:line_end].strip())
        return line_end, None

    def _consume_join(self, args_start: int, *, final: bool) -> int:
        scan = scan_arguments(self._buffer, args_start)
        if scan.end is None and not final:
            return 0
        end = len(self._buffer) if scan.end is None else scan.end + 1
        self.joined = True
        self.trailing_text = self._buffer[end:]
        return len(self._buffer)

    def _consume_call(self, head: re.Match[str], *, final: bool) -> tuple[int, PlanTask | None]:
        text = self._buffer
        scan = scan_arguments(text, head.end())
        broken_at = self._broken_line(text, scan.line_breaks)
        if scan.end is not None and broken_at is None:
            line_end = text.find("\n", scan.end)
            consumed = len(text) if line_end < 0 else line_end + 1
            task = self._build_task(head, text[head.end() : scan.end])
            return consumed, task
        if broken_at is not None or scan.error_at is not None or final:
            stop = broken_at if broken_at is not None else _error_line_end(text, scan, final=final)
            if stop is None:
                return 0, None  # the rest of the invalid line has not arrived yet
            self._reject(int(head.group(1)), _malformed_reason(scan), text[:stop])
            return stop, None
        return 0, None

    @staticmethod
    def _broken_line(text: str, line_breaks: tuple[int, ...]) -> int | None:
        """Return where an unfinished call is cut off by a new statement, if it is.

        Arguments may span lines, but a following line that starts another
        numbered call, ``join()`` or a ``Thought:`` shows that the call was
        never closed.
        """
        for index in line_breaks:
            rest = text[index + 1 :]
            if _CALL_HEAD.match(rest) or _JOIN_HEAD.match(rest) or _THOUGHT.match(rest):
                return index + 1
        return None

    def _consume_other_line(self, line: str) -> None:
        if thought := _THOUGHT.match(line):
            self._thought = thought.group(1).strip()
            self.final_thought = self._thought
        elif numbered := _NUMBERED.match(line):
            number = int(numbered.group(1))
            self._reject(number, "expected a tool call such as `tool(arguments)`", line)

    def _build_task(self, head: re.Match[str], arguments: str) -> PlanTask | None:
        number, tool = int(head.group(1)), head.group(2)
        source = head.group(0) + arguments + ")"
        if number in self._local_ids or number in self._invalid_numbers:
            self._reject(number, f"task number {number} is used twice", source, record=False)
            return None
        if self._tools is not None and tool not in self._tools:
            available = ", ".join(sorted(self._tools)) or "(none)"
            self._reject(number, f"unknown tool {tool!r}; available tools: {available}", source)
            return None
        task_id = self._assign_id(number)
        if task_id in self._known:
            reason = (
                f"its id would be {task_id}, which an earlier round already "
                f"uses; number new tasks from {self._last_known + 1} on"
            )
            self._reject(number, reason, source)
            return None
        try:
            args, kwargs = self._parse_arguments(arguments, number)
        except PlanError as error:
            self._reject(number, str(error), source)
            return None
        deps = frozenset(ref.task_id for ref in find_refs((args, kwargs)))
        task = PlanTask(
            id=task_id,
            tool=tool,
            args=args,
            kwargs=kwargs,
            dependencies=deps,  # type: ignore[arg-type]
            number=number,
            line_no=self._line_no,
            thought=self._thought,
        )
        self._local_ids[number] = task_id
        self._thought = None
        self.tasks.append(task)
        return task

    def _assign_id(self, number: int) -> int:
        if self._offset is None:
            # The first task decides: numbering that continues after earlier
            # rounds is kept; numbering that restarts is shifted past them.
            self._offset = 0 if number > self._last_known else self._last_known + 1 - number
        return number + self._offset

    def _parse_arguments(
        self, arguments: str, number: int
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        try:
            call = ast.parse(f"_({mark_bare_refs(arguments)})", mode="eval").body
        except SyntaxError as error:
            raise PlanError(f"invalid arguments: {error.msg}") from None
        except ValueError as error:  # a lone surrogate, which cannot be encoded
            raise PlanError(f"invalid arguments: {error}") from None
        except (MemoryError, RecursionError):  # what CPython's parser raises for deep nesting
            raise PlanError("invalid arguments: nested too deeply to parse") from None
        assert isinstance(call, ast.Call)
        args = tuple(self._convert(_literal(node), number) for node in call.args)
        kwargs = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                raise PlanError("`**` arguments are not allowed in a plan")
            if keyword.arg in kwargs:
                raise PlanError(f"keyword argument {keyword.arg!r} is given twice")
            kwargs[keyword.arg] = self._convert(_literal(keyword.value), number)
        return args, kwargs

    def _convert(self, value: Any, number: int) -> Any:
        """Replace reference text inside a literal with ``Ref`` and ``Template`` values."""
        if isinstance(value, str):
            return self._convert_text(value, number)
        if isinstance(value, list):
            return [self._convert(item, number) for item in value]
        if isinstance(value, tuple):
            return tuple(self._convert(item, number) for item in value)
        if isinstance(value, set):
            return {self._convert(item, number) for item in value}
        if isinstance(value, dict):
            return {self._convert(k, number): self._convert(v, number) for k, v in value.items()}
        _check_number(value)
        return value

    def _convert_text(self, text: str, number: int) -> str | Ref | Template:
        whole = _REF_TOKEN.fullmatch(text)
        if whole and whole.group(0) != "$$":
            referenced = int(whole.group("bare") or whole.group("braced") or whole.group("plain"))
            return Ref(self._resolve_reference(referenced, number))
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
                referenced = int(
                    match.group("bare") or match.group("braced") or match.group("plain")
                )
                parts.append(Ref(self._resolve_reference(referenced, number)))
            else:
                parts.append(literal)
            position = match.end()
        parts.append(text[position:])
        if not any(isinstance(part, Ref) for part in parts):
            return "".join(parts)  # type: ignore[arg-type]
        return Template(tuple(_merge_text(parts)))

    def _resolve_reference(self, referenced: int, number: int) -> int:
        if referenced in self._local_ids:
            return self._local_ids[referenced]
        # Unless numbering continues after earlier rounds, an invalid task of
        # this round shadows an earlier round's task with its number, as a
        # valid one would.
        shadowed = referenced in self._invalid_numbers and self._offset != 0
        visible = self._offset == 0 or referenced < number
        if referenced in self._known and visible and not shadowed:
            return referenced
        if referenced in self._invalid_numbers:
            line = self._invalid_numbers[referenced]
            raise PlanError(f"references task {referenced}, which is invalid (line {line})")
        if referenced >= number:
            kind = "itself" if referenced == number else f"task {referenced}, which comes later"
            raise PlanError(f"references {kind}; a task can only use outputs of earlier tasks")
        raise PlanError(f"references task {referenced}, which the plan does not define")

    def _reject(self, number: int, reason: str, source: str, *, record: bool = True) -> None:
        if record:
            self._invalid_numbers[number] = self._line_no
        snippet = " ".join(source.split())
        if len(snippet) > 120:
            snippet = snippet[:117] + "..."
        message = f"line {self._line_no}: task {number}: {reason}: {snippet}"
        self.errors.append(PlanError(message, line_no=self._line_no))


def parse_plan(text: str, tools: Collection[str] | None = None) -> StreamingPlanParser:
    """Parse a complete plan text; return the parser with its tasks and errors."""
    parser = StreamingPlanParser(tools)
    parser.feed(text)
    parser.close()
    return parser


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


def _error_line_end(text: str, scan: ArgumentScan, *, final: bool) -> int | None:
    """Return the end of the line where the call became invalid, or ``None`` if not here yet."""
    if scan.error_at is None:
        return len(text)  # the text ended with the call still open
    newline = text.find("\n", scan.error_at)
    if newline >= 0:
        return newline + 1
    return len(text) if final else None


def _malformed_reason(scan: ArgumentScan) -> str:
    if scan.unterminated_string:
        return "a string literal is not closed before the end of the line"
    if scan.mismatched:
        return f"unexpected {scan.mismatched!r}; brackets do not match"
    return "the closing parenthesis is missing"


def _merge_text(parts: list[str | Ref]) -> list[str | Ref]:
    merged: list[str | Ref] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != "":
            merged.append(part)
    return merged
