"""The joiner's text format: read a decision from a chat model's free text.

Models without tool calling, and structured replies that cannot be read, end
up here. The format is::

    Thought: The population figure is in task 2's observation.
    Action: Finish(126 million)

A JSON object with an ``action`` key, fenced or bare, is read as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from .._errors import RunError

__all__ = [
    "Finish",
    "JoinDecision",
    "Replan",
    "decision_from_mapping",
    "is_usable",
    "parse_explicit_decision",
    "parse_join_text",
]


@dataclass(frozen=True, slots=True)
class Finish:
    """The decision to answer the question now.

    Attributes:
        answer: The answer for the user, short and direct.
        thought: The model's reasoning before it decided, if it gave any.
    """

    answer: str
    thought: str = ""


@dataclass(frozen=True, slots=True)
class Replan:
    """The decision to plan again because the observations cannot answer the question.

    Attributes:
        reason: What is missing or what went wrong, for the next planning round.
        thought: The model's reasoning before it decided, if it gave any.
    """

    reason: str
    thought: str = ""


JoinDecision: TypeAlias = Finish | Replan

# Text-format parsing. A line prefix may carry Markdown decoration ("**Action:**",
# "- Thought:") because chat models often format their replies.
_ACTION_LINE = re.compile(r"^[ \t*_#>-]*action[ \t*_]*:[ \t*_]*", re.IGNORECASE | re.MULTILINE)
_BARE_ACTION_LINE = re.compile(
    r"^[ \t*_>`\"'-]*(?=(?:finish|replan)[ \t]*\()", re.IGNORECASE | re.MULTILINE
)
_THOUGHT_LINE = re.compile(r"^[ \t*_#>-]*thought[ \t*_]*:[ \t*_]*", re.IGNORECASE | re.MULTILINE)
_KEYWORD = re.compile(r"(finish|replan)\b[ \t]*", re.IGNORECASE)
_FENCED_BLOCK = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.DOTALL)
_WRAPPERS = "`\"'"

_EMPTY_REPLY = "the joiner returned an empty reply"
_NO_ANSWER = "the joiner chose Finish but gave no answer"


def parse_join_text(text: str) -> JoinDecision:
    """Parse a joiner reply written in the text format.

    The last ``Action:`` line decides. ``Finish(...)`` takes everything between
    its first ``(`` and the last ``)`` of the action as the answer, so the
    answer may contain parentheses and the word "Replan". Without an
    ``Action:`` line, a JSON object with an ``action`` key (bare or in a fenced
    block) decides, then the last line that starts with ``Finish(`` or
    ``Replan(``. A reply with none of these is taken as the answer itself.

    Example:
        >>> parse_join_text("Thought: done\\nAction: Finish(Paris (France))")
        Finish(answer='Paris (France)', thought='done')

    Args:
        text: The model's reply.

    Returns:
        The decision the reply contains.

    Raises:
        RunError: The reply is empty, or it chooses Finish without an answer.
    """
    stripped = text.strip()
    if not stripped:
        raise RunError(
            f"{_EMPTY_REPLY}, but the reply must contain 'Action: Finish(<answer>)' "
            "or 'Action: Replan(<reason>)'"
        )

    decision = parse_explicit_decision(stripped)
    if decision is None:
        decision = Finish(answer=stripped)

    if not is_usable(decision):
        raise RunError(f"{_NO_ANSWER}: {stripped!r}")
    return decision


def parse_explicit_decision(text: str) -> JoinDecision | None:
    """Read a decision that ``text`` states as an action or JSON, or return None."""
    decision = _parse_action_lines(text, _ACTION_LINE)
    if decision is None:
        decision = _parse_json(text)
    if decision is None:
        decision = _parse_action_lines(text, _BARE_ACTION_LINE)
    return decision


def _parse_action_lines(text: str, pattern: re.Pattern[str]) -> JoinDecision | None:
    """Parse the last line that ``pattern`` matches as the action, or return None."""
    matches = list(pattern.finditer(text))
    if not matches:
        return None

    last = matches[-1]
    thought = _thought_before(text, last.start())
    return _decision_from_action(_action_span(text[last.end() :]), thought)


def _thought_before(text: str, end: int) -> str:
    """Return the text of the last ``Thought:`` that starts before ``end``."""
    starts = [m.end() for m in _THOUGHT_LINE.finditer(text, 0, end)]
    return text[starts[-1] : end].strip() if starts else ""


def _action_span(rest: str) -> str:
    """Cut the action out of the text that follows ``Action:``.

    The action ends with its line unless a parenthesis is still open there.
    Then the answer spans lines and the action runs to the end of the reply.
    """
    line_end = rest.find("\n")
    first_line = rest if line_end < 0 else rest[:line_end]
    span = rest if first_line.count("(") > first_line.count(")") else first_line

    # Strip until stable so that "`Finish(42)`." and '"Finish(42)."' both reduce.
    previous = None
    while span != previous:
        previous = span
        span = span.strip().strip(_WRAPPERS).removesuffix(".")
    return span


def _decision_from_action(action: str, thought: str) -> JoinDecision:
    """Build the decision that an action such as ``Finish(Paris)`` names."""
    keyword = _KEYWORD.match(action)
    if keyword is None:
        # The model named no action ("Action: Paris"), so its text is the best answer.
        return Finish(answer=action, thought=thought)

    body = _action_argument(action[keyword.end() :])
    if keyword.group(1).lower() == "finish":
        return Finish(answer=body, thought=thought)
    return Replan(reason=body or thought, thought=thought)


def _action_argument(rest: str) -> str:
    """Return the argument of an action from the text after its keyword."""
    rest = rest.strip()
    if rest.startswith("("):
        close = rest.rfind(")")
        inner = rest[1:close] if close > 0 else rest[1:]
    else:
        # Tolerate "Finish: Paris" and "Finish - Paris".
        inner = rest.lstrip(":- \t")
    return _unquote(inner.strip())


def _unquote(text: str) -> str:
    """Remove one pair of matching quotes or backticks around ``text``."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in _WRAPPERS:
        return text[1:-1].strip()
    return text


def _parse_json(text: str) -> JoinDecision | None:
    """Read a decision from a JSON object in ``text``, or return None."""
    for candidate in _json_candidates(text):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, Mapping):
            decision = decision_from_mapping(data)
            if decision is not None:
                return decision
    return None


def _json_candidates(text: str) -> Iterator[str]:
    """Yield fenced code blocks, then the span from the first ``{`` to the last ``}``."""
    for block in _FENCED_BLOCK.finditer(text):
        yield block.group(1)

    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        yield text[first : last + 1]


def decision_from_mapping(data: Mapping[str, Any]) -> JoinDecision | None:
    """Build a decision from keys such as ``action``, ``answer`` and ``reason``.

    Returns None when ``action`` names neither finish nor replan.
    """
    action = _text_value(data, "action", "decision")
    thought = _text_value(data, "thought", "reasoning")
    keyword = _KEYWORD.match(action)
    if keyword is None:
        return None

    # The action may carry its argument inline, as in {"action": "Finish(Paris)"}.
    inline = _action_argument(action[keyword.end() :])
    if keyword.group(1).lower() == "finish":
        return Finish(answer=inline or _text_value(data, "answer", "final_answer"), thought=thought)
    reason = inline or _text_value(data, "replan_reason", "reason")
    return Replan(reason=reason or thought, thought=thought)


def _text_value(data: Mapping[str, Any], *keys: str) -> str:
    """Return the first non-empty value among ``keys`` as stripped text."""
    for key in keys:
        value = data.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def is_usable(decision: JoinDecision) -> bool:
    """Check that a decision can be acted on, which for a Finish means it has an answer."""
    return isinstance(decision, Replan) or bool(decision.answer.strip())
