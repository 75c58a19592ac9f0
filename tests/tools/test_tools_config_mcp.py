"""A tool configuration file with an MCP server, a WASM module and a Python tool."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from mcp_helpers import SERVER_SCRIPT
from tools.wasm.wasm_modules import ECHO
from typer.testing import CliRunner
from wasmtime import wat2wasm

from dragonscale_lc import ConfigurationError, LLMCompiler, TaskStatus
from dragonscale_lc.cli import app
from dragonscale_lc.tools import builtin_tools, load_tools_config


def write_config(directory: Path, extra: str = "") -> Path:
    shutil.copy(SERVER_SCRIPT, directory / "server.py")
    (directory / "echo.wasm").write_bytes(wat2wasm(ECHO))
    path = directory / "tools.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [mcp.local]
            command = {json.dumps(sys.executable)}
            args = ["server.py", "stdio"]
            max_concurrency = 2
            timeout = 20.0

            [wasm.wasm_echo]
            module = "echo.wasm"
            description = "Echo the arguments."
            args_schema = {{ type = "object", properties.text.type = "string" }}

            [python.shorten]
            entry = "textwrap:shorten"
            description = "Shorten text to a width in characters."
            """
        )
        + extra,
        encoding="utf-8",
    )
    return path


def test_mcp_entries_become_server_configs(tmp_path: Path) -> None:
    config = load_tools_config(write_config(tmp_path))

    server = config.mcp["local"]
    assert server.name == "local"
    assert server.max_concurrency == 2
    assert server.cwd == str(tmp_path)
    assert list(server.args) == ["server.py", "stdio"]


async def test_plan_mixes_langchain_mcp_and_wasm_tools(tmp_path: Path) -> None:
    compiler = LLMCompiler(
        tools=builtin_tools(),
        tools_config=write_config(tmp_path),
        plan=(
            "1. add(a=2, b=3)\n"
            '2. wasm_echo(text="hello")\n'
            '3. math("6 * 7")\n'
            '4. shorten(text="the answer is $3", width=20)\n'
            '5. wasm_echo(text="sum $1")\n'
            "6. join()\n"
        ),
    )

    result = await compiler.arun("Mix the tools")

    statuses = {record.id: record.status for record in result.report}
    assert statuses == dict.fromkeys(range(1, 6), TaskStatus.DONE)
    assert str(result.report[1].output).strip() == "5"
    assert result.report[2].output == {"echo": {"text": "hello"}}
    assert result.report[4].output == "the answer is 42"
    assert result.report[5].output == {"echo": {"text": "sum 5"}}
    starts = [record.start for record in result.report]
    ends = [record.end for record in result.report]
    # The three independent calls overlapped: each started before the others ended.
    assert max(starts[:3]) < min(ends[:3])  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("\n[mcp.bad]\ncommand = 'x'\nname = 'y'\n", r"\[mcp\.bad\]: name is the table's key"),
        ("\n[mcp.bad]\ncommand = 'x'\nport = 1\n", r"\[mcp\.bad\]: unknown field\(s\) port"),
        ("\n[mcp.bad]\nargs = ['x']\n", r"\[mcp\.bad\]: "),
    ],
)
def test_invalid_mcp_entry_names_entry(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_tools_config(write_config(tmp_path, extra))


def test_tools_config_of_wrong_type_rejected() -> None:
    with pytest.raises(ConfigurationError, match="tools_config must be a path"):
        LLMCompiler(tools=builtin_tools(), tools_config=42, plan="1. math('1')\n2. join()")


def test_cli_run_with_tools_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DRAGONSCALE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path)
    plan = tmp_path / "plan.txt"
    plan.write_text('1. add(a=20, b=22)\n2. wasm_echo(text="got $1")\n3. join()\n')

    result = CliRunner().invoke(
        app, ["run", "Add them", "--plan", str(plan), "--tools-config", str(config), "--json"]
    )

    assert result.exit_code == 0, result.stderr
    output = json.loads(result.stdout)
    assert [task["status"] for task in output["tasks"]] == ["done", "done"]
    assert output["tasks"][1]["output"] == {"echo": {"text": "got 42"}}


def test_cli_invalid_tools_config_is_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "tools.toml"
    config.write_text("[wasm.broken]\nmodule = 'gone.wasm'\n")
    plan = tmp_path / "plan.txt"
    plan.write_text('1. math("1 + 1")\n2. join()\n')

    result = CliRunner().invoke(
        app, ["run", "Q?", "--plan", str(plan), "--tools-config", str(config)]
    )

    assert result.exit_code == 2
    assert "[wasm.broken]: description: Field required" in result.stderr
