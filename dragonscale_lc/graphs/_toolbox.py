"""The tools of one graph step: saved results instead of tool calls, and held interrupts."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphInterrupt
from langgraph.types import Interrupt

from ..compiler import PlanTask, ToolBox
from ..compiler._result_cache import ResultCache
from ..runtime import Task
from ._state import TaskState, saved_error

__all__ = ["HELD", "StepToolBox"]


class _HeldOutput:
    """The output the runtime records for a task held back by an interrupt."""

    def __repr__(self) -> str:
        return "<held by an interrupt>"


HELD = _HeldOutput()


class StepToolBox(ToolBox):
    """A toolbox that replays saved results and holds back tasks that call ``interrupt()``.

    A task whose id is in ``saved`` does not call its tool: it returns the
    saved output, or raises the saved error. A tool that raises LangGraph's
    ``GraphInterrupt`` is caught, so the runtime records it as done with the
    output :data:`HELD` and its siblings run on whatever the failure policy.
    Its dependents then return :data:`HELD` without calling their tools.

    Args:
        tools: The compiler's toolbox, whose tools this one shares.
        saved: Settled tasks from the state, by id.

    Attributes:
        interrupts: The interrupts the tools raised, in the order they were raised.
        interrupted: Ids of the tasks whose tool called ``interrupt()``.
        held: Ids of the interrupted tasks and of the tasks that wait for them.
    """

    def __init__(self, tools: ToolBox, saved: Mapping[int, TaskState]) -> None:
        super().__init__([tools[name] for name in tools.names])
        self.saved = saved
        self.interrupts: list[Interrupt] = []
        self.interrupted: set[int] = set()
        self.held: set[int] = set()

    def make_task(
        self,
        plan_task: PlanTask,
        config: RunnableConfig,
        *,
        timeout: float | None = None,
        before_call: Callable[[], Coroutine[Any, Any, None]] | None = None,
        results: ResultCache | None = None,
    ) -> Task:
        """Return the runtime task for ``plan_task``: a replay if it was saved, else a tool call."""
        saved = self.saved.get(plan_task.id)
        if saved is not None:
            return _replay_task(plan_task, saved)
        task = super().make_task(
            plan_task, config, timeout=timeout, before_call=before_call, results=results
        )
        return dataclasses.replace(task, fn=self._guard(plan_task, task.fn))

    def _guard(self, plan_task: PlanTask, call: Callable[..., Any]) -> Callable[..., Any]:
        task_id, dependencies = plan_task.id, plan_task.dependencies

        def waits_for_interrupt() -> bool:
            if dependencies & self.held:
                self.held.add(task_id)
                return True
            return False

        def hold(interrupt: GraphInterrupt) -> _HeldOutput:
            self.interrupts.extend(interrupt.args[0] if interrupt.args else ())
            self.interrupted.add(task_id)
            self.held.add(task_id)
            return HELD

        # Kept sync for sync tools, so the runtime still runs them in its own threads.
        if inspect.iscoroutinefunction(call):

            async def guarded_async(**tool_input: Any) -> Any:
                if waits_for_interrupt():
                    return HELD
                try:
                    return await call(**tool_input)
                except GraphInterrupt as interrupt:
                    return hold(interrupt)

            return guarded_async

        def guarded_sync(**tool_input: Any) -> Any:
            if waits_for_interrupt():
                return HELD
            try:
                return call(**tool_input)
            except GraphInterrupt as interrupt:
                return hold(interrupt)

        return guarded_sync


def _replay_task(plan_task: PlanTask, saved: TaskState) -> Task:
    """Return a task that settles as the saved one did, without calling its tool."""
    if saved["status"] == "done":
        output = saved["output"]

        async def replay() -> Any:
            return output

    else:
        error = saved_error(saved["error"], f"task {plan_task.id!r} was {saved['status']}")

        async def replay() -> Any:
            raise error

    # The dependencies keep the graph's edges, so failures upstream are
    # described as they were the first time.
    return Task(
        id=plan_task.id, fn=replay, dependencies=plan_task.dependencies, name=plan_task.tool
    )
