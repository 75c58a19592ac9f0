"""Plan cache: a first plan that led to an answer is reused, and the planner is skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from langchain_core.tools import tool
from support.openai_fake import (
    BASE_URL,
    POPULATION_PLAN,
    QUESTION,
    chat_model,
    finish_reply,
    plan_reply,
    replan_reply,
    serve,
)
from typer.testing import CliRunner

from dragonscale_lc.cli import app
from dragonscale_lc.compiler import LLMCompiler, PlanCache, normalize_question
from dragonscale_lc.tools import builtin_tools


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as mock:
        yield mock


def compiler(cache: PlanCache, **options: Any) -> LLMCompiler:
    return LLMCompiler(model=chat_model(), tools=builtin_tools(), plan_cache=cache, **options)


def rounds(message: Any) -> list[dict[str, Any]]:
    return list(message.response_metadata["dragonscale"]["rounds"])


async def test_second_question_skips_planner(router: respx.MockRouter) -> None:
    server = serve(
        router,
        planner=[plan_reply(POPULATION_PLAN)],
        joiner=[finish_reply("Japan"), finish_reply("Japan")],
    )
    cache = PlanCache()

    first = await compiler(cache).ainvoke(QUESTION)
    second = await compiler(cache).ainvoke(
        "  which has more people, JAPAN or Vietnam, and by what factor? "
    )

    assert first.content == second.content == "Japan"
    assert len(server.bodies("planner")) == 1
    assert rounds(first)[0]["plan_cache"] == "miss"
    assert rounds(second)[0]["plan_cache"] == "hit"
    assert "planner" not in rounds(second)[0]["usage"]
    assert [t["output"] for t in second.response_metadata["dragonscale"]["tasks"]] == [
        t["output"] for t in first.response_metadata["dragonscale"]["tasks"]
    ]
    assert cache.stats.hits == 1
    assert cache.stats.misses == 1


async def test_cache_hit_event_in_astream_events(router: respx.MockRouter) -> None:
    serve(
        router,
        planner=[plan_reply(POPULATION_PLAN)],
        joiner=[finish_reply("Japan"), finish_reply("Japan")],
    )
    cache = PlanCache()
    await compiler(cache).ainvoke(QUESTION)

    events = [event async for event in compiler(cache).astream_events(QUESTION)]

    names = [event["name"] for event in events if event["event"] == "on_custom_event"]
    assert "dragonscale.plan.cache_hit" in names
    model_starts = [e for e in events if e["event"] == "on_chat_model_start"]
    assert len(model_starts) == 1  # the joiner only


async def test_sqlite_plan_survives_restart(router: respx.MockRouter, tmp_path: Path) -> None:
    server = serve(
        router,
        planner=[plan_reply(POPULATION_PLAN)],
        joiner=[finish_reply("Japan"), finish_reply("Japan")],
    )
    path = tmp_path / "plans.sqlite"
    first_cache = PlanCache(path)
    await compiler(first_cache).ainvoke(QUESTION)
    first_cache.close()

    message = await compiler(PlanCache(path)).ainvoke(QUESTION)

    assert message.content == "Japan"
    assert rounds(message)[0]["plan_cache"] == "hit"
    assert len(server.bodies("planner")) == 1


async def test_replanned_first_plan_not_cached(router: respx.MockRouter) -> None:
    second_plan = '6. math("${1} / ${2}")\n7. join()\n'
    server = serve(
        router,
        planner=[plan_reply(POPULATION_PLAN), plan_reply(second_plan), plan_reply(POPULATION_PLAN)],
        joiner=[replan_reply("need the ratio"), finish_reply("1.42"), finish_reply("Japan")],
    )
    cache = PlanCache()

    await compiler(cache).ainvoke(QUESTION)
    message = await compiler(cache).ainvoke(QUESTION)

    assert rounds(message)[0]["plan_cache"] == "miss"
    assert len(server.bodies("planner")) == 3


def test_key_covers_tools_model_and_question() -> None:
    cache = PlanCache()
    tools = LLMCompiler(model=chat_model(), tools=builtin_tools()).toolbox

    @tool
    def math(expression: str, precision: int = 4) -> float:
        """Evaluate an arithmetic expression with a given precision."""
        return 0.0

    other_tools = LLMCompiler(model=chat_model(), tools=[math, *builtin_tools()[1:]]).toolbox
    key = cache.key(QUESTION, tools, chat_model())

    assert cache.key(QUESTION.upper(), tools, chat_model()) == key
    assert cache.key("Which has more people, Japan or Peru?", tools, chat_model()) != key
    assert cache.key(QUESTION, other_tools, chat_model()) != key
    other_model = chat_model()
    other_model.model_name = "gpt-other"
    assert cache.key(QUESTION, tools, other_model) != key


def test_normalize_question_whitespace_and_case() -> None:
    assert normalize_question("What\tis  2+2 ?\n") == "what is 2+2 ?"
    assert normalize_question("\uff21\uff22\uff23") == "abc"  # fullwidth letters


def test_cli_plan_cache_skips_planner(
    router: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(
        router,
        planner=[plan_reply(POPULATION_PLAN)],
        joiner=[finish_reply("Japan"), finish_reply("Japan")],
    )
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    monkeypatch.setenv("DRAGONSCALE_MODEL", "gpt-test")
    path = str(tmp_path / "plans.sqlite")
    runner = CliRunner()

    outputs = []
    for _ in range(2):
        result = runner.invoke(app, ["run", QUESTION, "--plan-cache", path, "--json"])
        assert result.exit_code == 0, result.stderr
        outputs.append(json.loads(result.stdout))

    assert [output["answer"] for output in outputs] == ["Japan", "Japan"]
    assert [output["rounds"][0]["plan_cache"] for output in outputs] == ["miss", "hit"]
    assert len(server.bodies("planner")) == 1


def test_cli_plan_cache_unusable_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    result = CliRunner().invoke(
        app, ["run", QUESTION, "--plan-cache", str(tmp_path / "missing-dir" / "plans.sqlite")]
    )

    assert result.exit_code == 2
    assert "cannot open plan cache" in result.stderr
