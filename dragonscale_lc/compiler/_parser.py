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

import re
from collections.abc import Collection

from .._errors import PlanError
from ..runtime import find_refs
from ._arguments import parse_arguments
from ._plan import PlanTask
from ._scanner import ArgumentScan, ArgumentScanner

__all__ = ["StreamingPlanParser", "parse_plan"]

# A step number as models write it: "3.", "3)", "(3)", "3:", "3", "**3.**",
# "Step 3:", "- 3.", "### 3.", "#3".
_STEP = (
    r"[ \t]*(?:[-*>][ \t]+|\#+[ \t]*)?(?:\*\*|__)?(?:(?i:step|task)[ \t]+)?"
    r"\(?(\d+)\)?[ \t]*[.):]?(?:\*\*|__)?[ \t]*"
)
_CALL_HEAD = re.compile(_STEP + r"(?:\*\*|`)?([A-Za-z_][\w.\-]*)(?:\*\*|`)?[ \t]*\(")
_JOIN_HEAD = re.compile(rf"(?:{_STEP})?(?:\*\*|`)?join(?:\*\*|`)?[ \t]*\(")
_NUMBERED = re.compile(_STEP + r"\S")
# A call with no step number in front of it, such as `math("1 + 1")`.
_UNNUMBERED_CALL = re.compile(r"[ \t]*(?:[-*>`#][ \t]*)*([A-Za-z_][\w.\-]*)`?[ \t]*\(")
_THOUGHT = re.compile(r"[ \t]*Thought[ \t]*:[ \t]*(.*)", re.IGNORECASE)


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
        self._scanner: ArgumentScanner | None = None  # for the call at the buffer's start
        self._checked_breaks = 0
        self._line_search_from = 0
        self._call_line_open = False  # the last call's line has not ended yet
        self._line_no = 1
        self._local_ids: dict[int, int] = {}
        self._invalid_numbers: dict[int, int] = {}
        self._thought: str | None = None
        self.tasks: list[PlanTask] = []
        self.errors: list[PlanError] = []
        self.final_thought: str | None = None
        self.joined = False
        self.trailing_text = ""
        self.warnings: list[str] = []

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
            rest_of_call_line = self._call_line_open
            consumed, task = self._consume_statement(final=final)
            if consumed == 0:
                break
            self._line_no += self._buffer.count("\n", 0, consumed)
            self._buffer = self._buffer[consumed:]
            self._scanner = None
            self._checked_breaks = self._line_search_from = 0
            # A call's line stays open after the call, even a rejected one,
            # until the statement that reads the rest of that line.
            if rest_of_call_line:
                self._call_line_open = False
            if task is not None:
                emitted.append(task)
        return emitted

    def _consume_statement(self, *, final: bool) -> tuple[int, PlanTask | None]:
        """Parse the statement at the start of the buffer.

        Returns how many characters it used (0 when more text is needed) and
        the task it defined, if any.
        """
        text = self._buffer
        if self._call_line_open:
            return self._consume_line(final=final, after_call=True), None
        if join := _JOIN_HEAD.match(text):
            return self._consume_join(join.end(), final=final), None
        if head := _CALL_HEAD.match(text):
            return self._consume_call(head, final=final)
        return self._consume_line(final=final, after_call=False), None

    def _consume_line(self, *, final: bool, after_call: bool) -> int:
        """Consume a line that contains no call, or the rest of a call's line."""
        text = self._buffer
        newline = text.find("\n", self._line_search_from)
        if newline < 0 and not final:
            self._line_search_from = len(text)
            return 0  # the line could still become a call
        line_end = len(text) if newline < 0 else newline + 1
        if after_call:
            self._note_trailing(text[:line_end])
        else:
            self._consume_other_line(text[:line_end].strip())
        return line_end

    def _consume_join(self, args_start: int, *, final: bool) -> int:
        # join() ends the plan even with its parenthesis missing, but only its
        # own line belongs to it: what follows is text after the plan.
        text = self._buffer
        newline = text.find("\n", args_start)
        line_end = len(text) if newline < 0 else newline
        closing = text.find(")", args_start, line_end)
        if closing < 0 and newline < 0 and not final:
            return 0
        if closing < 0:
            self.warnings.append(f"line {self._line_no}: join( has no closing parenthesis")
        self.joined = True
        self.trailing_text = text[line_end if closing < 0 else closing + 1 :]
        return len(text)

    def _consume_call(self, head: re.Match[str], *, final: bool) -> tuple[int, PlanTask | None]:
        text = self._buffer
        if self._scanner is None:
            self._scanner = ArgumentScanner(head.end())
        scan = self._scanner.advance(text)
        broken_at = self._broken_line(text, self._scanner.line_breaks)
        if scan.end is not None and broken_at is None:
            line_end = text.find("\n", scan.end)
            if line_end < 0 and not final:
                # Emit the task now; the rest of its line is read as a line of
                # its own, so text after the call is still noticed.
                consumed = scan.end + 1
                self._call_line_open = True
            else:
                consumed = len(text) if line_end < 0 else line_end + 1
                self._note_trailing(text[scan.end + 1 : consumed])
            return consumed, self._build_task(head, text[head.end() : scan.end])
        if broken_at is not None or scan.error_at is not None or final:
            stop = broken_at if broken_at is not None else _error_line_end(text, scan, final=final)
            if stop is None:
                return 0, None  # the rest of the invalid line has not arrived yet
            self._reject(int(head.group(1)), _malformed_reason(scan), text[:stop])
            return stop, None
        return 0, None

    def _broken_line(self, text: str, line_breaks: list[int]) -> int | None:
        """Return where an unfinished call is cut off by a new statement, if it is.

        Arguments may span lines, but a following line that starts another
        numbered call, ``join()`` or a ``Thought:`` shows that the call was
        never closed. Only the last line can still grow, so earlier ones are
        checked once.
        """
        for position in range(self._checked_breaks, len(line_breaks)):
            rest = text[line_breaks[position] + 1 :]
            if _CALL_HEAD.match(rest) or _JOIN_HEAD.match(rest) or _THOUGHT.match(rest):
                return line_breaks[position] + 1
        self._checked_breaks = max(len(line_breaks) - 1, 0)
        return None

    def _note_trailing(self, rest: str) -> None:
        extra = rest.strip()
        if extra:
            self.warnings.append(f"line {self._line_no}: ignored text after the call: {extra[:80]}")

    def _consume_other_line(self, line: str) -> None:
        if thought := _THOUGHT.match(line):
            self._thought = thought.group(1).strip()
            self.final_thought = self._thought
        elif numbered := _NUMBERED.match(line):
            number = int(numbered.group(1))
            self._reject(number, "expected a tool call such as `tool(arguments)`", line)
        elif (call := _UNNUMBERED_CALL.match(line)) and self._is_tool(call.group(1)):
            self.errors.append(
                PlanError(
                    f"line {self._line_no}: a call without a step number: {line[:120]}. "
                    f"Write it as `N. {call.group(1)}(...)`",
                    line_no=self._line_no,
                )
            )

    def _is_tool(self, name: str) -> bool:
        return name != "join" and (self._tools is None or name in self._tools)

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
            args, kwargs = parse_arguments(
                arguments, number, lambda referenced: self._resolve_reference(referenced, number)
            )
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
