"""Checkpointed threads: paused and resumed threads never run a completed task again."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command
from support.openai_fake import (
    JAPAN,
    VIETNAM,
    chat_model,
    finish_reply,
    plan_reply,
    replan_reply,
    serve,
)

from dragonscale_lc.graphs import create_llm_compiler_graph

LOOKUP_PLAN = """\
1. population("Japan")
2. population("Vietnam")
join()
"""

RATIO_PLAN = """\
3. ratio($1, $2)
join()
"""

# Task 2 asks the user which country to look up; task 4 needs that reply.
ASK_PLAN = """\
1. population("Japan")
2. ask_human("Which country?")
3. population("Vietnam")
4. population($2)
join()
"""

THREAD = {"configurable": {"thread_id": "thread-1"}}


@pytest.fixture(params=["memory", "sqlite"])
def checkpointer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[BaseCheckpointSaver[Any]]:
    if request.param == "memory":
        yield InMemorySaver()
        return
    with SqliteSaver.from_conn_string(str(tmp_path / "checkpoints.sqlite")) as saver:
        yield saver


@pytest.fixture
async def async_sqlite(tmp_path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "checkpoints.sqlite")) as saver:
        yield saver


def statuses(state: dict[str, Any]) -> list[list[str]]:
    return [[task["status"] for task in saved["tasks"]] for saved in state["compiler"]["rounds"]]


def test_resume_before_join(
    router: respx.MockRouter,
    tools: list[BaseTool],
    calls: collections.Counter[str],
    checkpointer: BaseCheckpointSaver[Any],
) -> None:
    server = serve(router, planner=[plan_reply(LOOKUP_PLAN)], joiner=[finish_reply("Japan")])
    graph = create_llm_compiler_graph(
        chat_model(), tools, checkpointer=checkpointer, interrupt_before=["join"]
    )

    paused = graph.invoke({"messages": [("user", "Which is bigger?")]}, THREAD)

    assert graph.get_state(THREAD).next == ("join",)
    assert statuses(paused) == [["done", "done"]]
    assert calls == {"population(Japan)": 1, "population(Vietnam)": 1}

    state = graph.invoke(None, THREAD)

    assert state["messages"][-1].content == "Japan"
    assert calls == {"population(Japan)": 1, "population(Vietnam)": 1}
    assert f'1. population("Japan")\nObservation: {JAPAN}' in server.prompt("joiner", 0)


async def test_replan_after_restart_reads_state(
    router: respx.MockRouter, tools: list[BaseTool], calls: collections.Counter[str], tmp_path: Path
) -> None:
    server = serve(
        router,
        planner=[plan_reply(LOOKUP_PLAN), plan_reply(RATIO_PLAN)],
        joiner=[replan_reply("the ratio is missing"), finish_reply("1.42")],
    )
    path = str(tmp_path / "checkpoints.sqlite")
    question = {"messages": [("user", "How many Japanese per Vietnamese?")]}

    # The first graph stops after the replan decision; a second graph, with
    # its own connection to the same file, finishes the thread.
    async with AsyncSqliteSaver.from_conn_string(path) as saver:
        graph = create_llm_compiler_graph(chat_model(), tools, checkpointer=saver)
        await graph.ainvoke(question, THREAD, interrupt_after=["join"])
    async with AsyncSqliteSaver.from_conn_string(path) as saver:
        graph = create_llm_compiler_graph(chat_model(), tools, checkpointer=saver)
        state = await graph.ainvoke(None, THREAD)

    assert state["messages"][-1].content == "1.42"
    assert calls == {
        "population(Japan)": 1,
        "population(Vietnam)": 1,
        f"ratio({JAPAN}.0, {VIETNAM}.0)": 1,
    }
    assert f'2. population("Vietnam")\nObservation: {VIETNAM}' in server.prompt("planner", 1)
    assert statuses(state) == [["done", "done"], ["done"]]
    assert state["compiler"]["rounds"][1]["tasks"][0]["output"] == pytest.approx(JAPAN / VIETNAM)


async def test_tool_interrupt_keeps_sibling_results(
    router: respx.MockRouter,
    tools: list[BaseTool],
    calls: collections.Counter[str],
    async_sqlite: AsyncSqliteSaver,
) -> None:
    server = serve(router, planner=[plan_reply(ASK_PLAN)], joiner=[finish_reply("Vietnam")])
    graph = create_llm_compiler_graph(chat_model(), tools, checkpointer=async_sqlite)

    paused = await graph.ainvoke({"messages": [("user", "Pick a country and count it.")]}, THREAD)

    (interrupt,) = paused["__interrupt__"]
    assert interrupt.value == "Which country?"
    assert statuses(paused) == [["done", "interrupted", "done", "deferred"]]
    # The plan step saved the siblings' results. A second step then found
    # nothing to run but the interrupt, and the tool ran up to interrupt()
    # in both steps.
    assert calls == {
        "population(Japan)": 1,
        "ask_human(Which country?)": 2,
        "population(Vietnam)": 1,
    }

    state = await graph.ainvoke(Command(resume="Vietnam"), THREAD)

    assert state["messages"][-1].content == "Vietnam"
    assert calls == {
        "population(Japan)": 1,
        "ask_human(Which country?)": 3,
        "population(Vietnam)": 2,  # task 3, and task 4 with the user's reply
    }
    assert statuses(state) == [["done"] * 4]
    assert [task["output"] for task in state["compiler"]["rounds"][0]["tasks"]] == [
        JAPAN,
        "Vietnam",
        VIETNAM,
        VIETNAM,
    ]
    assert [role for role, _ in server.requests] == ["planner", "joiner"]


def test_tool_interrupt_sync_graph(
    router: respx.MockRouter,
    tools: list[BaseTool],
    calls: collections.Counter[str],
    checkpointer: BaseCheckpointSaver[Any],
) -> None:
    serve(router, planner=[plan_reply(ASK_PLAN)], joiner=[finish_reply("Vietnam")])
    graph = create_llm_compiler_graph(chat_model(), tools, checkpointer=checkpointer)

    paused = graph.invoke({"messages": [("user", "Pick a country and count it.")]}, THREAD)
    state = graph.invoke(Command(resume="Vietnam"), THREAD)

    assert paused["__interrupt__"][0].value == "Which country?"
    assert state["messages"][-1].content == "Vietnam"
    assert calls["population(Japan)"] == 1
    assert calls["population(Vietnam)"] == 2


async def test_interrupt_with_no_progress_pauses_at_once(
    router: respx.MockRouter,
    tools: list[BaseTool],
    calls: collections.Counter[str],
    async_sqlite: AsyncSqliteSaver,
) -> None:
    plan = '1. ask_human("Which country?")\n2. population($1)\njoin()\n'
    serve(router, planner=[plan_reply(plan)], joiner=[finish_reply(str(JAPAN))])
    graph = create_llm_compiler_graph(chat_model(), tools, checkpointer=async_sqlite)

    paused = await graph.ainvoke({"messages": [("user", "Count a country.")]}, THREAD)
    snapshot = await graph.aget_state(THREAD)
    state = await graph.ainvoke(Command(resume="Japan"), THREAD)

    assert statuses(paused) == [["interrupted", "deferred"]]
    assert snapshot.next == ("plan_and_execute",)
    assert state["messages"][-1].content == str(JAPAN)
    assert calls == {"ask_human(Which country?)": 3, "population(Japan)": 1}
