"""End-to-end tests of LLMCompiler through the real ChatOpenAI and openai client.

The fake OpenAI endpoint in ``support.openai_fake`` answers every request:
streamed plans for the planner, ``join_decision`` tool calls for the joiner.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import re
from collections.abc import AsyncIterator, Iterator
from functools import reduce
from typing import Any

import httpx
import openai
import pytest
import respx
from langchain_core.exceptions import ModelAPIError
from langchain_core.messages import AIMessageChunk
from langchain_core.output_parsers import StrOutputParser
from langchain_core.tools import StructuredTool
from support.openai_fake import (
    JAPAN,
    POPULATION_PLAN,
    QUESTION,
    VIETNAM,
    chat_model,
    error_reply,
    finish_reply,
    plan_reply,
    population_compiler,
    replan_reply,
    serve,
    split_at,
    sse_events,
)

from dragonscale_lc import ModelCallError
from dragonscale_lc.compiler import LLMCompiler


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as mock:
        yield mock


def awkward_offsets(plan: str) -> list[int]:
    """Cut points inside a token, a string, a reference and between ``)`` and newline."""
    return [
        plan.index("try_facts"),  # 'coun' | 'try_facts'
        plan.index('nam")'),  # '"Viet' | 'nam"'
        plan.index("ought:"),  # 'Th' | 'ought:'
        plan.index("$1") + 1,  # '[$' | '1, $2]'
        plan.index("${1}") + 1,  # '"$' | '{1}'
        plan.index("${2}") + 2,  # '${' | '2}'
        plan.index("\n5. join"),  # '${2}")' | '\n5. join()'
    ]


def statuses(message: Any) -> list[tuple[int, str, str]]:
    return [
        (task["id"], task["tool"], task["status"])
        for task in message.response_metadata["dragonscale"]["tasks"]
    ]


def outputs(message: Any) -> list[Any]:
    return [task["output"] for task in message.response_metadata["dragonscale"]["tasks"]]


# Planner streaming, joiner tool call, usage.


async def test_plan_stream_split_awkwardly(router: respx.MockRouter) -> None:
    server = serve(
        router,
        planner=[plan_reply(POPULATION_PLAN, awkward_offsets(POPULATION_PLAN))],
        joiner=[finish_reply("Japan, about 1.42 times as many people")],
    )

    message = await population_compiler().ainvoke(QUESTION)

    assert message.content == "Japan, about 1.42 times as many people"
    assert statuses(message) == [
        (1, "country_facts", "done"),
        (2, "country_facts", "done"),
        (3, "argmax", "done"),
        (4, "math", "done"),
    ]
    assert outputs(message) == [JAPAN, VIETNAM, "Japan", pytest.approx(JAPAN / VIETNAM)]
    assert [role for role, _ in server.requests] == ["planner", "joiner"]


async def test_plan_stream_requests_usage(router: respx.MockRouter) -> None:
    server = serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    message = await population_compiler().ainvoke(QUESTION)

    (planner,) = server.bodies("planner")
    assert planner["stream"] is True
    assert planner["stream_options"] == {"include_usage": True}
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 310 + 420
    assert message.usage_metadata["output_tokens"] == 42 + 18
    assert message.usage_metadata["total_tokens"] == 352 + 438
    assert message.response_metadata["dragonscale"]["usage"]["total_tokens"] == 790


async def test_joiner_request_binds_decision_tool(router: respx.MockRouter) -> None:
    server = serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    await population_compiler().ainvoke(QUESTION)

    (joiner,) = server.bodies("joiner")
    assert not joiner.get("stream")
    assert joiner["tool_choice"] == {"type": "function", "function": {"name": "join_decision"}}
    (tool,) = joiner["tools"]
    assert tool["function"]["name"] == "join_decision"
    assert {"thought", "action", "answer", "replan_reason"} <= set(
        tool["function"]["parameters"]["properties"]
    )
    scratchpad = server.prompt("joiner", 0)
    assert f"Question: {QUESTION}" in scratchpad
    assert f'1. country_facts("Japan")\nObservation: {JAPAN}' in scratchpad
    assert '3. argmax(["Japan", "Vietnam"], [$1, $2])\nObservation: Japan' in scratchpad
    assert "Observation: 1.4166" in scratchpad


# Concurrency: tools start while the plan streams.


class GatedStream(httpx.AsyncByteStream):
    """An SSE body that holds back everything after ``head`` until ``gate`` is set."""

    def __init__(self, head: list[bytes], tail: list[bytes], gate: asyncio.Event, log: list[str]):
        self.head, self.tail, self.gate, self.log = head, tail, gate, log

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.head:
            yield event
        self.log.append("stream paused")
        await self.gate.wait()
        self.log.append("stream resumed")
        for event in self.tail:
            yield event


async def test_first_tool_starts_mid_stream(router: respx.MockRouter) -> None:
    log: list[str] = []
    started = asyncio.Event()
    counter = itertools.count(1)

    async def count(label: str) -> int:
        """Count calls and return how many there were."""
        log.append(f"count({label}) started")
        started.set()
        return next(counter)

    plan = '1. count("a")\n2. count("b")\n3. join()'
    # The head is the role chunk and the first line with its newline. The rest
    # waits for the gate.
    events = sse_events(split_at(plan, [plan.index("2.")]))
    stream = GatedStream(events[:2], events[2:], started, log)
    serve(
        router,
        planner=[httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)],
        joiner=[finish_reply("2")],
    )
    tool = StructuredTool.from_function(coroutine=count, name="count")
    compiler = LLMCompiler(model=chat_model(), tools=[tool])

    # If the first task waited for the end of the plan, the stream would wait
    # for that task forever, so the timeout turns the deadlock into a failure.
    message = await asyncio.wait_for(compiler.ainvoke("Count twice."), 10)

    assert log == ["stream paused", "count(a) started", "stream resumed", "count(b) started"]
    assert outputs(message) == [1, 2]
    assert message.content == "2"


# Retries and failures of the HTTP API.


async def test_rate_limit_retried(router: respx.MockRouter) -> None:
    limited = "Rate limit reached for gpt-test. Please try again in 1ms."
    server = serve(
        router,
        planner=[error_reply(429, limited, "requests"), plan_reply(POPULATION_PLAN)],
        joiner=[error_reply(429, limited, "requests"), finish_reply("Japan")],
    )

    message = await population_compiler(max_retries=2).ainvoke(QUESTION)

    assert message.content == "Japan"
    assert [role for role, _ in server.requests] == ["planner", "planner", "joiner", "joiner"]
    assert {task["status"] for task in message.response_metadata["dragonscale"]["tasks"]} == {
        "done"
    }


SERVER_FAILURE = "The server had an error while processing your request."
SERVER_FAILURE_MESSAGE = re.escape(
    f"Error code: 500 - {{'error': {{'message': '{SERVER_FAILURE}', 'type': 'server_error'"
)


async def test_server_error_persists_on_planner(router: respx.MockRouter) -> None:
    server = serve(router, planner=[error_reply(500, SERVER_FAILURE)] * 2, joiner=[])

    # The compiler names the failing step; the client's error is the cause.
    # langchain-openai raises a class that is both openai.InternalServerError
    # and LangChain's provider-neutral ModelAPIError.
    with pytest.raises(
        ModelCallError, match="the planner model 'gpt-test' failed in round 0"
    ) as caught:
        await asyncio.wait_for(population_compiler(max_retries=1).ainvoke(QUESTION), 10)

    assert caught.value.step == "planner"
    assert re.search(SERVER_FAILURE_MESSAGE, str(caught.value))
    cause = caught.value.__cause__
    assert isinstance(cause, ModelAPIError)
    assert isinstance(cause, openai.InternalServerError)
    assert cause.status_code == 500
    assert [role for role, _ in server.requests] == ["planner", "planner"]


async def test_server_error_persists_on_joiner(router: respx.MockRouter) -> None:
    server = serve(
        router, planner=[plan_reply(POPULATION_PLAN)], joiner=[error_reply(500, SERVER_FAILURE)] * 2
    )

    # Only a joiner reply that cannot be read falls back to a direct join. An
    # API failure raises, and the error keeps the tasks' results.
    with pytest.raises(
        ModelCallError, match="the joiner model 'gpt-test' failed in round 0"
    ) as caught:
        await asyncio.wait_for(population_compiler(max_retries=1).ainvoke(QUESTION), 10)

    assert isinstance(caught.value.__cause__, openai.InternalServerError)
    assert {record.status.value for record in caught.value.report} == {"done"}

    assert [role for role, _ in server.requests] == ["planner", "joiner", "joiner"]


# Replanning.

AREA_PLAN = """\
1. country_facts("Japan")
2. country_facts("Vietnam", field="area")
3. join()
"""

RATIO_PLAN = """\
Thought: Task 2 returned an area; look up the population instead.
3. country_facts("Vietnam")
4. math("$1 / $3")
5. join()
"""

REPLAN_REASON = "task 2 returned Vietnam's area, but the ratio needs its population"


async def test_replan_continues_numbering(router: respx.MockRouter) -> None:
    server = serve(
        router,
        planner=[plan_reply(AREA_PLAN), plan_reply(RATIO_PLAN, [RATIO_PLAN.index("$3") + 1])],
        joiner=[replan_reply(REPLAN_REASON), finish_reply("1.42")],
    )

    message = await population_compiler().ainvoke("How many Japanese per Vietnamese?")

    replan_prompt = server.prompt("planner", 1)
    assert f'1. country_facts("Japan")\nObservation: {JAPAN}' in replan_prompt
    assert '2. country_facts("Vietnam", field="area")\nObservation: 331212' in replan_prompt
    assert f"Reason for a new plan: {REPLAN_REASON}" in replan_prompt
    assert replan_prompt.count(REPLAN_REASON) == 1
    assert "Number its calls from 3 on." in replan_prompt
    assert message.content == "1.42"
    assert message.response_metadata["dragonscale"]["replans"] == 1
    assert statuses(message) == [
        (1, "country_facts", "done"),
        (2, "country_facts", "done"),
        (3, "country_facts", "done"),
        (4, "math", "done"),
    ]
    assert outputs(message)[2:] == [VIETNAM, pytest.approx(JAPAN / VIETNAM)]
    # The thought before task 3 appears once, above task 3, not again at the end.
    second_scratchpad = server.prompt("joiner", 1)
    plan_2 = second_scratchpad[second_scratchpad.index("Plan 2:") :]
    assert plan_2.splitlines()[:3] == [
        "Plan 2:",
        "Thought: Task 2 returned an area; look up the population instead.",
        '3. country_facts("Vietnam")',
    ]
    assert plan_2.count("Thought:") == 1
    assert plan_2.endswith("Observation: 1.4166")


# LangChain composition.


async def test_pipe_str_output_parser_ainvoke(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    answer = await (population_compiler() | StrOutputParser()).ainvoke(QUESTION)

    assert answer == "Japan"


async def test_astream_progress_then_answer(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    chunks = [chunk async for chunk in population_compiler().astream(QUESTION)]

    *progress, last = chunks
    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert all(chunk.content == "" for chunk in progress)
    events = [
        event for chunk in progress for event in chunk.additional_kwargs["dragonscale_events"]
    ]
    topics = [event["topic"] for event in events]
    assert topics.count("plan.task_parsed") == 4
    assert topics.count("task.completed") == 4
    assert topics[-2:] == ["plan.completed", "join.decided"]
    assert events[-1]["decision"]["action"] == "finish"
    assert last.content == "Japan"
    assert reduce(operator.add, chunks).content == "Japan"


async def test_pipe_str_output_parser_astream(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    pieces = [
        piece async for piece in (population_compiler() | StrOutputParser()).astream(QUESTION)
    ]

    assert "".join(pieces) == "Japan"
    assert pieces[-1] == "Japan"


async def test_astream_events_tools_and_models(router: respx.MockRouter) -> None:
    server = serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    events = [event async for event in population_compiler().astream_events(QUESTION)]

    tools = sorted(event["name"] for event in events if event["event"] == "on_tool_end")
    assert tools == ["argmax", "country_facts", "country_facts", "math"]
    model_ends = [event for event in events if event["event"] == "on_chat_model_end"]
    assert len(model_ends) == 2
    assert [body["stream"] for _, body in server.requests] == [True, True]
    assert events[-1]["event"] == "on_chain_end"
    assert events[-1]["data"]["output"].content == "Japan"


def test_invoke_sync(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])

    message = population_compiler().invoke(QUESTION)

    assert message.content == "Japan"
    assert outputs(message)[:3] == [JAPAN, VIETNAM, "Japan"]
