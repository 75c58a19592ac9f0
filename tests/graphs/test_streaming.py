"""Streaming the prebuilt graph: updates, model tokens, progress events and astream_events."""

from __future__ import annotations

from typing import Any

import respx
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import BaseTool
from support.openai_fake import (
    POPULATION_PLAN,
    QUESTION,
    chat_model,
    finish_reply,
    plan_reply,
    serve,
)

from dragonscale_lc.graphs import create_llm_compiler_graph
from dragonscale_lc.tools import builtin_tools

INPUT = {"messages": [("user", QUESTION)]}


async def test_stream_updates_per_node(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    updates = [chunk async for chunk in graph.astream(INPUT, stream_mode="updates")]

    assert [next(iter(update)) for update in updates] == ["plan_and_execute", "join"]
    executed = updates[0]["plan_and_execute"]
    assert [task["status"] for task in executed["compiler"]["rounds"][0]["tasks"]] == ["done"] * 4
    assert len(executed["messages"]) == 5  # the tool calls and four results
    joined = updates[1]["join"]
    assert joined["compiler"]["rounds"][0]["decision"]["action"] == "finish"
    assert joined["messages"][-1].content == "Japan"


async def test_stream_messages_planner_and_joiner(router: respx.MockRouter) -> None:
    offsets = [POPULATION_PLAN.index("2."), POPULATION_PLAN.index("3.")]
    serve(router, planner=[plan_reply(POPULATION_PLAN, offsets)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    items = [item async for item in graph.astream(INPUT, stream_mode="messages")]

    planner = [
        chunk
        for chunk, metadata in items
        if metadata["langgraph_node"] == "plan_and_execute" and isinstance(chunk, AIMessageChunk)
    ]
    assert "".join(chunk.text for chunk in planner) == POPULATION_PLAN
    assert len([chunk for chunk in planner if chunk.text]) == 3
    joiner = [
        chunk
        for chunk, metadata in items
        if metadata["langgraph_node"] == "join" and isinstance(chunk, AIMessageChunk)
    ]
    names = [call["name"] for chunk in joiner for call in chunk.tool_call_chunks]
    assert "join_decision" in names


async def test_stream_custom_progress_events(
    router: respx.MockRouter, tools: list[BaseTool]
) -> None:
    plan = '1. population("Japan")\n2. population("Atlantis")\njoin()\n'
    serve(router, planner=[plan_reply(plan)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), tools)

    events = [event async for event in graph.astream(INPUT, stream_mode="custom")]

    topics = [event["topic"] for event in events]
    assert topics.count("plan.task_parsed") == 2
    assert topics.count("task.started") == 2
    assert topics[-2:] == ["plan.completed", "join.decided"]
    by_topic = {event["topic"]: event for event in events}
    assert by_topic["task.completed"]["task_id"] == 1
    assert by_topic["task.completed"]["output"] == 127080000
    assert by_topic["task.failed"]["task_id"] == 2
    assert by_topic["task.failed"]["error"] == "ValueError: unknown country 'Atlantis'"
    assert by_topic["plan.task_parsed"]["call"] == '2. population("Atlantis")'
    assert by_topic["join.decided"]["decision"] == {
        "action": "finish",
        "answer": "Japan",
        "thought": "The observations answer it.",
    }


async def test_astream_events_models_and_tools(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    events: list[dict[str, Any]] = [
        event async for event in graph.astream_events(INPUT, version="v2")
    ]

    planner_tokens = [
        event["data"]["chunk"].text
        for event in events
        if event["event"] == "on_chat_model_stream"
        and event["metadata"]["langgraph_node"] == "plan_and_execute"
    ]
    assert "".join(planner_tokens) == POPULATION_PLAN
    starts = [event for event in events if event["event"] == "on_tool_start"]
    ends = [event for event in events if event["event"] == "on_tool_end"]
    assert sorted(event["metadata"]["dragonscale_task_id"] for event in starts) == [1, 2, 3, 4]
    assert {event["metadata"]["dragonscale_task_id"]: event["name"] for event in ends} == {
        1: "country_facts",
        2: "country_facts",
        3: "argmax",
        4: "math",
    }
    joiner_ends = [
        event
        for event in events
        if event["event"] == "on_chat_model_end" and event["metadata"]["langgraph_node"] == "join"
    ]
    assert len(joiner_ends) == 1
    assert joiner_ends[0]["data"]["output"].tool_calls[0]["name"] == "join_decision"


async def test_astream_events_carry_runtime_custom_events(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    events = [event async for event in graph.astream_events(INPUT, version="v2")]

    custom = [event for event in events if event["event"] == "on_custom_event"]
    completed = [e for e in custom if e["name"] == "dragonscale.task.completed"]
    assert sorted(event["data"]["task_id"] for event in completed) == [1, 2, 3, 4]
    assert all(event["metadata"]["langgraph_node"] == "plan_and_execute" for event in completed)
    decided = [e for e in custom if e["name"] == "dragonscale.join.decided"]
    assert [event["metadata"]["langgraph_node"] for event in decided] == ["join"]
    for task_id in (1, 2, 3, 4):
        started = next(
            index
            for index, event in enumerate(events)
            if event["name"] == "dragonscale.task.started" and event["data"]["task_id"] == task_id
        )
        tool_start = next(
            index
            for index, event in enumerate(events)
            if event["event"] == "on_tool_start"
            and event["metadata"]["dragonscale_task_id"] == task_id
        )
        assert started < tool_start
