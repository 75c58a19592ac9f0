"""End-to-end tests of LLMCompiler through the real ChatOpenAI and openai client.

respx intercepts the client's HTTP requests, so nothing leaves the process:
the base URL points at a loopback port no test server listens on, and an
unmocked request fails instead of reaching a network. Streamed requests
(``stream: true``) are the planner's and get server-sent events; requests
that carry tools are the joiner's and get a ``join_decision`` tool call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import operator
import re
from collections.abc import AsyncIterator, Iterator, Sequence
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
from langchain_openai import ChatOpenAI

from dragonscale_lc import ModelCallError
from dragonscale_lc.compiler import LLMCompiler
from dragonscale_lc.tools import builtin_tools

BASE_URL = "http://127.0.0.1:9/v1"
COMPLETIONS_URL = f"{BASE_URL}/chat/completions"

PLAN_USAGE = {"prompt_tokens": 310, "completion_tokens": 42, "total_tokens": 352}
JOIN_USAGE = {"prompt_tokens": 420, "completion_tokens": 18, "total_tokens": 438}

QUESTION = "Which has more people, Japan or Vietnam, and by what factor?"
JAPAN, VIETNAM = 127080000, 89708900  # the countryinfo figures the tool returns

POPULATION_PLAN = """\
1. country_facts("Japan")
2. country_facts("Vietnam")
Thought: Both populations are needed; compare them and take the ratio.
3. argmax(["Japan", "Vietnam"], [$1, $2])
4. math("${1} / ${2}")
5. join()
"""


# Helpers that build the OpenAI wire format.


def split_at(text: str, offsets: Sequence[int]) -> list[str]:
    """Cut ``text`` at each offset, in increasing order, into consecutive pieces."""
    assert list(offsets) == sorted(offsets), f"offsets must increase: {offsets}"
    bounds = [0, *offsets, len(text)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


def chunk_json(content: str | None = None, **extra: Any) -> dict[str, Any]:
    """Return one ``chat.completion.chunk``, with ``usage`` or ``finish_reason`` from ``extra``."""
    delta = {} if content is None else {"content": content}
    finish = extra.pop("finish_reason", None)
    choices = [] if "usage" in extra else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-plan",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": choices,
        **extra,
    }


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def sse_events(pieces: Sequence[str], usage: dict[str, int] = PLAN_USAGE) -> list[bytes]:
    """Return a streamed reply: a role chunk, one content chunk per piece, then usage."""
    first = chunk_json()
    first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
    events = [sse_event(first), *(sse_event(chunk_json(piece)) for piece in pieces)]
    events.append(sse_event(chunk_json(finish_reason="stop")))
    events.append(sse_event(chunk_json(usage=usage)))
    events.append(sse_event("[DONE]"))
    return events


def plan_reply(plan: str, offsets: Sequence[int] = ()) -> httpx.Response:
    """Return the planner's streamed reply, its content cut at ``offsets``."""
    body = b"".join(sse_events(split_at(plan, offsets)))
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def decision_reply(usage: dict[str, int] = JOIN_USAGE, **decision: str) -> httpx.Response:
    """Return the joiner's non-streamed reply: one ``join_decision`` tool call."""
    call = {
        "id": "call_join",
        "type": "function",
        "function": {"name": "join_decision", "arguments": json.dumps(decision)},
    }
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    body = {
        "id": "chatcmpl-join",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": usage,
    }
    return httpx.Response(200, json=body)


def finish_reply(answer: str) -> httpx.Response:
    return decision_reply(thought="The observations answer it.", action="finish", answer=answer)


def replan_reply(reason: str) -> httpx.Response:
    return decision_reply(thought="Something is missing.", action="replan", replan_reason=reason)


def streamed(reply: httpx.Response) -> httpx.Response:
    """Return a non-streamed tool-call reply as the SSE stream a streamed request gets."""
    completion = reply.json()
    message = completion["choices"][0]["message"]
    calls = [{"index": index, **call} for index, call in enumerate(message["tool_calls"])]
    first = chunk_json()
    first["choices"][0]["delta"] = {"role": "assistant", "content": None, "tool_calls": calls}
    events = [
        sse_event(first),
        sse_event(chunk_json(finish_reason="tool_calls")),
        sse_event(chunk_json(usage=completion["usage"])),
        sse_event("[DONE]"),
    ]
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=b"".join(events)
    )


def error_reply(status: int, message: str, kind: str = "server_error") -> httpx.Response:
    # retry-after-ms keeps the openai client's backoff at one millisecond.
    body = {"error": {"message": message, "type": kind, "code": None}}
    return httpx.Response(status, headers={"retry-after-ms": "1"}, json=body)


class FakeOpenAI:
    """Fake chat-completions endpoint that replies from a planner script and a joiner script.

    A request with tools comes from the joiner. Any other streamed request
    comes from the planner.
    """

    def __init__(self, planner: Sequence[httpx.Response], joiner: Sequence[httpx.Response]):
        self.scripts = {"planner": list(planner), "joiner": list(joiner)}
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "tools" in body:
            role = "joiner"
        elif body.get("stream"):
            role = "planner"
        else:
            role = "unknown"
        self.requests.append((role, body))
        script = self.scripts.get(role)
        if not script:
            # A 400 is not retried, so an unexpected request fails the run at once.
            return error_reply(400, f"the test scripted no further {role} reply")
        reply = script.pop(0)
        # Under astream_events LangChain streams the joiner's call too, so it gets SSE.
        if role == "joiner" and body.get("stream") and reply.is_success:
            return streamed(reply)
        return reply

    def bodies(self, role: str) -> list[dict[str, Any]]:
        return [body for kind, body in self.requests if kind == role]

    def prompt(self, role: str, index: int) -> str:
        """Return the text of every message of one request, joined."""
        return "\n".join(message["content"] for message in self.bodies(role)[index]["messages"])


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as mock:
        yield mock


def serve(router: respx.MockRouter, planner: Sequence[Any], joiner: Sequence[Any]) -> FakeOpenAI:
    server = FakeOpenAI(planner, joiner)
    router.post(COMPLETIONS_URL).mock(side_effect=server)
    return server


def chat_model(*, max_retries: int = 0) -> ChatOpenAI:
    # ChatOpenAI turns stream_usage on by default only for OpenAI's own base
    # URL, and the planner's token usage arrives only when it is on.
    return ChatOpenAI(
        model="gpt-test",
        base_url=BASE_URL,
        api_key="test-key",
        stream_usage=True,
        max_retries=max_retries,
    )


def population_compiler(**options: Any) -> LLMCompiler:
    return LLMCompiler(model=chat_model(**options), tools=builtin_tools())


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
