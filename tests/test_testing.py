"""ScriptedChatModel and SimulatedChatModel: replies, streaming, timing, usage and errors."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from pydantic import ValidationError

from dragonscale_lc import LLMCompiler, UsageError, builtin_tools
from dragonscale_lc.testing import ScriptedChatModel, SimulatedChatModel

PLAN = """\
1. country_facts("Japan")
2. country_facts("Vietnam")
3. argmax(["Japan", "Vietnam"], [$1, $2])
4. join()
"""


def test_invoke_returns_replies_in_order() -> None:
    model = ScriptedChatModel(replies=["first", "second"])

    texts = [model.invoke("hi").text, model.invoke("hi").text]

    assert texts == ["first", "second"]
    assert model.calls == 2


async def test_astream_chunks_join_to_reply() -> None:
    text = '1. math("6 * 7")\n  2. join()\n'
    model = ScriptedChatModel(replies=[text])

    chunks = [chunk async for chunk in model.astream("hi")]

    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    assert [chunk.text for chunk in chunks if chunk.text] == [
        "1. ",
        'math("6 ',
        "* ",
        '7")\n  ',
        "2. ",
        "join()\n",
    ]
    assert "".join(chunk.text for chunk in chunks) == text


def test_stream_chunks_join_to_reply() -> None:
    model = ScriptedChatModel(replies=["a b  c\n"])

    # LangChain ends every stream with an empty chunk that marks the end.
    pieces = [chunk.text for chunk in model.stream("hi") if chunk.text]

    assert pieces == ["a ", "b  ", "c\n"]


async def test_astream_waits_chunk_delay() -> None:
    model = ScriptedChatModel(replies=["one two three four"], chunk_delay=0.01)

    started = time.perf_counter()
    pieces = [chunk.text async for chunk in model.astream("hi") if chunk.text]
    elapsed = time.perf_counter() - started

    assert len(pieces) == 4
    assert elapsed >= 0.04


def test_callable_reply_receives_prompt() -> None:
    seen: list[list[BaseMessage]] = []

    def echo(messages: list[BaseMessage]) -> str:
        seen.append(messages)
        return f"you said {messages[-1].text}"

    model = ScriptedChatModel(replies=[echo])

    reply = model.invoke([HumanMessage("hello")])

    assert reply.text == "you said hello"
    assert [message.text for message in seen[0]] == ["hello"]


def test_repeat_starts_script_over() -> None:
    model = ScriptedChatModel(replies=["a", "b"], repeat=True)

    texts = [model.invoke("hi").text for _ in range(5)]

    assert texts == ["a", "b", "a", "b", "a"]


def test_exhausted_script_raises() -> None:
    model = ScriptedChatModel(replies=["only"])
    model.invoke("hi")

    message = (
        "ScriptedChatModel has no reply left for call 2: the script has 1 replies. "
        "Add replies or pass repeat=True"
    )
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        model.invoke("hi")


def test_callable_returning_non_text_raises() -> None:
    model = ScriptedChatModel(replies=[lambda messages: 42])  # type: ignore[list-item,return-value]

    with pytest.raises(UsageError, match=r"^reply 1 of the ScriptedChatModel script returned int"):
        model.invoke("hi")


def test_empty_script_rejected() -> None:
    with pytest.raises(ValidationError, match="replies"):
        ScriptedChatModel(replies=[])


async def test_compiler_plans_and_joins_with_script() -> None:
    model = ScriptedChatModel(
        replies=[PLAN, "Thought: Task 3 picked it.\nAction: Finish(Japan)"], chunk_delay=0.001
    )
    compiler = LLMCompiler(model=model, tools=builtin_tools())

    result = await compiler.arun("Which has more people, Japan or Vietnam?")

    assert result.answer == "Japan"
    assert result.report[3].output == "Japan"
    assert model.calls == 2


async def test_compiler_reuses_repeating_script() -> None:
    model = ScriptedChatModel(
        replies=['1. math("2 + 2")\n2. join()', "Action: Finish(4)"], repeat=True
    )
    compiler = LLMCompiler(model=model, tools=builtin_tools())

    answers = [(await compiler.ainvoke("What is 2 + 2?")).text for _ in range(2)]

    assert answers == ["4", "4"]
    assert model.calls == 4


# SimulatedChatModel


async def test_simulated_astream_waits_first_token_then_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float) -> None:
        delays.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    model = SimulatedChatModel(
        replies=["abcdefghij"], time_to_first_token=0.25, tokens_per_second=10.0
    )

    pieces = [chunk.text async for chunk in model.astream("hi") if chunk.text]

    assert pieces == ["abcd", "efgh", "ij"]
    assert delays == [0.25, 0.1, 0.1]


async def test_simulated_reports_usage_on_last_chunk() -> None:
    model = SimulatedChatModel(replies=["abcdefghij"], time_to_first_token=0.0)

    chunks = [chunk async for chunk in model.astream("12345678")]

    with_usage = [chunk.usage_metadata for chunk in chunks if chunk.usage_metadata]
    assert with_usage == [{"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}]


async def test_simulated_ainvoke_returns_whole_reply() -> None:
    model = SimulatedChatModel(
        replies=[lambda messages: messages[-1].text.upper()],
        repeat=True,
        time_to_first_token=0.0,
        tokens_per_second=1e6,
    )

    reply = await model.ainvoke("six times seven")

    assert reply.text == "SIX TIMES SEVEN"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 4
    assert model.calls == 1


def test_simulated_invoke_streams_sync() -> None:
    model = SimulatedChatModel(replies=[""], time_to_first_token=0.0)

    reply = model.invoke("hi")

    assert reply.text == ""
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 1


def test_simulated_rejects_chunk_delay() -> None:
    with pytest.raises(ValidationError, match="ignores chunk_delay"):
        SimulatedChatModel(replies=["x"], chunk_delay=0.1)


def test_simulated_compiler_uses_text_joiner() -> None:
    model = SimulatedChatModel(
        replies=[PLAN, "Thought: done.\nAction: Finish(Japan)"],
        time_to_first_token=0.0,
        tokens_per_second=1e6,
    )

    message = LLMCompiler(model=model, tools=builtin_tools()).invoke("Japan or Vietnam?")

    assert message.content == "Japan"
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] > 0
