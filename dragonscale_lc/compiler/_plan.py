"""Plan tasks as the parser emits them, and their canonical text form."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..runtime import Ref, Template

__all__ = ["PlanTask", "format_call"]

_MONEY_OR_DIGIT = re.compile(r"\d|[.,]\d")


@dataclass(frozen=True, slots=True)
class PlanTask:
    """One tool call of a plan.

    Attributes:
        id: The task's id in the run. It equals ``number`` unless the model
            restarted numbering in a replan, in which case ids continue after
            the previous rounds' tasks.
        tool: Name of the tool to call.
        args: Positional arguments; references are ``Ref`` or ``Template`` values.
        kwargs: Keyword arguments, with references the same way.
        dependencies: Ids of the tasks whose outputs the arguments reference.
        number: The task number as the model wrote it.
        line_no: 1-based line of the plan text where the call starts.
        thought: The ``Thought:`` line the model wrote before this call, if any.
    """

    id: int
    tool: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    dependencies: frozenset[int] = frozenset()
    number: int = 0
    line_no: int = 0
    thought: str | None = None

    def to_text(self) -> str:
        """Return the call in plan syntax with run ids, e.g. ``3. math("$1 + $2")``."""
        return f"{self.id}. {format_call(self.tool, self.args, self.kwargs)}"


def format_call(tool: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """Return ``tool(arg, key=value)`` in plan syntax, references written as ``$N``."""
    parts = [_format_value(arg) for arg in args]
    parts.extend(f"{key}={_format_value(value)}" for key, value in kwargs.items())
    return f"{tool}({', '.join(parts)})"


def _format_value(value: Any) -> str:
    if isinstance(value, Ref):
        return f"${value.task_id}"
    if isinstance(value, Template):
        pieces = []
        for index, part in enumerate(value.parts):
            if isinstance(part, Ref):
                following = value.parts[index + 1] if index + 1 < len(value.parts) else ""
                # Braces are needed only where a digit follows the reference,
                # or a "." or "," and a digit, which would read as money.
                braced = isinstance(following, str) and _MONEY_OR_DIGIT.match(following)
                pieces.append(f"${{{part.task_id}}}" if braced else f"${part.task_id}")
            else:
                pieces.append(part.replace("$", "$$"))
        return json.dumps("".join(pieces), ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(_format_value(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, set):
        return "{" + ", ".join(sorted(map(_format_value, value))) + "}" if value else "set()"
    if isinstance(value, dict):
        items = (f"{_format_value(k)}: {_format_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, str):
        # JSON string syntax is valid Python and reads like the prompt's examples.
        return json.dumps(value.replace("$", "$$"), ensure_ascii=False)
    return repr(value)
