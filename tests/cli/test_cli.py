"""The dragonscale command line: run, --plan, --json and the offline demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dragonscale_lc.cli import app

TASK_KEYS = {"id", "tool", "args", "status", "output", "error", "start", "end"}
STATUSES = {"done", "failed", "cancelled", "skipped"}
JSON_KEYS = {"answer", "tasks", "replans", "rounds", "usage", "estimated_cost_usd", "error"}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DRAGONSCALE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def write_plan(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_json(runner: CliRunner, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_demo_answers_all_questions(runner: CliRunner) -> None:
    result = runner.invoke(app, ["demo", "--json"])

    summary = json.loads(result.stdout)
    assert result.exit_code == 0
    assert summary["total"] == 6
    assert summary["correct"] == 6
    assert [q["id"] for q in summary["questions"]] == ["10", "20", "31", "41", "51", "62"]


def test_demo_terminal_output(runner: CliRunner) -> None:
    result = runner.invoke(app, ["demo"])

    assert result.exit_code == 0
    assert "6 of 6 answers correct" in result.stdout
    assert "argmax(" in result.stdout
    assert "makespan" in result.stdout


def test_run_without_model_or_plan(runner: CliRunner) -> None:
    result = runner.invoke(app, ["run", "How many people live in Peru?"])

    assert result.exit_code == 2
    assert "no chat model is configured" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr
    assert "--plan" in result.stderr


def test_run_plan_json_contract(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path,
        '1. country_facts("Peru")\n2. country_facts(name="Chile", field="area")\n'
        '3. math("${1} / ${2}")\n4. join()\n',
    )

    code, output = run_json(runner, "run", "People per square km?", "--plan", plan)

    assert code == 0
    assert set(output) == JSON_KEYS
    assert output["error"] is None
    assert output["replans"] == 0
    assert output["rounds"] == [{"round": 0, "plan_cache": None, "usage": {}}]
    assert [task["id"] for task in output["tasks"]] == [1, 2, 3]
    for task in output["tasks"]:
        assert set(task) == TASK_KEYS
        assert task["status"] == "done"
        assert task["error"] is None
        assert 0 <= task["start"] <= task["end"]
    assert output["tasks"][1]["args"] == {"name": "Chile", "field": "area"}
    assert output["tasks"][2]["args"]["expression"].count("/") == 1
    assert output["answer"] == str(round(output["tasks"][2]["output"], 4))


def test_run_plan_stdout_is_one_json_object(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, '1. math("6 * 7")\n2. join()\n')

    result = runner.invoke(app, ["run", "Six sevens?", "--plan", plan, "--json"])

    assert result.exit_code == 0
    assert json.loads(result.stdout)["answer"] == "42"
    assert result.stdout.count("\n") == 1


def test_run_large_plan_with_references(runner: CliRunner, tmp_path: Path) -> None:
    countries = ["Japan", "Peru", "Chile", "Kenya", "Norway", "Egypt"]
    lines = [f'{i}. country_facts(name="{name}")' for i, name in enumerate(countries, start=1)]
    lines += [f'{i + 6}. math(expression="${{{i}}} / 1e6")' for i in range(1, 7)]
    lines.append('13. math("$7 + $8 + $9 + $10 + $11 + $12")')
    lines.append(f"14. argmax({countries!r}, [$7, $8, $9, $10, $11, $12])")
    lines.append("15. join()")
    plan = write_plan(tmp_path, "\n".join(lines) + "\n")

    code, output = run_json(runner, "run", "Which is largest?", "--plan", plan)

    assert code == 0
    assert len(output["tasks"]) == 14
    assert {task["status"] for task in output["tasks"]} == {"done"}
    assert output["answer"] == "Japan"
    total = sum(task["output"] for task in output["tasks"][6:12])
    assert output["tasks"][12]["output"] == pytest.approx(total)


def test_run_failed_task_reports_error(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, '1. country_facts("Atlantis")\n2. math("$1 * 2")\n3. join()\n')

    code, output = run_json(runner, "run", "Double Atlantis?", "--plan", plan)

    assert code == 1
    statuses = {task["id"]: task["status"] for task in output["tasks"]}
    assert statuses == {1: "failed", 2: "failed"}
    assert "Atlantis" in output["tasks"][0]["error"]
    assert output["tasks"][0]["output"] is None
    assert all(task["status"] in STATUSES for task in output["tasks"])


def test_run_malformed_plan_names_line(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(
        tmp_path, '1. math("1 + 1")\n2. math("2 + 2")\n3. math("$1 + $2"\n4. join()\n'
    )

    result = runner.invoke(app, ["run", "Sum?", "--plan", plan])

    assert result.exit_code == 1
    assert "line 3" in result.stderr
    assert "closing parenthesis is missing" in result.stderr
    assert 'math("$1 + $2"' in result.stderr


def test_run_malformed_plan_json_keeps_results(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, '1. math("1 + 1")\n2. math("x", ["$1"]\n3. math("$1 * 3")\n')

    code, output = run_json(runner, "run", "Sum?", "--plan", plan)

    assert code == 1
    assert output["answer"] is None
    assert "line 2" in output["error"]
    assert {task["id"]: task["output"] for task in output["tasks"]} == {1: 2.0, 3: 6.0}


def test_run_plan_with_byte_order_mark(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b'\xef\xbb\xbf1. math("2 + 2")\n2. math("$1 * 5")\n3. join()\n')

    code, output = run_json(runner, "run", "Twenty?", "--plan", str(path))

    assert code == 0
    assert output["answer"] == "20"


def test_run_plan_not_utf8(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b'\xff1. math("1")\n')

    result = runner.invoke(app, ["run", "Q?", "--plan", str(path)])

    assert result.exit_code == 2
    assert "it is not UTF-8 text (invalid byte at offset 0)" in result.stderr


def test_run_model_without_key(runner: CliRunner) -> None:
    result = runner.invoke(app, ["run", "Q?", "--model", "gpt-4o"])

    assert result.exit_code == 2
    assert "model 'gpt-4o' needs OPENAI_API_KEY" in result.stderr
    assert "--base-url" in result.stderr


def test_run_help_names_environment_variables(runner: CliRunner) -> None:
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})

    assert "env DRAGONSCALE_MODEL" in result.stdout
    assert "env OPENAI_BASE_URL" in result.stdout


def test_run_plan_with_unknown_tool(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, '1. web_search("dragons")\n2. join()\n')

    result = runner.invoke(app, ["run", "Dragons?", "--plan", plan])

    assert result.exit_code == 1
    assert "unknown tool 'web_search'" in result.stderr
    assert "math" in result.stderr


def test_run_missing_plan_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "Q?", "--plan", str(tmp_path / "absent.txt")])

    assert result.exit_code == 2
    assert "cannot read plan file" in result.stderr


def test_run_failed_answer_json_has_error(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, '1. math("2 +")\n2. join()\n')

    code, output = run_json(runner, "run", "Broken?", "--plan", plan)

    assert code == 1
    assert set(output) == JSON_KEYS
    assert output["answer"] is None
    assert output["error"].startswith("ERROR in task 1 (math): ToolException:")
    assert output["replans"] == 0


def test_run_plan_error_json_counts_replans(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "1. sqrt(4)\n2. join()\n")

    code, output = run_json(runner, "run", "Root?", "--plan", plan)

    assert code == 1
    assert set(output) == JSON_KEYS
    assert output["replans"] == 0
    assert "unknown tool 'sqrt'" in output["error"]


def test_run_empty_question(runner: CliRunner, tmp_path: Path) -> None:
    plan = write_plan(tmp_path, '1. math("1")\n')

    result = runner.invoke(app, ["run", "  ", "--plan", plan])

    assert result.exit_code == 2
    assert "the question is empty" in result.stderr
