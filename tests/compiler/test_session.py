"""The compiler loop through LLMCompiler: plans, tools, joins, replans and the Runnable API."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool, tool
from pydantic import Field

from dragonscale_lc._errors import (
    ConfigurationError,
    PlanError,
    ReplanLimitError,
    TaskError,
    TaskTimeoutError,
    UsageError,
)
from dragonscale_lc.compiler import LLMCompiler, Planner, StreamingPlanParser
from dragonscale_lc.tools import builtin_tools

GUARD = 10.0
"""Seconds after which a test gives up on something that should happen at once."""

QUESTION = "How far apart are the two harbours?"


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


# -- fake models ---------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted model reply, streamed chunk by chunk.

    The stream awaits the event ``waits[i]`` before it sends chunk ``i``, and
    sets ``finished`` after the consumer has taken the last chunk.
    """

    chunks: list[str]
    usage: UsageMetadata | None = None
    waits: dict[int, asyncio.Event] = field(default_factory=dict)
    finished: asyncio.Event | None = None


def reply(text: str, usage: UsageMetadata | None = None) -> Reply:
    """A reply streamed in whitespace-separated pieces, as a token stream would be."""
    return Reply([piece for piece in re.split(r"(\s)", text) if piece], usage)


def usage(input_tokens: int, output_tokens: int) -> UsageMetadata:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays back scripted replies and records every prompt."""

    replies: list[Any]
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, messages: Sequence[BaseMessage]) -> Reply:
        self.calls.append(list(messages))
        assert self.replies, f"unexpected model call number {len(self.calls)}"
        item = self.replies.pop(0)
        return item if isinstance(item, Reply) else reply(item)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        item = self._next(messages)
        message = AIMessage(content="".join(item.chunks), usage_metadata=item.usage)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._generate(messages)

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        item = self._next(messages)
        for index, text in enumerate(item.chunks):
            if index in item.waits:
                await item.waits[index].wait()
            last = index == len(item.chunks) - 1
            yield _chunk(text, item.usage if last else None)
        if item.finished is not None:
            item.finished.set()

    def prompt(self, call: int) -> str:
        return "\n".join(message.text for message in self.calls[call])


def _chunk(text: str, usage: UsageMetadata | None) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=text, usage_metadata=usage))


def finish(answer: str, usage: UsageMetadata | None = None) -> Reply:
    return reply(f"Thought: the observations answer it.\nAction: Finish({answer})", usage)


def replan(reason: str, usage: UsageMetadata | None = None) -> Reply:
    return reply(f"Thought: something is missing.\nAction: Replan({reason})", usage)


def models(
    plans: Sequence[Any], joins: Sequence[Any] = ()
) -> tuple[ScriptedChatModel, ScriptedChatModel]:
    return ScriptedChatModel(replies=list(plans)), ScriptedChatModel(replies=list(joins))


def compiler_for(
    planner: BaseChatModel, joiner: BaseChatModel | None = None, **options: Any
) -> LLMCompiler:
    tools = options.pop("tools", None)
    return LLMCompiler(
        model=planner,
        joiner_model=joiner,
        tools=[*builtin_tools(), *TOOLS] if tools is None else tools,
        **options,
    )


def dragonscale(message: AIMessage) -> dict[str, Any]:
    return message.response_metadata["dragonscale"]


def task_field(message: AIMessage, name: str) -> dict[int, Any]:
    return {task["id"]: task[name] for task in dragonscale(message)["tasks"]}


# -- tools ----------------------------------------------------------------------------

CALLS: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


@tool
def harbour(name: str) -> int:
    """Return the position of a harbour along the coast, in kilometres."""
    CALLS["harbour"] += 1
    return {"north": 120, "south": 45, "west": 300}[name]


@tool
def describe(text: str) -> str:
    """Describe a piece of text in one line."""
    CALLS["describe"] += 1
    return f"described: {text}"


@tool
def unreachable_rates(currency: str) -> float:
    """Fetch an exchange rate from a service that refuses connections."""
    CALLS["unreachable_rates"] += 1
    raise ConnectionError(f"rates service refused the connection for {currency}")


@tool
def chronicle(town: str) -> str:
    """Return the long history of a town."""
    return (
        f"{town} was founded by fishermen who settled on the northern shore of the bay, "
        "and over three centuries it grew into a trading port with warehouses, a lighthouse "
        "and a market that drew merchants from the whole coast every summer."
    )


TOOLS = [harbour, describe, unreachable_rates, chronicle]
TWO_HARBOURS = '1. harbour("north")\n2. harbour("south")\n3. math("$1 - $2")\n4. join()\n'


# -- one round ----------------------------------------------------------------------


async def test_plan_runs_and_joiner_answers() -> None:
    planner, joiner = models([TWO_HARBOURS], [finish("75 km")])

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert message.content == "75 km"
    assert task_field(message, "output") == {1: 120, 2: 45, 3: 75.0}


async def test_joiner_sees_question_plan_and_observations() -> None:
    planner, joiner = models([TWO_HARBOURS], [finish("75 km")])

    await compiler_for(planner, joiner).ainvoke(QUESTION)

    prompt = joiner.prompt(0)
    assert f"Question: {QUESTION}" in prompt
    assert '1. harbour("north")\nObservation: 120' in prompt
    assert '3. math("$1 - $2")\nObservation: 75' in prompt


async def test_planner_prompt_lists_tools() -> None:
    planner, joiner = models([TWO_HARBOURS], [finish("75 km")])

    await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert "harbour(name: string)" in planner.prompt(0)
    assert f"Question: {QUESTION}" in planner.prompt(0)


async def test_generic_fake_chat_models_drive_compiler() -> None:
    planner = GenericFakeChatModel(messages=iter([TWO_HARBOURS]))
    joiner = GenericFakeChatModel(messages=iter(["Action: Finish(75 km apart)"]))

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert message.content == "75 km apart"


async def test_failing_tool_becomes_error_observation() -> None:
    plan = '1. unreachable_rates("NOK")\n2. describe("$1")\n3. join()\n'
    planner, joiner = models([plan], [finish("no rate available")])

    message = await compiler_for(planner, joiner).ainvoke("What is the krone worth?")

    assert message.content == "no rate available"
    assert task_field(message, "status") == {1: "failed", 2: "done"}
    assert task_field(message, "error")[1] == (
        "ConnectionError: rates service refused the connection for NOK"
    )
    assert task_field(message, "output")[2] == (
        "described: ERROR in task 1 (unreachable_rates): ConnectionError: "
        "rates service refused the connection for NOK"
    )


async def test_joiner_scratchpad_shows_tool_error() -> None:
    plan = '1. unreachable_rates("NOK")\n2. describe("$1")\n3. join()\n'
    planner, joiner = models([plan], [finish("no rate available")])

    await compiler_for(planner, joiner).ainvoke("What is the krone worth?")

    assert (
        "Observation: ERROR in task 1 (unreachable_rates): ConnectionError: rates service "
        "refused the connection "
        "for NOK"
    ) in joiner.prompt(0)


async def test_task_timeout_fails_only_that_task() -> None:
    never = asyncio.Event()

    @tool
    async def stuck_feed(source: str) -> str:
        """Read a feed that never returns."""
        await never.wait()
        return source

    plan = '1. stuck_feed("tides")\n2. harbour("west")\n3. math("$2 / 2")\n4. join()\n'
    planner, joiner = models([plan], [finish("150")])
    compiler = compiler_for(
        planner, joiner, tools=[*TOOLS, *builtin_tools(), stuck_feed], task_timeout=0.2
    )

    message = await compiler.ainvoke(QUESTION)

    assert task_field(message, "status") == {1: "failed", 2: "done", 3: "done"}
    assert task_field(message, "error")[1] == (
        "TaskTimeoutError: task 1 (stuck_feed) timed out after 0.2 s"
    )
    assert "Observation: ERROR in task 1 (stuck_feed): TaskTimeoutError" in joiner.prompt(0)


def test_empty_tool_list_rejected_at_construction() -> None:
    planner, _ = models([])

    with pytest.raises(ConfigurationError, match="the compiler needs at least one tool"):
        LLMCompiler(model=planner, tools=[])


def test_compiler_without_model_or_plan_rejected() -> None:
    with pytest.raises(ConfigurationError, match=r"needs a chat model \(model=\.\.\.\)"):
        LLMCompiler(tools=builtin_tools())


async def test_paragraph_in_math_gives_error_observation() -> None:
    plan = '1. chronicle("Bergen")\n2. math("$1 ** 2")\n3. join()\n'
    planner, joiner = models([plan], [finish("the history is not a number")])

    message = await compiler_for(planner, joiner).ainvoke("Square the history of Bergen")

    assert message.content == "the history is not a number"
    assert task_field(message, "status")[2] == "failed"
    assert task_field(message, "error")[2].startswith(
        "ToolException: 'Bergen was founded by fishermen"
    )
    assert "is not an arithmetic expression" in task_field(message, "error")[2]
    assert "Observation: ERROR in task 2 (math): ToolException:" in joiner.prompt(0)


# -- plan errors -------------------------------------------------------------------------


async def test_unknown_tool_triggers_replan_with_tools_listed() -> None:
    planner, joiner = models(
        ['1. web_search("harbours")\n2. join()\n', TWO_HARBOURS], [finish("75 km")]
    )

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert message.content == "75 km"
    assert dragonscale(message)["replans"] == 1
    prompt = planner.prompt(1)
    assert "unknown tool 'web_search'; available tools: argmax, argmin" in prompt
    assert (
        "Available tools: math, country_facts, argmax, argmin, harbour, describe, "
        "unreachable_rates, chronicle"
    ) in prompt


async def test_invalid_plans_hit_replan_limit() -> None:
    bad = '1. web_search("harbours")\n2. join()\n'
    planner, joiner = models([bad, bad], [])

    with pytest.raises(
        ReplanLimitError,
        match=r"^no valid plan after 1 replan\(s\); last errors: line 1: task 1: unknown tool "
        r"'web_search'; available tools: argmax, ",
    ):
        await compiler_for(planner, joiner, max_replans=1).ainvoke(QUESTION)

    assert len(planner.calls) == 2
    assert joiner.calls == []


async def test_invalid_plan_without_replans_is_plan_error() -> None:
    planner, joiner = models(["1. harbour(north)\n"], [])

    with pytest.raises(PlanError, match=r"^invalid plan: line 1: task 1: `north` is not a literal"):
        await compiler_for(planner, joiner, max_replans=0).ainvoke(QUESTION)


async def test_empty_plan_triggers_replan() -> None:
    planner, joiner = models(["I cannot help with that.", TWO_HARBOURS], [finish("75 km")])

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert message.content == "75 km"
    assert "the plan has no tasks; write at least one tool call" in planner.prompt(1)


async def test_rejected_call_and_its_dependents_replan() -> None:
    plan = '1. harbour()\n2. math("$1 + 1")\n3. join()\n'
    planner, joiner = models([plan, TWO_HARBOURS], [finish("75 km")])

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert message.content == "75 km"
    prompt = planner.prompt(1)
    assert "line 1: task 1: harbour() is missing required argument(s): name" in prompt
    assert "line 2: task 2: references task 1, which was rejected" in prompt


async def test_text_after_join_is_ignored() -> None:
    plan = TWO_HARBOURS + '5. harbour("west")\n6. join()\n'
    planner, joiner = models([plan], [finish("75 km")])

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert sorted(task_field(message, "tool")) == [1, 2, 3]
    assert CALLS["harbour"] == 2


# -- replans -------------------------------------------------------------------------------


def replan_script(second_plan: str) -> tuple[ScriptedChatModel, ScriptedChatModel]:
    first_plan = '1. harbour("north")\n2. harbour("south")\n3. join()\n'
    return models(
        [first_plan, second_plan], [replan("the distance is not computed yet"), finish("75 km")]
    )


async def test_replan_prompt_carries_history_and_reason() -> None:
    planner, joiner = replan_script('3. math("$1 - $2")\n4. join()\n')

    await compiler_for(planner, joiner).ainvoke(QUESTION)

    prompt = planner.prompt(1)
    assert 'Plan 1:\n1. harbour("north")\nObservation: 120\n2. harbour("south")' in prompt
    assert "Reason for a new plan: the distance is not computed yet" in prompt
    assert prompt.count("the distance is not computed yet") == 1
    assert "Plan 2:" not in prompt
    assert "Number its calls from 3 on" in prompt
    assert "You may reference the outputs above" in prompt


async def test_replan_continues_numbering_without_rerunning() -> None:
    planner, joiner = replan_script('3. math("$1 - $2")\n4. join()\n')

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert message.content == "75 km"
    assert dragonscale(message)["replans"] == 1
    assert task_field(message, "output") == {1: 120, 2: 45, 3: 75.0}
    assert CALLS["harbour"] == 2


async def test_joiner_after_replan_sees_both_rounds() -> None:
    planner, joiner = replan_script('3. math("$1 - $2")\n4. join()\n')

    await compiler_for(planner, joiner).ainvoke(QUESTION)

    prompt = joiner.prompt(1)
    assert "Plan 1:" in prompt
    assert 'Plan 2:\n3. math("$1 - $2")\nObservation: 75' in prompt


async def test_replan_restarting_numbers_gets_fresh_ids() -> None:
    planner, joiner = replan_script('1. harbour("west")\n2. math("$1 - ${1}")\n3. join()\n')

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert task_field(message, "tool") == {1: "harbour", 2: "harbour", 3: "harbour", 4: "math"}
    assert task_field(message, "output") == {1: 120, 2: 45, 3: 300, 4: 0.0}
    assert CALLS["harbour"] == 3


async def test_last_round_always_finishes() -> None:
    planner, joiner = models(
        [TWO_HARBOURS, '5. harbour("west")\n6. join()\n'],
        [replan("check the west harbour"), replan("still unsure, about 75 km")],
    )

    message = await compiler_for(planner, joiner, max_replans=1).ainvoke(QUESTION)

    assert message.content == "still unsure, about 75 km"
    assert dragonscale(message)["replans"] == 1
    assert "Replanning is not possible" in joiner.prompt(1)


# -- direct join ---------------------------------------------------------------------------


async def test_direct_join_answers_with_last_task() -> None:
    planner, _ = models([TWO_HARBOURS])

    message = await compiler_for(planner, direct_join=True).ainvoke(QUESTION)

    assert message.content == "75"


def test_fixed_plan_without_model_answers_with_last_task() -> None:
    plan = '1. math("3 * 14")\n2. math("90 / 3")\n3. math("${1} - ${2}")\n4. join()'
    compiler = LLMCompiler(tools=builtin_tools(), plan=plan)

    assert compiler.invoke("What is 3 * 14 - 90 / 3?").content == "12"


# -- concurrency ---------------------------------------------------------------------------


@dataclass
class Gauge:
    """Counter of the tool calls running at once.

    Calls wait at a gate that the test opens once ``limit`` calls run together,
    so a call that starts without a free worker slot raises ``peak`` above it.
    """

    limit: int
    running: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self) -> bool:
        """Count a call in and return whether it is the call that reaches the limit."""
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            return self.running == self.limit

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


FIVE_CALLS = "".join(f"{n}. hold({n})\n" for n in range(1, 6)) + '6. math("1")\n7. join()\n'


def async_holder(gauge: Gauge, reached: asyncio.Event, gate: asyncio.Event) -> BaseTool:
    @tool
    async def hold(number: int) -> int:
        """Hold a worker until the gate opens."""
        if gauge.enter():
            reached.set()
        await gate.wait()
        gauge.leave()
        return number

    return hold


def sync_holder(gauge: Gauge, reached: asyncio.Event, gate: threading.Event) -> BaseTool:
    loop = asyncio.get_running_loop()

    @tool
    def hold(number: int) -> int:
        """Hold a worker thread until the gate opens."""
        if gauge.enter():
            loop.call_soon_threadsafe(reached.set)
        assert gate.wait(GUARD), "the gate never opened"
        gauge.leave()
        return number

    return hold


async def run_gated(
    compiler: LLMCompiler,
    reached: asyncio.Event,
    gate: asyncio.Event | threading.Event,
    **kwargs: Any,
) -> AIMessage:
    run = asyncio.create_task(compiler.ainvoke("hold them all", **kwargs))
    async with asyncio.timeout(GUARD):
        await reached.wait()
    gate.set()
    return await run


async def test_max_concurrency_caps_async_tools() -> None:
    gauge, reached, gate = Gauge(limit=2), asyncio.Event(), asyncio.Event()
    hold = async_holder(gauge, reached, gate)
    compiler = LLMCompiler(tools=[hold, *builtin_tools()], plan=FIVE_CALLS)

    message = await run_gated(compiler, reached, gate, config={"max_concurrency": 2})

    assert gauge.peak == 2
    assert message.content == "1"


async def test_max_concurrency_caps_sync_tools() -> None:
    gauge, reached, gate = Gauge(limit=2), asyncio.Event(), threading.Event()
    hold = sync_holder(gauge, reached, gate)
    compiler = LLMCompiler(tools=[hold, *builtin_tools()], plan=FIVE_CALLS)

    message = await run_gated(compiler, reached, gate, config={"max_concurrency": 2})

    assert gauge.peak == 2
    assert message.content == "1"


async def test_compiler_max_concurrency_is_default() -> None:
    gauge, reached, gate = Gauge(limit=3), asyncio.Event(), asyncio.Event()
    hold = async_holder(gauge, reached, gate)
    compiler = LLMCompiler(tools=[hold, *builtin_tools()], plan=FIVE_CALLS, max_concurrency=3)

    await run_gated(compiler, reached, gate)

    assert gauge.peak == 3


async def test_first_tool_starts_while_plan_streams() -> None:
    started, resume, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @tool
    async def probe(spot: str) -> str:
        """Probe one spot."""
        started.set()
        return spot

    plan = Reply(['1. probe("reef")\n', '2. probe("cove")\n', "3. join()"], finished=finished)
    plan.waits[1] = resume
    planner, _ = models([plan])
    compiler = compiler_for(planner, tools=[probe], direct_join=True)

    run = asyncio.create_task(compiler.ainvoke("Probe the reef and the cove"))
    async with asyncio.timeout(GUARD):
        await started.wait()
    streaming = not finished.is_set()
    resume.set()
    message = await run

    assert streaming
    assert message.content == "cove"


# -- inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "Where is the north harbour?",
        HumanMessage("Where is the north harbour?"),
        [
            SystemMessage("Be brief."),
            HumanMessage("Where is the north harbour?"),
            AIMessage("Let me look."),
        ],
        {"messages": [HumanMessage("Where is the north harbour?")]},
        {"input": "Where is the north harbour?"},
        {"question": "Where is the north harbour?"},
    ],
    ids=["str", "message", "messages", "dict-messages", "dict-input", "dict-question"],
)
async def test_input_forms_reach_planner(given: Any) -> None:
    planner, _ = models(['1. harbour("north")\n2. join()'])

    message = await compiler_for(planner, direct_join=True).ainvoke(given)

    assert message.content == "120"
    assert "Question: Where is the north harbour?" in planner.prompt(0)


async def test_dict_without_question_rejected() -> None:
    planner, _ = models([])

    with pytest.raises(
        UsageError,
        match=exact(
            "LLMCompiler got a dict with keys ['query']; expected a 'messages', 'input' or "
            "'question' key"
        ),
    ):
        await compiler_for(planner).ainvoke({"query": "x"})


async def test_unsupported_input_rejected() -> None:
    planner, _ = models([])

    with pytest.raises(
        UsageError,
        match=exact(
            "LLMCompiler cannot take int input; pass a question string, a list of messages, "
            "or a dict with 'messages'"
        ),
    ):
        await compiler_for(planner).ainvoke(42)  # type: ignore[arg-type]


# -- the Runnable surface ---------------------------------------------------------------------

FIXED_PLAN = '1. harbour("north")\n2. harbour("west")\n3. math("$2 - $1")\n4. join()\n'


def fixed_compiler() -> LLMCompiler:
    return LLMCompiler(tools=[*builtin_tools(), *TOOLS], plan=FIXED_PLAN)


def test_invoke_returns_answer() -> None:
    assert fixed_compiler().invoke(QUESTION).content == "180"


async def test_ainvoke_returns_answer() -> None:
    message = await fixed_compiler().ainvoke(QUESTION)

    assert message.content == "180"


def test_batch_answers_each_input() -> None:
    messages = fixed_compiler().batch([QUESTION, "And again?"])

    assert [message.content for message in messages] == ["180", "180"]


def test_stream_ends_with_answer() -> None:
    chunks = list(fixed_compiler().stream(QUESTION))

    assert chunks[-1].content == "180"
    assert all(chunk.content == "" for chunk in chunks[:-1])


async def test_astream_ends_with_answer() -> None:
    chunks = [chunk async for chunk in fixed_compiler().astream(QUESTION)]

    assert chunks[-1].content == "180"


def test_pipe_into_str_output_parser_invoke() -> None:
    assert (fixed_compiler() | StrOutputParser()).invoke(QUESTION) == "180"


def test_pipe_into_str_output_parser_stream() -> None:
    assert "".join((fixed_compiler() | StrOutputParser()).stream(QUESTION)) == "180"


async def test_pipe_into_str_output_parser_ainvoke() -> None:
    assert await (fixed_compiler() | StrOutputParser()).ainvoke(QUESTION) == "180"


async def test_astream_events_cover_plan_tasks_and_join() -> None:
    planner, joiner = models([TWO_HARBOURS], [finish("75 km")])

    chunks = [chunk async for chunk in compiler_for(planner, joiner).astream(QUESTION)]

    events = reduce(lambda a, b: a + b, chunks).additional_kwargs["dragonscale_events"]
    topics = [event["topic"] for event in events]
    assert {"plan.task_parsed", "task.started", "task.completed", "join.decided"} <= set(topics)
    assert topics[-1] == "join.decided"


async def test_astream_task_events_name_tasks() -> None:
    planner, joiner = models([TWO_HARBOURS], [finish("75 km")])

    chunks = [chunk async for chunk in compiler_for(planner, joiner).astream(QUESTION)]

    events = [
        event for chunk in chunks for event in chunk.additional_kwargs.get("dragonscale_events", [])
    ]
    parsed = [event["call"] for event in events if event["topic"] == "plan.task_parsed"]
    completed = {
        event["task_id"]: event["output"] for event in events if event["topic"] == "task.completed"
    }
    assert parsed == ['1. harbour("north")', '2. harbour("south")', '3. math("$1 - $2")']
    assert completed == {1: 120, 2: 45, 3: 75.0}


async def test_astream_decision_event() -> None:
    planner, joiner = models([TWO_HARBOURS], [finish("75 km")])

    chunks = [chunk async for chunk in compiler_for(planner, joiner).astream(QUESTION)]

    decided = chunks[-2].additional_kwargs["dragonscale_events"][0]
    assert decided["topic"] == "join.decided"
    assert decided["decision"]["action"] == "finish"
    assert decided["decision"]["answer"] == "75 km"


async def test_response_metadata_lists_tasks() -> None:
    planner, joiner = models([TWO_HARBOURS], [finish("75 km")])

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    summary = dragonscale(message)
    assert summary["answer"] == "75 km"
    assert summary["replans"] == 0
    assert [task["id"] for task in summary["tasks"]] == [1, 2, 3]
    first = summary["tasks"][0]
    assert set(first) >= {"id", "tool", "args", "status", "output", "error", "start", "end"}
    assert first["tool"] == "harbour"
    assert first["args"] == {"name": "north"}
    assert first["status"] == "done"
    assert first["output"] == 120
    assert first["error"] is None
    assert 0 <= first["start"] <= first["end"]


async def test_usage_summed_over_planner_and_joiner_rounds() -> None:
    planner, joiner = models(
        [
            reply('1. harbour("north")\n2. join()', usage(100, 20)),
            reply('2. harbour("south")\n3. join()', usage(150, 10)),
        ],
        [replan("need the south harbour", usage(80, 5)), finish("both found", usage(90, 4))],
    )

    message = await compiler_for(planner, joiner).ainvoke(QUESTION)

    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 100 + 150 + 80 + 90
    assert message.usage_metadata["output_tokens"] == 20 + 10 + 5 + 4
    assert message.usage_metadata["total_tokens"] == 420 + 39


class ToolEvents(AsyncCallbackHandler):
    """Records tool starts and ends with the task id from their metadata."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.ended: list[UUID] = []
        self.task_ids: dict[UUID, Any] = {}

    async def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        task_id = (metadata or {}).get("dragonscale_task_id")
        self.started.append(task_id)
        self.task_ids[run_id] = task_id

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ended.append(self.task_ids[run_id])


async def test_callbacks_see_every_tool_with_task_id() -> None:
    planner, joiner = models([TWO_HARBOURS], [finish("75 km")])
    events = ToolEvents()

    await compiler_for(planner, joiner).ainvoke(QUESTION, config={"callbacks": [events]})

    assert sorted(events.started) == [1, 2, 3]
    assert sorted(events.ended) == [1, 2, 3]


def test_callbacks_in_sync_invoke() -> None:
    events = ToolEvents()

    fixed_compiler().invoke(QUESTION, config={"callbacks": [events]})

    assert sorted(events.started) == [1, 2, 3]
    assert sorted(events.ended) == [1, 2, 3]


async def test_replan_after_only_errors_offers_no_outputs() -> None:
    planner, joiner = models(
        ['1. telescope("north")\n2. join()\n', '1. harbour("north")\n2. join()\n'], [finish("120")]
    )

    await compiler_for(planner, joiner).ainvoke(QUESTION)

    prompt = planner.prompt(1)
    assert "unknown tool 'telescope'" in prompt
    assert "You may reference the outputs above" not in prompt


# -- failure policy and early stops -------------------------------------------------


@tool
def flaky_gauge(station: str) -> float:
    """Read a gauge that is offline."""
    raise ConnectionError(f"gauge {station} is offline")


async def test_fail_fast_streamed_plan_raises_task_error() -> None:
    planner, _ = models(['1. flaky_gauge("a")\n2. harbour("north")\n3. math("$2 + 1")\n4. join()'])
    compiler = compiler_for(
        planner, tools=[flaky_gauge, *TOOLS, *builtin_tools()], failure_policy="fail_fast"
    )

    with pytest.raises(
        TaskError, match="task 1 \\(flaky_gauge\\) failed and the failure"
    ) as caught:
        await compiler.ainvoke(QUESTION)

    statuses = {record.id: record.status.value for record in caught.value.report}
    assert statuses[1] == "failed"
    assert "cancelled" in statuses.values()
    cancelled = [record for record in caught.value.report if record.status.value == "cancelled"]
    assert all("because task 1 (flaky_gauge) failed" in str(r.error) for r in cancelled)


async def test_dependent_error_names_root_cause() -> None:
    compiler = LLMCompiler(
        tools=[flaky_gauge, *builtin_tools()],
        plan='1. flaky_gauge("b")\n2. math("$1 * 2")\n3. join()',
    )

    result = await compiler.arun(QUESTION)

    assert result.answer.startswith("ERROR in task 2 (math): ToolException:")
    assert "its input came from a failed task: task 1 (flaky_gauge)" in result.answer
    assert "gauge b is offline" in result.answer


def test_sync_stream_closed_early_cancels_tools() -> None:
    cancelled = threading.Event()

    @tool
    async def endless(station: str) -> str:
        """Wait for a reading that never comes."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return station

    compiler = LLMCompiler(tools=[endless], plan='1. endless("a")\n2. join()')
    stream = compiler.stream(QUESTION)
    for chunk in stream:
        events = chunk.additional_kwargs.get("dragonscale_events", [])
        if any(event["topic"] == "task.started" for event in events):
            break

    stream.close()

    assert cancelled.wait(GUARD)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([("assistant", "hello")], "contain no human message"),
        (b"hi", "cannot take bytes input"),
    ],
)
def test_input_without_question_rejected(bad: Any, message: str) -> None:
    compiler = LLMCompiler(tools=builtin_tools(), plan='1. math("1")')

    with pytest.raises(UsageError, match=message):
        compiler.invoke(bad)


async def test_planner_stops_reading_when_told() -> None:
    planner, _ = models([Reply(['1. harbour("north")\n', '2. harbour("south")\n', "3. join()"])])
    parser = StreamingPlanParser()
    started: list[int] = []

    reply = await Planner(planner).astream_plan(
        [HumanMessage("plan")], parser, lambda task: started.append(task.id), stop=lambda: True
    )

    assert started == [1]
    assert reply is not None
    assert reply.text == '1. harbour("north")\n'


async def test_fail_fast_keeps_timeout_class() -> None:
    @tool
    async def stalled(station: str) -> str:
        """Never answer."""
        await asyncio.Event().wait()
        return station

    compiler = LLMCompiler(
        tools=[stalled], plan='1. stalled("a")', failure_policy="fail_fast", task_timeout=0.05
    )

    with pytest.raises(TaskTimeoutError, match="failed and the failure policy is fail_fast"):
        await compiler.ainvoke(QUESTION)


async def test_skipped_task_names_the_failure() -> None:
    compiler = LLMCompiler(
        tools=[flaky_gauge, *builtin_tools()],
        plan='1. flaky_gauge("c")\n2. math("$1 + 1")\n3. math("5")',
        failure_policy="skip_dependents",
    )

    result = await compiler.arun(QUESTION)

    assert result.report[2].status.value == "skipped"
    assert str(result.report[2].error).startswith("skipped because task 1 (flaky_gauge)")
