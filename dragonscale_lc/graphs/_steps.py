"""The compiler's work cut into graph steps: plan and execute one round, then join.

Each step opens a fresh run, replays the saved tasks of earlier rounds into
it without calling their tools, and returns the new progress as JSON-ready
data. Nothing lives between steps except the state, which is what lets any
checkpointer pause and resume a thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.types import Interrupt

from .._errors import ConfigurationError
from ..compiler import (
    Joiner,
    Planner,
    PlanTask,
    Replan,
    Round,
    ToolBox,
    format_call,
    format_output,
    question_of,
)
from ..compiler._progress import Progress, event_payload
from ..compiler._result import to_jsonable
from ..compiler._session import Session
from ..runtime import DagExecutor, FailurePolicy, Run, TaskRecord
from ._state import (
    CompilerProgress,
    ErrorState,
    RoundState,
    TaskState,
    decision_of,
    decision_state,
    is_unfinished,
    plan_text,
    restore_rounds,
    saved_tasks,
)
from ._toolbox import StepToolBox

if TYPE_CHECKING:
    from ..tools._config import ToolsConfig

__all__ = ["CompilerSteps", "StepResult", "Writer"]

Writer = Callable[[Any], None]
"""Receives the custom stream's items, as LangGraph's ``get_stream_writer()`` does."""

# Progress the custom stream does not carry: ready-queue bookkeeping.
_QUIET_TOPICS = frozenset({"task.ready"})


@dataclass(slots=True)
class StepResult:
    """The outcome of one plan-and-execute step.

    Attributes:
        progress: The compiler's progress after the step.
        messages: New messages: the round's tool calls and results, once every
            task of the round has settled.
        interrupts: Interrupts raised by tools; their tasks run again next step.
        progressed: Whether the step planned a round or settled a task, that is,
            whether saving its progress spares work later.
    """

    progress: CompilerProgress
    messages: list[BaseMessage] = field(default_factory=list)
    interrupts: list[Interrupt] = field(default_factory=list)
    progressed: bool = False


class CompilerSteps:
    """The compiler's settings, and its plan-and-execute and join steps over graph state."""

    def __init__(
        self,
        model: BaseChatModel,
        tools: Sequence[BaseTool | Callable[..., Any]],
        *,
        joiner_model: BaseChatModel | None,
        direct_join: bool,
        max_replans: int,
        max_concurrency: int,
        task_timeout: float | None,
        failure_policy: FailurePolicy | str,
        tools_config: str | PathLike[str] | ToolsConfig | None = None,
    ) -> None:
        _check_settings(max_replans, max_concurrency, task_timeout)
        self.toolbox = ToolBox([*tools, *_config_tools(tools_config)])
        self.planner = Planner(model)
        self.joiner = None if direct_join else Joiner(joiner_model or model)
        self.max_replans = max_replans
        self.max_concurrency = max_concurrency
        self.task_timeout = task_timeout
        self.failure_policy = FailurePolicy(failure_policy)

    async def plan_and_execute(
        self,
        messages: Sequence[BaseMessage],
        progress: CompilerProgress | None,
        config: RunnableConfig,
        writer: Writer,
    ) -> StepResult:
        """Plan a new round, or finish the current one, and run its tasks.

        A new human message starts a new question. The current round is
        finished when some of its tasks were held by an interrupt. A round
        after a Replan decision sends the joiner's reason to the planner.
        """
        progress = _progress_for(messages, progress)
        rounds = progress["rounds"]
        last = rounds[-1] if rounds else None
        resumed = last if last is not None and is_unfinished(last) else None
        if (
            last is not None
            and resumed is None
            and not isinstance(decision_of(last["decision"]), Replan)
        ):
            return StepResult(progress)  # executed already; only the join is left

        earlier = rounds[:-1] if resumed is not None else rounds
        toolbox = StepToolBox(self.toolbox, saved_tasks(rounds))
        session = self._session(progress["question"], toolbox, config, writer)
        async with session.executor.open() as run:
            session.rounds = await _replay(run, earlier, toolbox, config)
            if resumed is not None:
                current = await session.plan_round(run, plan_text=resumed["plan"])
            else:
                reason = last["decision"].get("reason") if last and last["decision"] else None
                current = await session.plan_round(run, reason=reason)
            saved = _round_state(current, run, toolbox, resumed, session.usage)

        progress = _with_round(progress, saved, session.usage)
        settled = set(toolbox.saved)
        progressed = resumed is None or any(
            task["id"] not in settled and task["status"] not in {"interrupted", "deferred"}
            for task in saved["tasks"]
        )
        new_messages = [] if is_unfinished(saved) else round_messages(progress["id"], saved)
        return StepResult(progress, new_messages, toolbox.interrupts, progressed)

    async def join(
        self, progress: CompilerProgress, config: RunnableConfig, writer: Writer
    ) -> tuple[CompilerProgress, list[BaseMessage]]:
        """Decide after the last round; on Finish, return the answer as an ``AIMessage``."""
        rounds = progress["rounds"]
        toolbox = StepToolBox(self.toolbox, saved_tasks(rounds))
        session = self._session(progress["question"], toolbox, config, writer)
        async with session.executor.open() as run:
            session.rounds = await _replay(run, rounds, toolbox, config)
            decision = await session.join_round(run)

        last: RoundState = {
            **rounds[-1],
            "decision": decision_state(decision),
            "usage": _sum_usage(rounds[-1]["usage"], session.usage),
        }
        progress = _with_round(progress, last, session.usage)
        if isinstance(decision, Replan):
            return progress, []
        progress = {**progress, "answer": decision.answer}
        return progress, [answer_message(progress)]

    def _session(
        self, question: str, toolbox: StepToolBox, config: RunnableConfig, writer: Writer
    ) -> Session:
        workers = config.get("max_concurrency") or self.max_concurrency
        executor = DagExecutor(max_workers=workers, failure_policy=self.failure_policy)
        return Session(
            question=question,
            toolbox=toolbox,
            executor=executor,
            planner=self.planner,
            joiner=self.joiner,
            max_replans=self.max_replans,
            task_timeout=self.task_timeout,
            config=config,
            progress=Progress(
                config,
                _Emitter(writer, toolbox),
                # Replayed tasks sent their events when they first ran.
                accept=lambda _, data: data.get("task_id") not in toolbox.saved,
            ),
        )


def _config_tools(source: str | PathLike[str] | ToolsConfig | None) -> list[BaseTool]:
    """Return the tools of a configuration file; MCP servers must be opened by the caller."""
    # Imported here: the tools package loads the built-in tools and numexpr.
    from ..tools._config import as_tools_config  # noqa: PLC0415

    config = as_tools_config(source)
    if config is None:
        return []
    if config.mcp:
        raise ConfigurationError(
            f"{config.path} declares MCP servers ({', '.join(config.mcp)}), whose sessions "
            "must stay open while the graph runs: use `async with config.open() as tools:` "
            "and pass those tools to the graph instead of tools_config"
        )
    return config.local_tools()


def _check_settings(max_replans: int, max_concurrency: int, task_timeout: float | None) -> None:
    if max_replans < 0:
        raise ConfigurationError(f"max_replans must be 0 or more, got {max_replans}")
    if max_concurrency < 1:
        raise ConfigurationError(f"max_concurrency must be at least 1, got {max_concurrency}")
    if task_timeout is not None and task_timeout <= 0:
        raise ConfigurationError(
            f"task_timeout must be positive seconds or None, got {task_timeout}"
        )


class _Emitter:
    """Sends the session's and the runtime's events to the custom stream as JSON-ready dicts.

    Tasks held by an interrupt get their own topics.
    """

    def __init__(self, writer: Writer, toolbox: StepToolBox) -> None:
        self.writer = writer
        self.toolbox = toolbox

    def __call__(self, topic: str, data: dict[str, Any]) -> None:
        task_id = data.get("task_id")
        if topic in _QUIET_TOPICS:
            return
        if topic == "task.completed" and task_id in self.toolbox.interrupted:
            topic = "task.interrupted"
        elif topic == "task.completed" and task_id in self.toolbox.held:
            topic = "task.deferred"
        self.writer({"topic": topic, **event_payload(data)})


def _progress_for(
    messages: Sequence[BaseMessage], progress: CompilerProgress | None
) -> CompilerProgress:
    """Return ``progress`` if it belongs to the last human message, else a fresh one."""
    question = question_of(list(messages))
    humans = [message for message in messages if isinstance(message, HumanMessage)]
    question_id = humans[-1].id if humans else None
    if (
        progress is not None
        and progress["answer"] is None
        and progress["question"] == question
        and progress["question_id"] == question_id
    ):
        return progress
    return {
        "id": uuid.uuid4().hex[:12],
        "question": question,
        "question_id": question_id,
        "rounds": [],
        "answer": None,
        "usage": None,
    }


async def _replay(
    run: Run, rounds: list[RoundState], toolbox: StepToolBox, config: RunnableConfig
) -> list[Round]:
    """Add the saved rounds' tasks to ``run`` as replays and wait for them to settle."""
    restored = restore_rounds(rounds, toolbox.names)
    for round_ in restored:
        for task in round_.tasks:
            run.add(toolbox.make_task(task, config))
    await run.wait_idle()
    return restored


def _round_state(
    current: Round,
    run: Run,
    toolbox: StepToolBox,
    resumed: RoundState | None,
    usage: UsageMetadata | None,
) -> RoundState:
    tasks = [
        toolbox.saved[task.id]
        if task.id in toolbox.saved
        else _task_state(task, run.report.records[task.id], run, toolbox)
        for task in current.tasks
    ]
    if resumed is not None:
        # The plan is the saved one, so its errors, warnings and thought are too.
        return {**resumed, "tasks": tasks, "usage": _sum_usage(resumed["usage"], usage)}
    return {
        "index": current.index,
        "plan": plan_text(current.tasks, current.thought),
        "tasks": tasks,
        "errors": [{"message": str(error), "line_no": error.line_no} for error in current.errors],
        "thought": current.thought,
        "warnings": list(current.warnings),
        "decision": None,
        "usage": usage,
    }


def _task_state(task: PlanTask, record: TaskRecord, run: Run, toolbox: StepToolBox) -> TaskState:
    state: TaskState = {
        "id": task.id,
        "tool": task.tool,
        "call": format_call(task.tool, task.args, task.kwargs),
        "thought": task.thought,
        "args": None,
        "status": "interrupted",
        "output": None,
        "error": None,
        "observation": None,
    }
    if task.id in toolbox.interrupted:
        return state
    if task.id in toolbox.held:
        return {**state, "status": "deferred"}
    status = record.status.value
    done = status == "done"
    return {
        **state,
        "args": to_jsonable(record.kwargs),
        "status": status,  # type: ignore[typeddict-item]  # a settled runtime status
        "output": to_jsonable(record.output) if done else None,
        "error": None if done else _error_state(record.error),
        "observation": format_output(run.output(task.id)),
    }


def _error_state(error: BaseException | None) -> ErrorState | None:
    if error is None:
        return None
    return {"type": type(error).__name__, "message": str(error)}


def _with_round(
    progress: CompilerProgress, saved: RoundState, usage: UsageMetadata | None
) -> CompilerProgress:
    rounds = [item for item in progress["rounds"] if item["index"] != saved["index"]]
    return {
        **progress,
        "rounds": [*rounds, saved],
        "usage": _sum_usage(progress["usage"], usage),
    }


def _sum_usage(first: UsageMetadata | None, second: UsageMetadata | None) -> UsageMetadata | None:
    if first is None or second is None:
        return first or second
    return add_usage(first, second)


def tool_call_id(progress_id: str, task_id: Hashable) -> str:
    """Return the tool call id of a task in ``messages``; unique per question."""
    return f"call_{progress_id}_{task_id}"


def round_messages(progress_id: str, saved: RoundState) -> list[BaseMessage]:
    """Return a settled round as an ``AIMessage`` with tool calls and one ``ToolMessage`` each.

    The message ids are derived from the question and round, so a step that
    runs again replaces its messages instead of adding them twice.
    """
    if not saved["tasks"]:
        return []
    calls = [
        {
            "id": tool_call_id(progress_id, task["id"]),
            "name": task["tool"],
            "args": task["args"] or {},
            "type": "tool_call",
        }
        for task in saved["tasks"]
    ]
    prefix = f"{progress_id}-round-{saved['index']}"
    messages: list[BaseMessage] = [AIMessage(content="", tool_calls=calls, id=f"{prefix}-calls")]
    for task in saved["tasks"]:
        messages.append(
            ToolMessage(
                content=task["observation"] or "",
                tool_call_id=tool_call_id(progress_id, task["id"]),
                name=task["tool"],
                status="success" if task["status"] == "done" else "error",
                artifact=task["output"],
                id=f"{prefix}-task-{task['id']}",
            )
        )
    return messages


def answer_message(progress: CompilerProgress) -> AIMessage:
    """Return the answer as an ``AIMessage`` with a summary of the run in its metadata."""
    tasks = [task for saved in progress["rounds"] for task in saved["tasks"]]
    summary = {
        "answer": progress["answer"],
        "tasks": tasks,
        "replans": len(progress["rounds"]) - 1,
        "usage": dict(progress["usage"]) if progress["usage"] else None,
    }
    return AIMessage(
        content=progress["answer"] or "",
        id=f"{progress['id']}-answer",
        response_metadata={"dragonscale": summary},
        usage_metadata=progress["usage"],
    )
