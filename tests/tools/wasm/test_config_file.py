"""Tool configuration files: Python and WASM entries, and clear errors for bad ones."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from wasm_modules import ECHO
from wasmtime import wat2wasm

from dragonscale_lc import ConfigurationError
from dragonscale_lc.compiler import LLMCompiler
from dragonscale_lc.tools import builtin_tools, load_tools_config


def write(tmp_path: Path, text: str, name: str = "tools.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def helpers_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    package = tmp_path / "site"
    package.mkdir()
    (package / "harbour_tools.py").write_text(
        textwrap.dedent(
            '''
            from langchain_core.tools import tool

            def tide_height(harbour: str) -> float:
                """Return the tide height in metres at a harbour."""
                return {"west": 1.5, "east": 2.25}[harbour]

            async def wave_period(harbour: str) -> float:
                """Return the wave period in seconds at a harbour."""
                return 8.0

            @tool
            def wind(harbour: str) -> str:
                """Return the wind at a harbour."""
                return "calm"

            NOT_A_TOOL = 42
            '''
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(package))
    return "harbour_tools"


def test_python_entries_load(tmp_path: Path, helpers_module: str) -> None:
    path = write(
        tmp_path,
        f"""
        [python.tide]
        entry = "{helpers_module}:tide_height"

        [python.waves]
        entry = "{helpers_module}:wave_period"
        description = "Wave period in seconds."

        [python.wind]
        entry = "{helpers_module}:wind"
        """,
    )

    tools = load_tools_config(path).local_tools()

    assert [tool.name for tool in tools] == ["tide", "waves", "wind"]
    assert tools[0].invoke({"harbour": "east"}) == 2.25
    assert tools[1].description == "Wave period in seconds."
    assert tools[2].invoke({"harbour": "west"}) == "calm"


def test_wasm_entry_relative_to_file(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "echo.wasm").write_bytes(wat2wasm(ECHO))
    path = write(
        tmp_path,
        """
        [wasm.echo]
        module = "modules/echo.wasm"
        description = "Echo the arguments."
        args_schema = { type = "object", required = ["text"], properties.text.type = "string" }
        fuel = 1_000_000
        timeout = 5.0
        memory_limit = 262_144
        """,
    )

    [tool] = load_tools_config(path).local_tools()

    assert tool.name == "echo"
    assert tool.invoke({"text": "hi"}) == {"echo": {"text": "hi"}}


async def test_plan_mixes_config_and_builtin_tools(tmp_path: Path, helpers_module: str) -> None:
    (tmp_path / "echo.wasm").write_bytes(wat2wasm(ECHO))
    path = write(
        tmp_path,
        f"""
        [python.tide]
        entry = "{helpers_module}:tide_height"

        [wasm.echo]
        module = "echo.wasm"
        description = "Echo the arguments."
        args_schema = {{ type = "object", properties.text.type = "string" }}
        """,
    )
    compiler = LLMCompiler(
        tools=[*load_tools_config(path).local_tools(), *builtin_tools()],
        plan='1. tide("west")\n2. echo(text="tide $1")\n3. math("$1 * 2")\n4. join()',
    )

    result = await compiler.arun("Twice the west tide?")

    assert result.answer == "3"
    assert result.report[2].output == {"echo": {"text": "tide 1.5"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[python.x]\nentry = 'no_colon'\n",
            r"\[python\.x\]: entry: .*'no_colon' is not of the form",
        ),
        ("[python.x]\nentry = 'a:b'\nextra = 1\n", r"\[python\.x\]: extra: Extra inputs"),
        ("[wasm.x]\nmodule = 'x.wasm'\n", r"\[wasm\.x\]: description: Field required"),
        (
            "[wasm.x]\nmodule = 'x.wasm'\ndescription = 'd'\nargs_schema = {}\nfuel = 0\n",
            r"\[wasm\.x\]: fuel: Input should be greater than 0",
        ),
        ("[tools.x]\n", r"unknown table\(s\) tools; the tables are python, wasm and mcp"),
        ("python = 3\n", r"\[python\] must be a table of named entries"),
        ("[python]\nx = 3\n", r"python\.x must be a table such as \[python\.x\], got int"),
        ("[python.x\n", r"invalid TOML"),
    ],
)
def test_invalid_entry_names_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigurationError, match=message) as caught:
        load_tools_config(path)

    assert str(path) in str(caught.value)


def test_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read tool configuration .*absent\.toml"):
        load_tools_config(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("no_such_module_anywhere:tool", "cannot import 'no_such_module_anywhere'"),
        ("harbour_tools:missing", "module 'harbour_tools' has no attribute 'missing'"),
        ("harbour_tools:NOT_A_TOOL", "is a int, not a tool or a function"),
    ],
)
def test_bad_python_entry_at_load(
    tmp_path: Path, helpers_module: str, entry: str, message: str
) -> None:
    path = write(tmp_path, f'[python.x]\nentry = "{entry}"\n')

    with pytest.raises(ConfigurationError, match=message) as caught:
        load_tools_config(path).local_tools()

    assert "[python.x]" in str(caught.value)


def test_missing_wasm_module_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[wasm.x]\nmodule = 'gone.wasm'\ndescription = 'd'\n"
        "args_schema = {type = 'object', properties = {}}\n",
    )

    with pytest.raises(ConfigurationError, match=r"\[wasm\.x\]: .*gone\.wasm"):
        load_tools_config(path).local_tools()


def test_python_entry_found_next_to_file(tmp_path: Path) -> None:
    (tmp_path / "pier_tools.py").write_text(
        'def pier_length(pier: str) -> float:\n    """Return a pier length."""\n    return 120.0\n',
        encoding="utf-8",
    )
    path = write(tmp_path, '[python.pier_length]\nentry = "pier_tools:pier_length"\n')

    [tool] = load_tools_config(path).local_tools()

    assert tool.invoke({"pier": "north"}) == 120.0
    assert str(tmp_path) not in sys.path
