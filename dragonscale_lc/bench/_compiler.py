"""LLMCompiler latency: sequential ReAct, plan then execute, streaming, and a plan-cache hit.

Every strategy answers ParallelQA-shaped questions with the same simulated
chat model (:class:`~dragonscale_lc.testing.SimulatedChatModel`: a fixed
time to the first token, then a fixed number of tokens per second) and the
same built-in tools, each sleeping a fixed latency before it runs:

- **sequential**: a ReAct loop, one model call per tool call and one for the answer;
- **plan_then_execute**: the planner's whole reply arrives, then the compiler
  runs that plan (``arun(plan=...)``) and the joiner answers;
- **streaming**: :class:`~dragonscale_lc.compiler.LLMCompiler`, whose tasks
  start while the plan streams;
- **plan_cache_hit**: the compiler with a :class:`~dragonscale_lc.compiler.PlanCache`
  primed by an untimed run of the same question, so no planner call is made.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage

from .._parallelqa import Question, is_correct, load_plans, load_questions
from ..compiler import LLMCompiler, PlanCache, parse_plan, planner_messages
from ..testing import SimulatedChatModel
from ._agent import SimulatedAgent, SleepingTools, run_react
from ._common import timed

__all__ = [
    "STRATEGIES",
    "CompilerBenchResult",
    "CompilerShape",
    "ShapeResult",
    "StrategyRun",
    "compiler_shapes",
    "measure_compiler",
]

STRATEGIES = ("sequential", "plan_then_execute", "streaming", "plan_cache_hit")

GOAL_SPEEDUP_VS_SEQUENTIAL = 2.15
"""The ParallelQA latency speedup over ReAct that Kim et al. report for LLMCompiler with GPT-4.

Source: "An LLM Compiler for Parallel Function Calling", ICML 2024.
"""
GOAL_CACHE_SAVING_OF_PLANNER = 0.5
"""A plan-cache hit must save at least this fraction of the planner call's duration."""

# Not a ParallelQA question: written in its style so that one shape has five
# parallel lookups. The shipped questions have two to four.
_FIVE_BRANCH_QUESTION = Question(
    id="5-way",
    question=(
        "If Japan's population falls by 40%, Vietnam's grows by 2%, Thailand's grows by 25%, "
        "South Korea's grows by 60% and China's falls by 95%, which of the five countries "
        "will have the largest population?"
    ),
    answer="Vietnam",
    branch=5,
)
_FIVE_BRANCH_PLAN = """\
1. country_facts("Japan")
2. country_facts("Vietnam")
3. country_facts("Thailand")
4. country_facts("South Korea")
5. country_facts("China")
6. math("$1 * 0.60")
7. math("$2 * 1.02")
8. math("$3 * 1.25")
9. math("$4 * 1.60")
10. math("$5 * 0.05")
Thought: Pick the country with the largest changed population.
11. argmax(["Japan", "Vietnam", "Thailand", "South Korea", "China"], [$6, $7, $8, $9, $10])
12. join()
"""


@dataclass(frozen=True, slots=True)
class CompilerShape:
    """One benchmark question with the plan the simulated planner writes for it."""

    question: Question
    plan: str

    @property
    def branches(self) -> int:
        """Tasks of the plan that depend on no other task: the parallel lookups."""
        return sum(1 for task in parse_plan(self.plan).tasks if not task.dependencies)

    @property
    def tool_calls(self) -> int:
        """Tool calls in the plan."""
        return len(parse_plan(self.plan).tasks)


def compiler_shapes() -> list[CompilerShape]:
    """Return the shipped ParallelQA questions with their plans, then a five-branch question."""
    plans = load_plans()
    shapes = [CompilerShape(question, plans[question.id]) for question in load_questions()]
    shapes.append(CompilerShape(_FIVE_BRANCH_QUESTION, _FIVE_BRANCH_PLAN))
    return shapes


@dataclass(frozen=True, slots=True)
class StrategyRun:
    """One strategy on one question: median seconds and the calls of its last run."""

    seconds: float
    planner_calls: int
    joiner_calls: int
    react_calls: int
    tool_calls: int
    answer: str
    correct: bool

    @property
    def model_calls(self) -> int:
        return self.planner_calls + self.joiner_calls + self.react_calls


@dataclass(frozen=True, slots=True)
class ShapeResult:
    """Every strategy's run on one question, and the planner call's duration alone."""

    shape: CompilerShape
    planner_s: float
    runs: dict[str, StrategyRun]

    def to_dict(self) -> dict[str, Any]:
        """Return the timings, speedups, call counts and answers."""
        seconds = {name: run.seconds for name, run in self.runs.items()}
        return {
            "id": self.shape.question.id,
            "question": self.shape.question.question,
            "label": self.shape.question.answer,
            "branches": self.shape.branches,
            "plan_tool_calls": self.shape.tool_calls,
            "planner_s": self.planner_s,
            **_timings(seconds),
            "strategies": {
                name: {"model_calls": run.model_calls, **_run_fields(run)}
                for name, run in self.runs.items()
            },
        }


@dataclass(frozen=True, slots=True)
class CompilerBenchResult:
    """The compiler benchmark: parameters, each question's result and the totals."""

    time_to_first_token: float
    tokens_per_second: float
    tool_latency: float
    time_scale: float
    repeat: int
    shapes: tuple[ShapeResult, ...]

    def total_s(self, strategy: str) -> float:
        """Sum over the questions of the strategy's median seconds."""
        return sum(shape.runs[strategy].seconds for shape in self.shapes)

    @property
    def planner_s(self) -> float:
        """Sum over the questions of the planner call's median seconds."""
        return sum(shape.planner_s for shape in self.shapes)

    @property
    def goals(self) -> dict[str, bool]:
        totals = {name: self.total_s(name) for name in STRATEGIES}
        saved = totals["streaming"] - totals["plan_cache_hit"]
        return {
            "speedup_vs_sequential_ge_2_15": (
                totals["sequential"] / totals["streaming"] >= GOAL_SPEEDUP_VS_SEQUENTIAL
            ),
            "streaming_faster_than_plan_then_execute": (
                totals["streaming"] < totals["plan_then_execute"]
            ),
            "plan_cache_hit_saves_half_of_planner_s": (
                saved >= GOAL_CACHE_SAVING_OF_PLANNER * self.planner_s
            ),
            "all_answers_correct": all(
                run.correct for shape in self.shapes for run in shape.runs.values()
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters, each question's figures, the totals and the goals."""
        totals = {name: self.total_s(name) for name in STRATEGIES}
        return {
            "time_to_first_token_s": self.time_to_first_token,
            "tokens_per_second": self.tokens_per_second,
            "tool_latency_s": self.tool_latency,
            "time_scale": self.time_scale,
            "repeat": self.repeat,
            "shapes": [shape.to_dict() for shape in self.shapes],
            "total": {
                "planner_s": self.planner_s,
                "plan_cache_hit_saved_s": totals["streaming"] - totals["plan_cache_hit"],
                **_timings(totals),
            },
            "goals": self.goals,
        }


def _timings(seconds: dict[str, float]) -> dict[str, float]:
    return {
        **{f"{name}_s": seconds[name] for name in STRATEGIES},
        "speedup_vs_sequential": seconds["sequential"] / seconds["streaming"],
        "speedup_vs_plan_then_execute": seconds["plan_then_execute"] / seconds["streaming"],
    }


def _run_fields(run: StrategyRun) -> dict[str, Any]:
    return {
        "planner_calls": run.planner_calls,
        "joiner_calls": run.joiner_calls,
        "react_calls": run.react_calls,
        "tool_calls": run.tool_calls,
        "answer": run.answer,
        "correct": run.correct,
    }


async def measure_compiler(
    shapes: Sequence[CompilerShape] | None = None,
    *,
    time_to_first_token: float = 0.3,
    tokens_per_second: float = 50.0,
    tool_latency: float = 0.5,
    time_scale: float = 1.0,
    repeat: int = 1,
) -> CompilerBenchResult:
    """Run every strategy on every question ``repeat`` times; each keeps its median time.

    Args:
        shapes: The questions and plans; default :func:`compiler_shapes`.
        time_to_first_token: Seconds from a model call to its first token.
        tokens_per_second: Tokens a model streams per second after the first.
        tool_latency: Seconds every tool call sleeps before it runs.
        time_scale: Factor on every delay above, to shorten quick runs.
        repeat: Timed runs of each strategy on each question.

    Raises:
        ValueError: A parameter is out of range.
        RuntimeError: A plan-cache run did not hit the cache.
    """
    if time_to_first_token < 0 or tool_latency < 0:
        raise ValueError(
            f"time_to_first_token and tool_latency must be 0 or more, "
            f"got {time_to_first_token} and {tool_latency}"
        )
    if tokens_per_second <= 0 or time_scale <= 0 or repeat < 1:
        raise ValueError(
            f"tokens_per_second and time_scale must be positive and repeat at least 1, "
            f"got {tokens_per_second}, {time_scale} and {repeat}"
        )
    shapes = compiler_shapes() if shapes is None else list(shapes)
    delays = _Delays(
        time_to_first_token * time_scale, tokens_per_second / time_scale, tool_latency * time_scale
    )
    agent = SimulatedAgent({shape.question.question: shape.plan for shape in shapes})
    results = [await _measure_shape(shape, agent, delays, repeat) for shape in shapes]
    return CompilerBenchResult(
        time_to_first_token=time_to_first_token,
        tokens_per_second=tokens_per_second,
        tool_latency=tool_latency,
        time_scale=time_scale,
        repeat=repeat,
        shapes=tuple(results),
    )


@dataclass(frozen=True, slots=True)
class _Delays:
    """The simulated model's and tools' timing, time scale applied."""

    time_to_first_token: float
    tokens_per_second: float
    tool_latency: float


class _Trial:
    """Fresh models and tools for one timed run of one strategy, so its counts are its own."""

    def __init__(self, agent: SimulatedAgent, delays: _Delays, *, cached: bool) -> None:
        self.tools = SleepingTools(delays.tool_latency)
        self.planner = _model(agent.plan, delays)
        self.joiner = _model(agent.join, delays)
        self.react = _model(agent.react_step, delays)
        self.compiler = LLMCompiler(
            model=self.planner,
            joiner_model=self.joiner,
            tools=self.tools.tools,
            plan_cache=PlanCache() if cached else None,
        )
        self.planner_s = 0.0

    def counts(self) -> tuple[int, int, int, int]:
        return self.planner.calls, self.joiner.calls, self.react.calls, self.tools.calls


def _model(reply: Callable[[list[BaseMessage]], str], delays: _Delays) -> SimulatedChatModel:
    return SimulatedChatModel(
        replies=[reply],
        repeat=True,
        time_to_first_token=delays.time_to_first_token,
        tokens_per_second=delays.tokens_per_second,
    )


async def _sequential(trial: _Trial, question: str) -> str:
    return await run_react(question, trial.react, trial.compiler.toolbox)


async def _plan_then_execute(trial: _Trial, question: str) -> str:
    messages = planner_messages(question, trial.compiler.toolbox.describe())
    start = time.perf_counter()
    reply = await trial.planner.ainvoke(messages)
    trial.planner_s = time.perf_counter() - start
    result = await trial.compiler.arun(question, plan=reply.text)
    return result.answer


async def _streaming(trial: _Trial, question: str) -> str:
    return (await trial.compiler.arun(question)).answer


async def _plan_cache_hit(trial: _Trial, question: str) -> str:
    result = await trial.compiler.arun(question)
    if result.rounds[0].plan_cache != "hit":
        raise RuntimeError(f"the plan cache missed on a primed question: {question!r}")
    return result.answer


_RUNNERS: dict[str, Callable[[_Trial, str], Awaitable[str]]] = {
    "sequential": _sequential,
    "plan_then_execute": _plan_then_execute,
    "streaming": _streaming,
    "plan_cache_hit": _plan_cache_hit,
}


async def _measure_shape(
    shape: CompilerShape, agent: SimulatedAgent, delays: _Delays, repeat: int
) -> ShapeResult:
    question = shape.question
    seconds: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    planner_seconds: list[float] = []
    last: dict[str, StrategyRun] = {}
    correct = dict.fromkeys(STRATEGIES, True)
    for _ in range(repeat):
        for name in STRATEGIES:
            run, planner_s = await _run_once(name, agent, delays, question)
            seconds[name].append(run.seconds)
            correct[name] = correct[name] and run.correct
            last[name] = run
            if planner_s is not None:
                planner_seconds.append(planner_s)

    runs = {
        name: _with_seconds(last[name], statistics.median(seconds[name]), correct[name])
        for name in STRATEGIES
    }
    return ShapeResult(shape, statistics.median(planner_seconds), runs)


async def _run_once(
    name: str, agent: SimulatedAgent, delays: _Delays, question: Question
) -> tuple[StrategyRun, float | None]:
    """Time one strategy on one question; return the run and the planner call's seconds."""
    trial = _Trial(agent, delays, cached=name == "plan_cache_hit")
    if name == "plan_cache_hit":
        await _streaming(trial, question.question)  # primes the cache, untimed
    before = trial.counts()
    elapsed, answer = await timed(lambda: _RUNNERS[name](trial, question.question))
    planner, joiner, react, tools = (
        after - start for after, start in zip(trial.counts(), before, strict=True)
    )
    run = StrategyRun(
        elapsed, planner, joiner, react, tools, answer, is_correct(answer, question.answer)
    )
    return run, trial.planner_s if name == "plan_then_execute" else None


def _with_seconds(run: StrategyRun, seconds: float, correct: bool) -> StrategyRun:
    return StrategyRun(
        seconds,
        run.planner_calls,
        run.joiner_calls,
        run.react_calls,
        run.tool_calls,
        run.answer,
        correct,
    )
