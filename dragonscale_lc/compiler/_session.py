"""One compiler invocation: plan, execute, join, and replan until there is an answer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.runnables import RunnableConfig

from .._errors import ModelCallError, PlanError, ReplanLimitError, RunError, TaskError
from ..runtime import Cache, DagExecutor, Event, FailurePolicy, Run, TaskStatus
from ._joiner import Finish, JoinDecision, Joiner, Replan
from ._parser import StreamingPlanParser
from ._plan import PlanTask
from ._plan_cache import PlanCache
from ._planner import Planner, PlannerModelError
from ._pricing import DEFAULT_PRICES, TokenPrice, estimate_cost, price_for
from ._progress import Progress
from ._prompts import planner_messages
from ._result import CompilerResult, Round, format_output
from ._result_cache import ResultCache
from ._toolbox import ToolBox

__all__ = ["Session"]

logger = logging.getLogger(__name__)

# Runtime events the session passes on as progress.
_RUNTIME_TOPICS = ("task.*", "pool.*")


class Session:
    """State of one question's way through plans, tasks and join decisions."""

    def __init__(
        self,
        *,
        question: str,
        toolbox: ToolBox,
        executor: DagExecutor,
        planner: Planner | None,
        joiner: Joiner | None,
        max_replans: int,
        task_timeout: float | None,
        config: RunnableConfig,
        progress: Progress | None = None,
        prices: Mapping[str, TokenPrice] = DEFAULT_PRICES,
        plan_cache: PlanCache | None = None,
        result_store: Cache | None = None,
    ) -> None:
        self.question = question
        self.toolbox = toolbox
        self.executor = executor
        self.planner = planner
        self.joiner = joiner
        self.max_replans = max_replans
        self.task_timeout = task_timeout
        self.config = config
        self.progress = progress if progress is not None else Progress(config)
        self.prices = prices
        self.plan_cache = plan_cache
        # Every round of this run shares one result cache.
        self.results = ResultCache(result_store)
        progress = self.progress
        if progress.active:
            for topic in _RUNTIME_TOPICS:
                executor.events.subscribe(
                    topic, lambda event: progress.publish(event.topic, _task_data(event))
                )
        self.rounds: list[Round] = []
        self.usage: UsageMetadata | None = None
        self._run: Run

    async def run(self, plan_text: str | None = None) -> CompilerResult:
        """Answer the question, starting from ``plan_text`` instead of the planner if given."""
        try:
            async with self.executor.open() as run:
                self._run = run
                try:
                    return await self._rounds(run, plan_text)
                except RunError as error:
                    # Whatever ended the run, the tasks that ran keep their results.
                    if error.report is None:
                        error.report = run.report
                    error.replans = max(len(self.rounds) - 1, 0)
                    raise
        finally:
            await self.progress.aclose()

    async def _rounds(self, run: Run, plan_text: str | None) -> CompilerResult:
        reason: str | None = None
        for index in range(self.max_replans + 1):
            await self.plan_round(run, plan_text=plan_text if index == 0 else None, reason=reason)
            decision = await self.join_round(run)
            if isinstance(decision, Finish):
                return CompilerResult(
                    self.question,
                    decision.answer,
                    run.report,
                    self.rounds,
                    self.usage,
                    cost=self._total_cost(),
                )
            reason = decision.reason
            logger.info("replanning after round %d: %s", index, reason)
        raise AssertionError("unreachable: the last round always finishes")  # pragma: no cover

    async def _plan(
        self, run: Run, current: Round, plan_text: str | None, reason: str | None
    ) -> StreamingPlanParser:
        known_ids = [tid for tid in run.report.records if isinstance(tid, int)]
        parser = StreamingPlanParser(self.toolbox.names, known_ids=known_ids)

        def start(task: PlanTask) -> None:
            self._start_task(run, current, parser, task)

        if plan_text is None and current.index == 0:
            plan_text = self._cached_plan(current)
        if plan_text is not None:
            for task in [*parser.feed(plan_text), *parser.close()]:
                start(task)
            return parser
        if self.planner is None:
            raise PlanError("no plan was given and no planner model is configured")
        history = self.history(replan=True) if self.rounds[:-1] else None
        next_id = max(known_ids, default=0) + 1
        messages = planner_messages(
            self.question,
            self.toolbox.describe(),
            history=history,
            reason=reason,
            next_id=next_id,
            has_outputs=any(record.status is TaskStatus.DONE for record in run.report),
        )
        try:
            reply = await self.planner.astream_plan(
                messages, parser, start, self.config, stop=lambda: run.cancelled
            )
        except PlannerModelError as failure:
            raise self._model_failure(
                "planner", self.planner.model, current.index, run, failure.error
            ) from failure.error
        self._add_usage(current, "planner", self.planner.model, reply)
        current.plan_text = reply.text if reply is not None else None
        return parser

    def _cached_plan(self, current: Round) -> str | None:
        """Return the cached first plan for the question, noting the lookup in the round."""
        if self.plan_cache is None or self.planner is None:
            return None
        key = self.plan_cache.key(self.question, self.toolbox, self.planner.model)
        plan = self.plan_cache.get(key)
        current.plan_cache = "miss" if plan is None else "hit"
        self._emit(f"plan.cache_{current.plan_cache}", {"round": current.index, "key": key})
        return plan

    def _store_plan(self, current: Round) -> None:
        """Cache the first plan when the joiner finished with it, for the next such question."""
        if self.plan_cache is None or self.planner is None or current.plan_cache != "miss":
            return
        if current.errors or not current.plan_text:
            return
        key = self.plan_cache.key(self.question, self.toolbox, self.planner.model)
        self.plan_cache.put(key, current.plan_text)

    def _start_task(
        self, run: Run, current: Round, parser: StreamingPlanParser, task: PlanTask
    ) -> None:
        try:
            _check_dependencies_added(run, task)
            runtime_task = self.toolbox.make_task(
                task,
                self.config,
                timeout=self.task_timeout,
                before_call=self.progress.flush if self.progress.sends_custom_events else None,
                results=self.results,
            )
        except PlanError as error:
            message = f"line {task.line_no}: task {task.number}: {error}"
            parser.errors.append(PlanError(message, line_no=task.line_no))
            return
        current.tasks.append(task)
        self._emit(
            "plan.task_parsed",
            {"task_id": task.id, "call": task.to_text(), "thought": task.thought},
        )
        run.add(runtime_task)

    def _close_round(self, current: Round, parser: StreamingPlanParser) -> None:
        current.errors = list(parser.errors)
        current.thought = parser.final_thought
        current.trailing_text = parser.trailing_text
        current.warnings = list(parser.warnings)
        for warning in parser.warnings:
            logger.warning("round %d of the plan: %s", current.index, warning)
        if parser.trailing_text:
            logger.warning(
                "ignored text after join() in round %d: %r",
                current.index,
                parser.trailing_text[:200],
            )
        if not current.tasks and not current.errors:
            current.errors.append(PlanError("the plan has no tasks; write at least one tool call"))
        self._emit(
            "plan.completed",
            {
                "round": current.index,
                "tasks": [task.id for task in current.tasks],
                "errors": [str(error) for error in current.errors],
            },
        )

    async def _decide(self, run: Run, current: Round, *, last: bool) -> JoinDecision:
        self._check_fail_fast(run)
        if current.errors:
            problems = "; ".join(str(error) for error in current.errors)
            if last or self.planner is None:
                raise self._plan_failure(problems, last=last)
            tools = ", ".join(self.toolbox.names)
            return Replan(f"the plan had errors: {problems}. Available tools: {tools}")
        if self.joiner is None:
            return Finish(self._direct_answer(run, current))
        try:
            decision, messages = await self.joiner.adecide(
                self.question,
                self.history(),
                allow_replan=not last and self.planner is not None,
                config=self.config,
            )
        except RunError as error:
            # The results are already there: answer with the last task's output
            # rather than lose them to an unreadable joiner reply.
            logger.warning("joiner failed in round %d, using direct join: %s", current.index, error)
            return Finish(self._direct_answer(run, current), thought=f"joiner failed: {error}")
        except Exception as error:
            raise self._model_failure(
                "joiner", self.joiner.model, current.index, run, error
            ) from error
        for message in messages:
            self._add_usage(current, "joiner", self.joiner.model, message)
        return decision

    def _check_fail_fast(self, run: Run) -> None:
        if self.executor.failure_policy is not FailurePolicy.FAIL_FAST:
            return
        failed = next((record for record in run.report if record.status is TaskStatus.FAILED), None)
        if failed is None:
            return
        # A timeout keeps its own class, so `except TaskTimeoutError` still works.
        kind = type(failed.error) if isinstance(failed.error, TaskError) else TaskError
        error = kind(
            f"task {failed.id} ({failed.name}) failed and the failure policy is fail_fast: "
            f"{type(failed.error).__name__}: {failed.error}",
            task_id=failed.id,
            tool=failed.name,
        )
        raise error from failed.error

    @staticmethod
    def _model_failure(
        step: str, model: Any, round_index: int, run: Run, error: Exception
    ) -> ModelCallError:
        name = getattr(model, "model_name", None) or type(model).__name__
        done = sum(1 for record in run.report if record.status is TaskStatus.DONE)
        return ModelCallError(
            f"the {step} model {name!r} failed in round {round_index} "
            f"({done} task result(s) so far are in the error's report): "
            f"{type(error).__name__}: {error}",
            step=step,
            round=round_index,
            report=run.report,
        )

    def _plan_failure(self, problems: str, *, last: bool) -> RunError:
        if last and self.max_replans > 0:
            return ReplanLimitError(
                f"no valid plan after {self.max_replans} replan(s); last errors: {problems}"
            )
        return PlanError(f"invalid plan: {problems}", line_no=self.rounds[-1].errors[0].line_no)

    @staticmethod
    def _direct_answer(run: Run, current: Round) -> str:
        # Without a joiner model the answer is the output of the last task
        # before join(), which a plan written for direct join computes last.
        return format_output(run.output(current.tasks[-1].id))

    def history(self, *, replan: bool = False) -> str:
        """Return every round's plan with observations, as the joiner and replans read it.

        For a replan, the round being planned is left out, and so is the last
        replan reason, which the replan prompt states on its own.
        """
        blocks = []
        rounds = self.rounds[:-1] if replan else self.rounds
        for round_ in rounds:
            lines = [f"Plan {round_.index + 1}:"]
            for task in round_.tasks:
                if task.thought:
                    lines.append(f"Thought: {task.thought}")
                lines.append(task.to_text())
                lines.append(f"Observation: {format_output(self._run.output(task.id))}")
            # A thought that introduced a task is already shown above that
            # task, so only a thought after the last call gets its own line.
            if round_.thought and all(task.thought != round_.thought for task in round_.tasks):
                lines.append(f"Thought: {round_.thought}")
            lines.extend(f"Plan error: {error}" for error in round_.errors)
            last = round_ is rounds[-1]
            if isinstance(round_.decision, Replan) and not (replan and last):
                lines.append(f"Replan: {round_.decision.reason}")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    async def plan_round(
        self, run: Run, *, plan_text: str | None = None, reason: str | None = None
    ) -> Round:
        """Plan one round on ``run``, wait for its tasks to settle and return it, without joining.

        :attr:`rounds` must hold the earlier rounds, and ``run`` their tasks.
        Together with :meth:`join_round` this runs a round in two separate
        steps, as the LangGraph nodes do.

        Args:
            run: The open run whose tasks the round may reference.
            plan_text: Plan text to run instead of asking the planner.
            reason: Why the previous round asked for a new plan.
        """
        self._run = run
        current = self._new_round(reason)
        parser = await self._plan(run, current, plan_text, reason)
        await run.wait_idle()
        self._close_round(current, parser)
        await self.progress.flush()
        return current

    def _new_round(self, reason: str | None) -> Round:
        current = Round(len(self.rounds))
        self.rounds.append(current)
        self._emit("plan.started", {"round": current.index, "reason": reason})
        return current

    async def join_round(self, run: Run) -> JoinDecision:
        """Decide between answering and replanning after the last round, and record it.

        ``run`` must hold the tasks of every round in :attr:`rounds`, settled.
        """
        self._run = run
        current = self.rounds[-1]
        decision = await self._decide(run, current, last=current.index == self.max_replans)
        current.decision = decision
        if isinstance(decision, Finish) and current.index == 0:
            self._store_plan(current)
        self._emit("join.decided", {"round": current.index, "decision": decision})
        await self.progress.flush()
        return decision

    def _emit(self, topic: str, data: dict[str, Any]) -> None:
        if self.progress.active:
            self.progress.publish(topic, data)

    def _add_usage(
        self, current: Round, step: str, model: Any, message: BaseMessage | None
    ) -> None:
        usage = getattr(message, "usage_metadata", None)
        if not usage:
            return
        self.usage = usage if self.usage is None else add_usage(self.usage, usage)
        name = _model_name(model, message)
        price = price_for(name, self.prices) if name else None
        current.usage.setdefault(step, []).append(
            {
                "model": name,
                **usage,
                "cost": estimate_cost(usage, price) if price is not None else None,
            }
        )

    def _total_cost(self) -> float | None:
        """Dollars spent on every model call, or ``None`` if a model has no known price."""
        costs = [
            call["cost"]
            for round_ in self.rounds
            for calls in round_.usage.values()
            for call in calls
        ]
        if not costs or any(cost is None for cost in costs):
            return None
        return float(sum(costs))


def _check_dependencies_added(run: Run, task: PlanTask) -> None:
    """Reject a task whose dependency the parser accepted but the toolbox rejected.

    Earlier rounds' tasks are all in the run, so a missing dependency is from
    this round and shares the task's offset between model numbers and ids.
    """
    for dep in sorted(task.dependencies):
        if dep not in run.report.records:
            number = dep - task.id + task.number
            raise PlanError(f"references task {number}, which was rejected")


def _model_name(model: Any, message: BaseMessage | None) -> str | None:
    """Return the name of the model that wrote the reply, else the configured name."""
    metadata = getattr(message, "response_metadata", None) or {}
    name = metadata.get("model_name") or getattr(model, "model_name", None)
    return name if isinstance(name, str) else None


def _task_data(event: Event) -> dict[str, Any]:
    data = dict(event.data)
    data["time"] = event.time
    return data
