"""The graph state: LangGraph messages plus the compiler's progress as JSON-ready data.

The progress is plain dicts, lists, strings and numbers, so every
checkpointer can store it and a later step, or another process, can read it
back. :func:`restore_rounds` turns it back into the compiler's own objects.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal, TypedDict, cast

from langchain_core.messages import AnyMessage
from langchain_core.messages.ai import UsageMetadata
from langgraph.graph.message import add_messages

from .._errors import PlanError, RunError, UsageError
from ..compiler import Finish, JoinDecision, PlanTask, Replan, Round, StreamingPlanParser
from ..compiler._progress import decision_dict

__all__ = [
    "CompilerProgress",
    "DecisionState",
    "ErrorState",
    "LLMCompilerState",
    "PlanErrorState",
    "RoundState",
    "SavedTaskError",
    "TaskState",
    "restore_rounds",
    "saved_error",
]

TaskStatusName = Literal["done", "failed", "skipped", "cancelled", "interrupted", "deferred"]
"""A task's status in the state.

The runtime's terminal statuses, plus ``interrupted`` (the tool called
LangGraph's ``interrupt()``) and ``deferred`` (it needs the output of an
interrupted task). Interrupted and deferred tasks run again in the next step.
"""

FINAL_STATUSES = frozenset({"done", "failed", "skipped", "cancelled"})


class ErrorState(TypedDict):
    """A task's exception: its class name and message."""

    type: str
    message: str


class TaskState(TypedDict):
    """One task of a round.

    ``call`` is the call in plan syntax with run ids (``math("$1 / $2")``),
    ``args`` the tool input after references were replaced (``None`` until the
    task ran), and ``observation`` the text the joiner reads (``None`` until
    the task settled).
    """

    id: int
    tool: str
    call: str
    thought: str | None
    args: Any
    status: TaskStatusName
    output: Any
    error: ErrorState | None
    observation: str | None


class PlanErrorState(TypedDict):
    """A problem in a round's plan text."""

    message: str
    line_no: int | None


class DecisionState(TypedDict, total=False):
    """The joiner's decision: ``action`` is ``finish`` (with ``answer``) or ``replan``
    (with ``reason``)."""

    action: Literal["finish", "replan"]
    answer: str
    reason: str
    thought: str


class RoundState(TypedDict):
    """One plan and what came of it; ``plan`` is the accepted tasks in plan syntax."""

    index: int
    plan: str
    tasks: list[TaskState]
    errors: list[PlanErrorState]
    thought: str | None
    warnings: list[str]
    decision: DecisionState | None
    usage: UsageMetadata | None


class CompilerProgress(TypedDict):
    """The compiler's progress on one question.

    ``id`` is unique per question and prefixes the tool call ids written to
    ``messages``; ``question_id`` is the id of the human message asked.
    """

    id: str
    question: str
    question_id: str | None
    rounds: list[RoundState]
    answer: str | None
    usage: UsageMetadata | None


class LLMCompilerState(TypedDict, total=False):
    """State of the prebuilt graph, compatible with LangGraph's ``MessagesState``.

    ``messages`` uses the ``add_messages`` reducer. ``compiler`` is replaced as
    a whole by each step.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    compiler: CompilerProgress


class SavedTaskError(RunError):
    """A task failure read back from the graph state.

    :func:`saved_error` gives each one a subclass named after the original
    exception class, because error observations show the class name and a
    restored failure must read as the original did.
    """


@functools.cache
def _saved_error_class(name: str) -> type[SavedTaskError]:
    return type(name, (SavedTaskError,), {"__module__": __name__, "__qualname__": name})


def saved_error(error: ErrorState | None, fallback: str) -> SavedTaskError:
    """Return the exception that stands for a saved task failure.

    Args:
        error: The saved class name and message, if the task had an exception.
        fallback: The message to use when it had none (a cancelled task).
    """
    if error is None:
        return _saved_error_class("RunError")(fallback)
    return _saved_error_class(error["type"])(error["message"])


def decision_state(decision: JoinDecision) -> DecisionState:
    """Return a join decision as JSON-ready data."""
    return cast(DecisionState, decision_dict(decision))


def decision_of(state: DecisionState | None) -> JoinDecision | None:
    """Return the join decision stored in ``state``, if there is one."""
    if state is None:
        return None
    if state["action"] == "finish":
        return Finish(state.get("answer", ""), state.get("thought", ""))
    return Replan(state.get("reason", ""), state.get("thought", ""))


def restore_rounds(
    rounds: list[RoundState], tools: Collection[str], known_ids: Collection[int] = ()
) -> list[Round]:
    """Rebuild the compiler's rounds from the state, parsing each round's plan again.

    Args:
        rounds: Saved rounds, in order.
        tools: Names of the tools a plan may call.
        known_ids: Ids of tasks before the first of ``rounds``.

    Raises:
        UsageError: A saved plan no longer parses to the saved tasks, because
            a tool was removed or renamed since the state was saved.
    """
    restored = []
    known = set(known_ids)
    for saved in rounds:
        current = Round(saved["index"])
        current.tasks = parse_saved_plan(saved, tools, known)
        current.errors = [
            PlanError(error["message"], line_no=error["line_no"]) for error in saved["errors"]
        ]
        current.thought = saved["thought"]
        current.warnings = list(saved["warnings"])
        current.decision = decision_of(saved["decision"])
        known.update(task.id for task in current.tasks)
        restored.append(current)
    return restored


def parse_saved_plan(
    saved: RoundState, tools: Collection[str], known_ids: Collection[int]
) -> list[PlanTask]:
    """Parse a saved round's plan and check that it gives the saved tasks."""
    parser = StreamingPlanParser(tools, known_ids=known_ids)
    tasks = [*parser.feed(saved["plan"]), *parser.close()]
    expected = [task["id"] for task in saved["tasks"]]
    if [task.id for task in tasks] != expected or parser.errors:
        problems = "; ".join(str(error) for error in parser.errors) or "the task ids differ"
        raise UsageError(
            f"the saved plan of round {saved['index']} no longer matches its tasks {expected} "
            f"({problems}); the graph's tools must keep the names they had when the "
            "state was saved, or start a new thread"
        )
    return tasks


def plan_text(tasks: list[PlanTask], final_thought: str | None) -> str:
    """Return the plan syntax of ``tasks``, with their thoughts, ending in ``join()``."""
    lines = []
    for task in tasks:
        if task.thought:
            lines.append(f"Thought: {task.thought}")
        lines.append(task.to_text())
    if final_thought and all(task.thought != final_thought for task in tasks):
        lines.append(f"Thought: {final_thought}")
    lines.append("join()")
    return "\n".join(lines) + "\n"


def saved_tasks(rounds: list[RoundState]) -> dict[int, TaskState]:
    """Return every task of ``rounds`` that settled for good, by id."""
    return {
        task["id"]: task
        for saved in rounds
        for task in saved["tasks"]
        if task["status"] in FINAL_STATUSES
    }


def is_unfinished(saved: Mapping[str, Any]) -> bool:
    """Return whether a saved round still has tasks to run."""
    return any(task["status"] not in FINAL_STATUSES for task in saved["tasks"])
