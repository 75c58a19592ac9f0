"""LLMCompiler as a LangChain Runnable: batching, config, composition, events and usage.

The models are the real ChatOpenAI and openai client, answered by a scripted
chat-completions endpoint through respx.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import respx
from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import ConfigurableField, RunnableLambda
from langchain_core.tools import tool
from support.openai_fake import (
    JOIN_USAGE,
    PLAN_USAGE,
    POPULATION_PLAN,
    QUESTION,
    chat_model,
    error_reply,
    finish_reply,
    plan_reply,
    population_compiler,
    replan_reply,
    serve,
)

from dragonscale_lc import ModelCallError, PlanError, UsageError
from dragonscale_lc.compiler import DEFAULT_TASK_TIMEOUT, LLMCompiler, TokenPrice
from dragonscale_lc.tools import builtin_tools

SIX_CALLS = "".join(f'{n}. {{tool}}("item {n}")\n' for n in range(1, 7)) + "7. join()\n"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as mock:
        yield mock


# -- batching ----------------------------------------------------------------------------


async def test_abatch_answers_each_question(router: respx.MockRouter) -> None:
    serve(
        router,
        planner=[plan_reply(POPULATION_PLAN), plan_reply(POPULATION_PLAN)],
        joiner=[finish_reply("Japan"), finish_reply("Japan")],
    )

    messages = await population_compiler().abatch([QUESTION, QUESTION])

    assert [message.content for message in messages] == ["Japan", "Japan"]


def test_batch_answers_each_question(router: respx.MockRouter) -> None:
    serve(
        router,
        planner=[plan_reply(POPULATION_PLAN), plan_reply(POPULATION_PLAN)],
        joiner=[finish_reply("Japan"), finish_reply("Japan")],
    )

    messages = population_compiler().batch([QUESTION, {"input": QUESTION}])

    assert [message.content for message in messages] == ["Japan", "Japan"]


# -- max_concurrency ---------------------------------------------------------------------


class Peak:
    """Counts the calls running at once, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


def sync_probe(peak: Peak, barrier: threading.Barrier) -> Any:
    @tool
    def probe(item: str) -> str:
        """Return the item once another call runs alongside."""
        peak.enter()
        try:
            # Two calls must meet here, so the cap of two is really reached.
            barrier.wait(timeout=10)
            return item
        finally:
            peak.leave()

    return probe


def async_probe(peak: Peak, barrier: asyncio.Barrier) -> Any:
    @tool
    async def probe(item: str) -> str:
        """Return the item once another call runs alongside."""
        peak.enter()
        try:
            async with asyncio.timeout(10):
                await barrier.wait()
            return item
        finally:
            peak.leave()

    return probe


@pytest.mark.parametrize(
    "config",
    [{"max_concurrency": 2}, {"configurable": {"max_concurrency": 2}}],
    ids=["config", "configurable"],
)
async def test_max_concurrency_caps_async_tools(config: dict[str, Any]) -> None:
    peak = Peak()
    compiler = LLMCompiler(
        tools=[async_probe(peak, asyncio.Barrier(2))], plan=SIX_CALLS.format(tool="probe")
    )

    message = await compiler.ainvoke("Probe six items", config)  # type: ignore[arg-type]

    assert message.content == "item 6"
    assert peak.peak == 2


@pytest.mark.parametrize(
    "config",
    [{"max_concurrency": 2}, {"configurable": {"max_concurrency": 2}}],
    ids=["config", "configurable"],
)
async def test_max_concurrency_caps_sync_tools(config: dict[str, Any]) -> None:
    peak = Peak()
    compiler = LLMCompiler(
        tools=[sync_probe(peak, threading.Barrier(2))], plan=SIX_CALLS.format(tool="probe")
    )

    message = await compiler.ainvoke("Probe six items", config)  # type: ignore[arg-type]

    assert message.content == "item 6"
    assert peak.peak == 2


async def test_invalid_configurable_setting_rejected() -> None:
    compiler = LLMCompiler(tools=builtin_tools(), plan='1. math("1 + 1")\n2. join()')

    expected = r"invalid configurable\['max_concurrency'\] = 0: .*greater than"
    with pytest.raises(UsageError, match=expected):
        await compiler.ainvoke("One plus one?", {"configurable": {"max_concurrency": 0}})


async def test_configurable_failure_policy_checked() -> None:
    compiler = LLMCompiler(tools=builtin_tools(), plan='1. math("1 + 1")\n2. join()')

    with pytest.raises(UsageError, match=r"invalid configurable\['failure_policy'\] = 'stop'"):
        await compiler.ainvoke("One plus one?", {"configurable": {"failure_policy": "stop"}})


# -- composition ----------------------------------------------------------------------------

BAD_PLAN = '1. population_of("Japan")\n2. join()\n'


async def test_configurable_fields_max_replans(router: respx.MockRouter) -> None:
    server = serve(router, planner=[plan_reply(BAD_PLAN), plan_reply(POPULATION_PLAN)], joiner=[])
    compiler = population_compiler().configurable_fields(
        max_replans=ConfigurableField(id="max_replans", name="Replan limit")
    )

    with pytest.raises(PlanError, match="unknown tool 'population_of'"):
        await compiler.with_config(configurable={"max_replans": 0}).ainvoke(QUESTION)

    assert len(server.bodies("planner")) == 1


async def test_configurable_max_replans_without_declaring_field(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(BAD_PLAN), plan_reply(POPULATION_PLAN)], joiner=[])

    with pytest.raises(PlanError):
        await population_compiler().ainvoke(QUESTION, {"configurable": {"max_replans": 0}})


async def test_with_retry_after_model_failure(router: respx.MockRouter) -> None:
    server = serve(
        router,
        planner=[error_reply(400, "bad request"), plan_reply(POPULATION_PLAN)],
        joiner=[finish_reply("Japan")],
    )
    compiler = population_compiler().with_retry(
        retry_if_exception_type=(ModelCallError,),
        stop_after_attempt=2,
        wait_exponential_jitter=False,
    )

    message = await compiler.ainvoke(QUESTION)

    assert message.content == "Japan"
    assert len(server.bodies("planner")) == 2


async def test_with_fallbacks_to_fixed_plan(router: respx.MockRouter) -> None:
    serve(router, planner=[error_reply(400, "bad request")], joiner=[])
    fallback = LLMCompiler(tools=builtin_tools(), plan='1. math("127080000 / 89708900")\n2. join()')

    message = await population_compiler().with_fallbacks([fallback]).ainvoke(QUESTION)

    assert message.content == "1.4166"


async def test_lcel_chain_with_prompt_and_parser(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    chain = (
        RunnableLambda(lambda country: f"Which has more people, {country} or Vietnam?")
        | population_compiler()
        | StrOutputParser()
    )

    assert await chain.ainvoke("Japan") == "Japan"


# -- events -------------------------------------------------------------------------------


def custom(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "on_custom_event" and e["name"] == name]


def position(events: list[dict[str, Any]], match: Any) -> int:
    return next(index for index, event in enumerate(events) if match(event))


async def test_astream_events_custom_events_in_order(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    events = [event async for event in population_compiler().astream_events(QUESTION)]

    assert len(custom(events, "dragonscale.plan.task_parsed")) == 4
    assert len(custom(events, "dragonscale.task.ready")) == 4
    assert len(custom(events, "dragonscale.task.completed")) == 4
    decided = custom(events, "dragonscale.join.decided")
    assert [event["data"]["decision"]["action"] for event in decided] == ["finish"]
    first_token = position(events, lambda e: e["event"] == "on_chat_model_stream")
    first_parsed = position(events, lambda e: e["name"] == "dragonscale.plan.task_parsed")
    assert first_token < first_parsed
    for task_id in (1, 2, 3, 4):

        def is_task(e: dict[str, Any], name: str, task_id: int = task_id) -> bool:
            return e["name"] == name and e["data"].get("task_id") == task_id

        ready = position(events, lambda e: is_task(e, "dragonscale.task.ready"))
        started = position(events, lambda e: is_task(e, "dragonscale.task.started"))
        tool_start = position(
            events,
            lambda e, task_id=task_id: (
                e["event"] == "on_tool_start"
                and e["metadata"].get("dragonscale_task_id") == task_id
            ),
        )
        tool_end = position(
            events,
            lambda e, task_id=task_id: (
                e["event"] == "on_tool_end" and e["metadata"].get("dragonscale_task_id") == task_id
            ),
        )
        completed = position(events, lambda e: is_task(e, "dragonscale.task.completed"))
        assert ready < started < tool_start < tool_end < completed
    assert position(events, lambda e: e["name"] == "dragonscale.join.decided") < len(events) - 1
    assert events[-1]["event"] == "on_chain_end"


async def test_astream_events_shows_replan(router: respx.MockRouter) -> None:
    second_plan = '6. math("${1} / ${2}")\n7. join()\n'
    serve(
        router,
        planner=[plan_reply(POPULATION_PLAN), plan_reply(second_plan)],
        joiner=[replan_reply("need the ratio again"), finish_reply("1.42")],
    )

    events = [event async for event in population_compiler().astream_events(QUESTION)]

    plans = custom(events, "dragonscale.plan.started")
    assert [event["data"] for event in plans] == [
        {"round": 0, "reason": None},
        {"round": 1, "reason": "need the ratio again"},
    ]
    actions = [e["data"]["decision"]["action"] for e in custom(events, "dragonscale.join.decided")]
    assert actions == ["replan", "finish"]


async def test_astream_events_nested_in_chain(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    chain = RunnableLambda(lambda question: question) | population_compiler() | StrOutputParser()

    events = [event async for event in chain.astream_events(QUESTION)]

    compiler_start = next(
        e for e in events if e["event"] == "on_chain_start" and e["name"] == "LLMCompiler"
    )
    completed = custom(events, "dragonscale.task.completed")
    assert len(completed) == 4
    assert all(event["run_id"] == compiler_start["run_id"] for event in completed)
    assert sorted(e["name"] for e in events if e["event"] == "on_tool_end") == [
        "argmax",
        "country_facts",
        "country_facts",
        "math",
    ]
    assert events[-1]["data"]["output"] == "Japan"


async def test_callbacks_tags_and_metadata_reach_tools(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    config: Any = {"tags": ["survey"], "metadata": {"team": "atlas"}, "run_name": "populations"}

    events = [event async for event in population_compiler().astream_events(QUESTION, config)]

    assert events[0]["name"] == "populations"
    tool_starts = [e for e in events if e["event"] == "on_tool_start"]
    assert len(tool_starts) == 4
    assert all("survey" in e["tags"] and e["metadata"]["team"] == "atlas" for e in tool_starts)


def test_stream_sync_progress_then_answer(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    chunks = list(population_compiler().stream(QUESTION))

    assert chunks[-1].content == "Japan"
    topics = [e["topic"] for c in chunks[:-1] for e in c.additional_kwargs["dragonscale_events"]]
    assert "task.ready" in topics
    assert topics[-1] == "join.decided"


# -- usage and cost ------------------------------------------------------------------------


def usage_calls(message: AIMessage, round_index: int, step: str) -> list[dict[str, Any]]:
    rounds = message.response_metadata["dragonscale"]["rounds"]
    return list(rounds[round_index]["usage"][step])


async def test_usage_per_round_and_cost(router: respx.MockRouter) -> None:
    second_plan = '6. math("${1} / ${2}")\n7. join()\n'
    serve(
        router,
        planner=[plan_reply(POPULATION_PLAN), plan_reply(second_plan)],
        joiner=[replan_reply("need the ratio again"), finish_reply("1.42")],
    )
    compiler = LLMCompiler(
        model=chat_model(), tools=builtin_tools(), prices={"gpt-test": TokenPrice(1.0, 2.0)}
    )

    message = await compiler.ainvoke(QUESTION)

    for round_index in (0, 1):
        [planner] = usage_calls(message, round_index, "planner")
        [joiner] = usage_calls(message, round_index, "joiner")
        assert planner["model"] == "gpt-test"
        assert planner["input_tokens"] == PLAN_USAGE["prompt_tokens"]
        assert joiner["output_tokens"] == JOIN_USAGE["completion_tokens"]
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 2 * (310 + 420)
    assert message.usage_metadata["output_tokens"] == 2 * (42 + 18)
    expected = 2 * ((310 + 420) * 1.0 + (42 + 18) * 2.0) / 1e6
    assert message.response_metadata["dragonscale"]["estimated_cost_usd"] == pytest.approx(expected)


async def test_cost_unknown_without_price(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    message = await population_compiler().ainvoke(QUESTION)

    assert message.response_metadata["dragonscale"]["estimated_cost_usd"] is None
    assert usage_calls(message, 0, "planner")[0]["cost"] is None


async def test_usage_callback_handler_sees_both_models(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    handler = UsageMetadataCallbackHandler()

    message = await population_compiler().ainvoke(QUESTION, {"callbacks": [handler]})

    assert message.usage_metadata is not None
    seen = handler.usage_metadata["gpt-test"]
    assert seen["input_tokens"] == message.usage_metadata["input_tokens"] == 310 + 420
    assert seen["output_tokens"] == message.usage_metadata["output_tokens"] == 42 + 18


def test_tool_calls_time_out_by_default() -> None:
    compiler = LLMCompiler(tools=builtin_tools(), plan='1. math("1 + 1")\n2. join()')

    assert compiler.task_timeout == DEFAULT_TASK_TIMEOUT == 300.0
    assert LLMCompiler(tools=builtin_tools(), plan="", task_timeout=None).task_timeout is None


async def test_failed_last_task_marked_as_error() -> None:
    compiler = LLMCompiler(tools=builtin_tools(), plan='1. math("1/0")\n2. join()')

    message = await compiler.ainvoke("One over zero?")

    summary = message.response_metadata["dragonscale"]
    assert summary["error"] == message.content
    assert summary["error"].startswith("ERROR in task 1 (math):")


async def test_answer_of_non_json_output_is_its_text() -> None:
    def weekdays() -> set[str]:
        """Return the names of two weekdays."""
        return {"Monday"}

    compiler = LLMCompiler(tools=[weekdays], plan="1. weekdays()\n2. join()")

    message = await compiler.ainvoke("Which weekdays?")

    assert message.content == "{'Monday'}"
    assert message.response_metadata["dragonscale"]["error"] is None
