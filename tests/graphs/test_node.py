"""LLMCompilerNode in a user's own StateGraph, and the message list it leaves behind."""

from __future__ import annotations

import collections

import pytest
import respx
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from support.openai_fake import (
    JAPAN,
    POPULATION_PLAN,
    QUESTION,
    VIETNAM,
    chat_model,
    chat_reply,
    finish_reply,
    plan_reply,
    replan_reply,
    serve,
    tool_message_problem,
)

from dragonscale_lc import UsageError
from dragonscale_lc.graphs import LLMCompilerNode
from dragonscale_lc.tools import builtin_tools


def user_graph(
    node: LLMCompilerNode,
) -> CompiledStateGraph[MessagesState, None, MessagesState, MessagesState]:
    builder = StateGraph(MessagesState)
    builder.add_node("research", node)
    builder.add_edge(START, "research")
    builder.add_edge("research", END)
    return builder.compile()


def kinds(messages: list[BaseMessage]) -> list[str]:
    return [type(message).__name__ for message in messages]


async def test_node_in_user_graph(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = user_graph(LLMCompilerNode(chat_model(), builtin_tools()))

    state = await graph.ainvoke({"messages": [HumanMessage(QUESTION)]})

    messages = state["messages"]
    assert kinds(messages) == ["HumanMessage", "AIMessage", *["ToolMessage"] * 4, "AIMessage"]
    calls = messages[1]
    assert isinstance(calls, AIMessage)
    assert [result.tool_call_id for result in messages[2:6]] == [
        call["id"] for call in calls.tool_calls
    ]
    answer = messages[-1]
    assert answer.content == "Japan"
    tasks = answer.response_metadata["dragonscale"]["tasks"]
    assert [task["output"] for task in tasks][:2] == [JAPAN, VIETNAM]


def test_node_in_sync_graph(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    graph = user_graph(LLMCompilerNode(chat_model(), builtin_tools()))

    state = graph.invoke({"messages": [HumanMessage(QUESTION)]})

    assert state["messages"][-1].content == "Japan"


def test_node_called_directly(router: respx.MockRouter) -> None:
    serve(router, planner=[plan_reply(POPULATION_PLAN)], joiner=[finish_reply("Japan")])
    node = LLMCompilerNode(chat_model(), builtin_tools())

    update = node({"messages": [HumanMessage(QUESTION)]})

    assert kinds(update["messages"]) == ["AIMessage", *["ToolMessage"] * 4, "AIMessage"]


async def test_node_replans_within_step(
    router: respx.MockRouter, tools: list[BaseTool], calls: collections.Counter[str]
) -> None:
    serve(
        router,
        planner=[
            plan_reply('1. population("Japan")\n2. population("Vietnam")\njoin()\n'),
            plan_reply("3. ratio($1, $2)\njoin()\n"),
        ],
        joiner=[replan_reply("the ratio is missing"), finish_reply("1.42")],
    )
    graph = user_graph(LLMCompilerNode(chat_model(), tools))

    state = await graph.ainvoke({"messages": [HumanMessage("How many Japanese per Vietnamese?")]})

    assert kinds(state["messages"]) == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert state["messages"][-1].content == "1.42"
    assert sum(calls.values()) == 3


async def test_follow_up_call_accepts_messages(router: respx.MockRouter) -> None:
    server = serve(
        router,
        planner=[plan_reply(POPULATION_PLAN)],
        joiner=[finish_reply("Japan")],
        chat=[chat_reply("You're welcome.")],
    )
    graph = user_graph(LLMCompilerNode(chat_model(), builtin_tools()))
    state = await graph.ainvoke({"messages": [HumanMessage(QUESTION)]})

    reply = await chat_model().ainvoke([*state["messages"], HumanMessage("Thanks!")])

    assert reply.content == "You're welcome."
    (request,) = server.bodies("chat")
    roles = [message["role"] for message in request["messages"]]
    assert roles == ["user", "assistant", "tool", "tool", "tool", "tool", "assistant", "user"]
    assert request["messages"][1]["tool_calls"][3]["function"] == {
        "name": "math",
        "arguments": '{"expression": "127080000 / 89708900"}',
    }


def test_fake_rejects_unanswered_tool_call() -> None:
    # The check the follow-up test relies on fails when a result is missing.
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "user", "content": "and?"},
    ]

    problem = tool_message_problem(messages)

    assert problem is not None
    assert "call_1" in problem


async def test_node_interrupt_surfaces(
    router: respx.MockRouter, tools: list[BaseTool], calls: collections.Counter[str]
) -> None:
    plan = '1. population("Japan")\n2. ask_human("Which country?")\njoin()\n'
    serve(router, planner=[plan_reply(plan)], joiner=[])
    graph = user_graph(LLMCompilerNode(chat_model(), tools))

    state = await graph.ainvoke({"messages": [HumanMessage("Pick one.")]})

    (interrupt,) = state["__interrupt__"]
    assert interrupt.value == "Which country?"
    # The sibling ran before the interrupt surfaced.
    assert calls == {"population(Japan)": 1, "ask_human(Which country?)": 1}


@pytest.mark.parametrize("state", [{}, {"messages": []}])
def test_node_without_messages_rejected(state: dict[str, list[BaseMessage]]) -> None:
    node = LLMCompilerNode(chat_model(), builtin_tools())

    with pytest.raises(UsageError, match="the input has no messages"):
        node.invoke(state)


def test_tool_message_status(router: respx.MockRouter, tools: list[BaseTool]) -> None:
    serve(
        router,
        planner=[plan_reply('1. population("Atlantis")\njoin()\n')],
        joiner=[finish_reply("?")],
    )
    node = LLMCompilerNode(chat_model(), tools)

    update = node.invoke({"messages": [HumanMessage("How many live in Atlantis?")]})

    result = update["messages"][1]
    assert isinstance(result, ToolMessage)
    assert result.status == "error"
