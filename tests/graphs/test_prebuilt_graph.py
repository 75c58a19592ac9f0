"""The prebuilt graph: answers, state, messages, replans and the recursion limit."""

from __future__ import annotations

import collections
import json

import pytest
import respx
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver
from support.openai_fake import (
    JAPAN,
    POPULATION_PLAN,
    QUESTION,
    VIETNAM,
    chat_model,
    finish_reply,
    plan_reply,
    replan_reply,
    serve,
)

from dragonscale_lc import ConfigurationError, UsageError
from dragonscale_lc.graphs import create_llm_compiler_graph, recursion_limit
from dragonscale_lc.tools import builtin_tools

LOOKUP_PLAN = """\
1. population("Japan")
2. population("Vietnam")
join()
"""

RATIO_PLAN = """\
Thought: Both populations are known; divide them.
3. ratio($1, $2)
join()
"""


async def test_graph_answers_question(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    state = await graph.ainvoke({"messages": [("user", QUESTION)]})

    answer = state["messages"][-1]
    assert isinstance(answer, AIMessage)
    assert answer.content == "Japan"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["total_tokens"] == 352 + 438
    (round_,) = state["compiler"]["rounds"]
    assert [task["status"] for task in round_["tasks"]] == ["done"] * 4
    assert [task["output"] for task in round_["tasks"]][:3] == [JAPAN, VIETNAM, "Japan"]
    assert round_["decision"]["action"] == "finish"
    assert state["compiler"]["answer"] == "Japan"


async def test_state_is_json(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    state = await graph.ainvoke({"messages": [("user", QUESTION)]})

    progress = state["compiler"]
    assert json.loads(json.dumps(progress)) == progress
    task = progress["rounds"][0]["tasks"][3]
    assert task["call"] == 'math("$1 / $2")'
    assert task["args"] == {"expression": f"{JAPAN} / {VIETNAM}"}
    assert task["observation"] == "1.4166"


async def test_messages_pair_calls_and_results(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    state = await graph.ainvoke({"messages": [("user", QUESTION)]})

    human, calls, *results, answer = state["messages"]
    assert isinstance(human, HumanMessage)
    assert isinstance(calls, AIMessage)
    assert [call["name"] for call in calls.tool_calls] == [
        "country_facts",
        "country_facts",
        "argmax",
        "math",
    ]
    assert calls.tool_calls[2]["args"] == {
        "labels": ["Japan", "Vietnam"],
        "values": [JAPAN, VIETNAM],
    }
    assert all(isinstance(result, ToolMessage) for result in results)
    assert [result.tool_call_id for result in results] == [call["id"] for call in calls.tool_calls]
    assert [result.content for result in results] == [str(JAPAN), str(VIETNAM), "Japan", "1.4166"]
    assert answer.content == "Japan"


async def test_failed_task_becomes_error_message(
    router: respx.MockRouter, tools: list[BaseTool]
) -> None:
    plan = '1. population("Atlantis")\njoin()\n'
    serve(router, planner=[plan_reply(plan)], joiner=[finish_reply("Unknown")])
    graph = create_llm_compiler_graph(chat_model(), tools)

    state = await graph.ainvoke({"messages": [("user", "How many live in Atlantis?")]})

    (task,) = state["compiler"]["rounds"][0]["tasks"]
    assert task["status"] == "failed"
    assert task["error"] == {"type": "ValueError", "message": "unknown country 'Atlantis'"}
    result = state["messages"][2]
    assert isinstance(result, ToolMessage)
    assert result.status == "error"
    assert result.content == "ERROR in task 1 (population): ValueError: unknown country 'Atlantis'"


async def test_replan_reuses_earlier_outputs(
    router: respx.MockRouter, tools: list[BaseTool], calls: collections.Counter[str]
) -> None:
    server = serve(
        router,
        planner=[plan_reply(LOOKUP_PLAN), plan_reply(RATIO_PLAN)],
        joiner=[replan_reply("the ratio is missing"), finish_reply("1.42")],
    )
    graph = create_llm_compiler_graph(chat_model(), tools)

    state = await graph.ainvoke({"messages": [("user", "How many Japanese per Vietnamese?")]})

    assert state["messages"][-1].content == "1.42"
    assert calls == {
        "population(Japan)": 1,
        "population(Vietnam)": 1,
        f"ratio({JAPAN}.0, {VIETNAM}.0)": 1,
    }
    replan_prompt = server.prompt("planner", 1)
    assert f'1. population("Japan")\nObservation: {JAPAN}' in replan_prompt
    assert "Reason for a new plan: the ratio is missing" in replan_prompt
    first, second = state["compiler"]["rounds"]
    assert first["decision"] == {
        "action": "replan",
        "reason": "the ratio is missing",
        "thought": "Something is missing.",
    }
    assert second["tasks"][0]["args"] == {"a": JAPAN, "b": VIETNAM}
    assert second["tasks"][0]["thought"] == "Both populations are known; divide them."
    # One AIMessage with tool calls per round, each followed by its results.
    kinds = [type(message).__name__ for message in state["messages"]]
    assert kinds == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]


async def test_replan_limit_ends_with_answer(
    router: respx.MockRouter, tools: list[BaseTool]
) -> None:
    # The joiner asks for a replan every time; on the last allowed round the
    # compiler answers with the reason instead, inside the recursion limit.
    serve(
        router,
        planner=[plan_reply(LOOKUP_PLAN), plan_reply(RATIO_PLAN)],
        joiner=[replan_reply("the ratio is missing"), replan_reply("still unsure")],
    )
    graph = create_llm_compiler_graph(chat_model(), tools, max_replans=1)

    state = await graph.ainvoke({"messages": [("user", "How many Japanese per Vietnamese?")]})

    assert graph.config is not None
    assert graph.config["recursion_limit"] == recursion_limit(1) == 7
    assert state["messages"][-1].content == "still unsure"
    assert len(state["compiler"]["rounds"]) == 2
    assert state["compiler"]["rounds"][-1]["decision"]["action"] == "finish"


async def test_new_message_starts_new_question(
    router: respx.MockRouter, tools: list[BaseTool], calls: collections.Counter[str]
) -> None:
    serve(
        router,
        planner=[plan_reply(LOOKUP_PLAN), plan_reply('1. population("Japan")\njoin()\n')],
        joiner=[finish_reply("Japan"), finish_reply(str(JAPAN))],
    )
    graph = create_llm_compiler_graph(chat_model(), tools, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "conversation"}}

    first = await graph.ainvoke({"messages": [("user", "Which is bigger?")]}, config)
    second = await graph.ainvoke({"messages": [("user", "How many live in Japan?")]}, config)

    assert first["messages"][-1].content == "Japan"
    assert second["messages"][-1].content == str(JAPAN)
    assert second["compiler"]["question"] == "How many live in Japan?"
    assert second["compiler"]["id"] != first["compiler"]["id"]
    assert len(second["messages"]) == len(first["messages"]) + 4
    assert calls["population(Japan)"] == 2


def test_graph_invoke_sync(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    state = graph.invoke({"messages": [("user", QUESTION)]})

    assert state["messages"][-1].content == "Japan"


async def test_no_human_message_rejected() -> None:
    graph = create_llm_compiler_graph(chat_model(), builtin_tools())

    with pytest.raises(UsageError, match=r"the input messages \(ai\) contain no human message"):
        await graph.ainvoke({"messages": [AIMessage("hello")]})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_replans": -1}, "max_replans must be 0 or more, got -1"),
        ({"max_concurrency": 0}, "max_concurrency must be at least 1, got 0"),
        ({"task_timeout": 0}, "task_timeout must be positive seconds or None, got 0"),
    ],
)
def test_invalid_settings_rejected(options: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_llm_compiler_graph(chat_model(), builtin_tools(), **options)  # type: ignore[arg-type]


def test_no_tools_rejected() -> None:
    with pytest.raises(ConfigurationError, match="the compiler needs at least one tool"):
        create_llm_compiler_graph(chat_model(), [])
