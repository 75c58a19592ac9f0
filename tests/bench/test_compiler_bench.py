"""Compiler latency benchmark on tiny delays: call counts, answers, cache hits and the CLI.

No test asserts a wall-clock time; the benchmark's figures are in the docs.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from typer.testing import CliRunner

from dragonscale_lc import RunError
from dragonscale_lc.bench import (
    CompilerShape,
    SimulatedAgent,
    SleepingTools,
    compiler_shapes,
    measure_compiler,
    run_react,
)
from dragonscale_lc.cli import app
from dragonscale_lc.compiler import ToolBox
from dragonscale_lc.testing import ScriptedChatModel

# Delays short enough that a full run of every strategy takes well under a second.
TINY = {"time_to_first_token": 0.0, "tokens_per_second": 1e6, "tool_latency": 0.0}


def shape(question_id: str) -> CompilerShape:
    return next(item for item in compiler_shapes() if item.question.id == question_id)


def test_shapes_cover_two_to_five_branches() -> None:
    shapes = compiler_shapes()

    assert sorted({item.branches for item in shapes}) == [2, 3, 4, 5]
    assert len({item.question.question for item in shapes}) == len(shapes)


def test_five_branch_shape_counts() -> None:
    five = shape("5-way")

    assert five.branches == 5
    assert five.tool_calls == 11


@pytest.mark.parametrize("question_id", ["20", "62", "5-way"])
async def test_strategies_make_expected_calls(question_id: str) -> None:
    item = shape(question_id)

    result = await measure_compiler([item], **TINY)

    runs = result.shapes[0].runs
    calls = item.tool_calls
    assert (runs["sequential"].react_calls, runs["sequential"].tool_calls) == (calls + 1, calls)
    assert runs["sequential"].planner_calls == 0
    assert runs["sequential"].joiner_calls == 0
    for name in ("plan_then_execute", "streaming"):
        assert runs[name].planner_calls == 1, name
        assert runs[name].joiner_calls == 1, name
        assert runs[name].react_calls == 0, name
        assert runs[name].tool_calls == calls, name
    assert runs["plan_cache_hit"].planner_calls == 0
    assert runs["plan_cache_hit"].joiner_calls == 1
    assert runs["plan_cache_hit"].tool_calls == calls


async def test_every_strategy_answers_correctly() -> None:
    result = await measure_compiler(**TINY)

    for shape_result in result.shapes:
        label = shape_result.shape.question.answer
        answers = {name: run.answer for name, run in shape_result.runs.items()}
        assert all(run.correct for run in shape_result.runs.values()), (label, answers)
        assert len(set(answers.values())) == 1, answers
    assert result.goals["all_answers_correct"]


async def test_repeat_keeps_counts_of_one_run() -> None:
    result = await measure_compiler([shape("10")], repeat=3, **TINY)

    runs = result.shapes[0].runs
    assert result.repeat == 3
    assert runs["streaming"].planner_calls == 1
    assert runs["plan_cache_hit"].planner_calls == 0
    assert runs["sequential"].react_calls == shape("10").tool_calls + 1


async def test_result_dict_has_figures_and_goals() -> None:
    result = await measure_compiler([shape("20")], time_scale=0.001)

    summary = result.to_dict()
    assert summary["time_scale"] == 0.001
    assert summary["time_to_first_token_s"] == 0.3
    total = summary["total"]
    for key in (
        "sequential_s",
        "plan_then_execute_s",
        "streaming_s",
        "plan_cache_hit_s",
        "planner_s",
    ):
        assert total[key] > 0, key
    assert total["speedup_vs_sequential"] == total["sequential_s"] / total["streaming_s"]
    assert summary["shapes"][0]["branches"] == 2
    assert set(summary["goals"]) == {
        "speedup_vs_sequential_ge_2_15",
        "streaming_faster_than_plan_then_execute",
        "plan_cache_hit_saves_half_of_planner_s",
        "all_answers_correct",
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"time_to_first_token": -1.0}, "time_to_first_token and tool_latency"),
        ({"tool_latency": -0.1}, "time_to_first_token and tool_latency"),
        ({"tokens_per_second": 0.0}, "tokens_per_second and time_scale"),
        ({"time_scale": 0.0}, "tokens_per_second and time_scale"),
        ({"repeat": 0}, "repeat at least 1"),
    ],
)
async def test_measure_rejects_invalid_parameters(
    arguments: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await measure_compiler([shape("20")], **arguments)


# The simulated agent and the ReAct loop

PLAN = """\
1. country_facts("Japan")
2. country_facts("Vietnam")
3. math("${1} / $2")
4. join()
"""
QUESTION = "How many times larger is Japan's population than Vietnam's?"


def react_prompt(*observations: str) -> list[SystemMessage | HumanMessage | AIMessage]:
    messages: list[SystemMessage | HumanMessage | AIMessage] = [
        SystemMessage("Question: an example in the system prompt"),
        HumanMessage(f"Question: {QUESTION}"),
    ]
    for observation in observations:
        messages.append(AIMessage("Thought: ...\nAction: ..."))
        messages.append(HumanMessage(f"Observation: {observation}"))
    return messages


def test_react_step_follows_plan() -> None:
    agent = SimulatedAgent({QUESTION: PLAN})

    first = agent.react_step(react_prompt())
    third = agent.react_step(react_prompt("120", "60"))
    last = agent.react_step(react_prompt("120", "60", "2"))

    assert first.endswith('Action: country_facts("Japan")')
    assert third.endswith('Action: math("120 / 60")')
    assert last.endswith("Action: Finish(2)")


def test_planner_reads_human_question() -> None:
    agent = SimulatedAgent({QUESTION: PLAN})

    assert agent.plan(react_prompt()) == PLAN


def test_joiner_answers_last_observation() -> None:
    agent = SimulatedAgent({QUESTION: PLAN})
    scratchpad = "1. country_facts(...)\nObservation: 120\n2. math(...)\nObservation: 2"

    reply = agent.join([SystemMessage("role"), HumanMessage(f"Question: q\n\n{scratchpad}")])

    assert reply.endswith("Action: Finish(2)")


async def test_run_react_calls_tools_in_turn() -> None:
    agent = SimulatedAgent({QUESTION: PLAN})
    model = ScriptedChatModel(replies=[agent.react_step], repeat=True)
    tools = SleepingTools(0.0)

    answer = await run_react(QUESTION, model, ToolBox(tools.tools))

    assert model.calls == 4
    assert tools.calls == 3
    assert float(answer) == pytest.approx(127080000 / 89708900, rel=1e-3)


async def test_run_react_rejects_reply_without_action() -> None:
    model = ScriptedChatModel(replies=["Thought: nothing to do"])

    with pytest.raises(RunError, match="has no 'Action:' line"):
        await run_react(QUESTION, model, ToolBox(SleepingTools(0.0).tools))


async def test_run_react_stops_after_max_steps() -> None:
    model = ScriptedChatModel(replies=['Action: math("1 + 1")'], repeat=True)

    with pytest.raises(RunError, match="made 3 model calls without a Finish"):
        await run_react(QUESTION, model, ToolBox(SleepingTools(0.0).tools), max_steps=3)


# Command line


def test_cli_compiler_json() -> None:
    result = CliRunner().invoke(
        app, ["bench", "compiler", "--time-scale", "0.0001", "--repeat", "1", "--json"]
    )

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    summary = json.loads(lines[0])
    assert summary["tool_latency_s"] == 0.5
    assert summary["time_scale"] == 0.0001
    assert len(summary["shapes"]) == len(compiler_shapes())
    assert summary["goals"]["all_answers_correct"] is True
    assert summary["environment"]["cpus"] >= 1


def test_cli_compiler_table() -> None:
    result = CliRunner().invoke(app, ["bench", "compiler", "--time-scale", "0.0001"])

    assert result.exit_code == 0, result.stderr
    assert "LLMCompiler latency, all questions" in result.stdout
    assert "goal all_answers_correct" in result.stdout
