"""What one compiler invocation produced: rounds, report, answer and usage."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages.ai import UsageMetadata

from .._errors import PlanError
from ..runtime import ErrorObservation, RunReport, TaskRecord, TaskStatus
from ._joiner import JoinDecision
from ._plan import PlanTask

__all__ = ["CompilerResult", "Round", "format_output", "report_tasks", "to_jsonable"]


@dataclass(slots=True)
class Round:
    """One plan and what came of it.

    Attributes:
        index: 0 for the first plan, 1 for the first replan, and so on.
        tasks: Tasks the parser accepted, in plan order.
        errors: Problems in the plan text, each naming its line.
        thought: The last ``Thought:`` line of the plan, if any.
        trailing_text: Text the model wrote after ``join()``, which was ignored.
        warnings: Other text the parser ignored, such as words after a call.
        decision: What the joiner decided after the tasks ran.
        plan_text: The planner's reply, as the model wrote it.
        plan_cache: ``"hit"`` when the plan came from the plan cache,
            ``"miss"`` when the cache had none, ``None`` when no cache was asked.
        usage: The round's model calls by step (``"planner"``, ``"joiner"``):
            for each call its model, token counts and estimated dollars
            (``None`` when the model has no known price).
    """

    index: int
    tasks: list[PlanTask] = field(default_factory=list)
    errors: list[PlanError] = field(default_factory=list)
    thought: str | None = None
    trailing_text: str = ""
    warnings: list[str] = field(default_factory=list)
    decision: JoinDecision | None = None
    plan_text: str | None = None
    plan_cache: str | None = None
    usage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(slots=True)
class CompilerResult:
    """The answer to one question with everything that led to it.

    ``usage`` adds up the tokens of every planner and joiner call across
    rounds. ``cost`` estimates their price in US dollars, or is ``None`` when
    a model has no known price.
    """

    question: str
    answer: str
    report: RunReport
    rounds: list[Round]
    usage: UsageMetadata | None = None
    cost: float | None = None

    @property
    def replans(self) -> int:
        """How many times the compiler planned again after the first plan."""
        return len(self.rounds) - 1

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary: answer, tasks in id order, replans, usage and cost.

        ``error`` is the answer's text when the answer is the error
        observation of a failed task (a direct join of a failed last task),
        else ``None``.
        """
        return {
            "answer": self.answer,
            "tasks": report_tasks(self.report),
            "replans": self.replans,
            "usage": to_jsonable(dict(self.usage)) if self.usage else None,
            "rounds": [
                {
                    "round": round_.index,
                    "plan_cache": round_.plan_cache,
                    "usage": to_jsonable(round_.usage),
                }
                for round_ in self.rounds
            ],
            "estimated_cost_usd": self.cost,
            "error": str(self.answer) if isinstance(self.answer, ErrorObservation) else None,
        }


def report_tasks(report: RunReport) -> list[dict[str, Any]]:
    """Return every task of ``report`` as JSON-ready data, in id order."""
    records = sorted(report, key=lambda record: _sort_key(record.id))
    return [_task_dict(record) for record in records]


def format_output(value: Any) -> str:
    """Return a task output as the text a person or a model reads.

    Floats are rounded to four decimals and lose a trailing ``.0``, so an
    answer reads ``219.4067`` rather than ``219.40670000000003``.
    """
    if isinstance(value, bool) or not isinstance(value, float):
        if isinstance(value, str):
            return value
        data = to_jsonable(value)
        # An object that JSON cannot represent becomes its str(), shown as is.
        return data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if abs(value) >= 1e-3:
        rounded = round(value, 4)
        return str(int(rounded)) if rounded.is_integer() else repr(rounded)
    return f"{value:.6g}"


def _task_dict(record: TaskRecord) -> dict[str, Any]:
    failed = record.status in (TaskStatus.FAILED, TaskStatus.CANCELLED)
    return {
        "id": record.id,
        "tool": record.name,
        "args": to_jsonable(_arguments(record)),
        "status": record.status.value,
        "output": to_jsonable(record.output) if record.status is TaskStatus.DONE else None,
        "error": _error_text(record) if failed else None,
        "start": record.start,
        "end": record.end,
    }


def _arguments(record: TaskRecord) -> Any:
    # Plan tasks carry the tool's input as keyword arguments; other tasks may
    # be positional.
    if record.args:
        return {"args": list(record.args), "kwargs": record.kwargs}
    return record.kwargs


def _error_text(record: TaskRecord) -> str:
    if record.error is None:
        return f"task was {record.status.value}"
    return f"{type(record.error).__name__}: {record.error}"


def to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    return str(value)


def _sort_key(task_id: Any) -> tuple[int, Any]:
    return (0, task_id) if isinstance(task_id, int) else (1, str(task_id))
