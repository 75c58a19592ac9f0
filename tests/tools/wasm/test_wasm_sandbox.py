"""WASM tool calls: results, each sandbox violation as a tool error, and recovery."""

from __future__ import annotations

import re

import pytest
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import ToolException
from wasm_modules import (
    CHATTY,
    COUNT_ARGS,
    ECHO,
    EXIT_3,
    INVALID_JSON,
    LOOP,
    MEMORY_BOMB,
    OPEN_FILE,
    TEXT_SCHEMA,
    TRAP,
    MakeTool,
)

from dragonscale_lc import RunError
from dragonscale_lc.tools.wasm import (
    WasmExitError,
    WasmFileAccessError,
    WasmInvalidOutputError,
    WasmMemoryLimitError,
    WasmOutOfFuelError,
    WasmOutputLimitError,
    WasmTimeoutError,
    WasmTrapError,
)


def test_echo_returns_json_output(make_tool: MakeTool) -> None:
    echo = make_tool(ECHO, "echo", args_schema=TEXT_SCHEMA)

    assert echo.invoke({"text": "héllo"}) == {"echo": {"text": "héllo"}}


async def test_echo_ainvoke_returns_json_output(make_tool: MakeTool) -> None:
    echo = make_tool(ECHO, "echo", args_schema=TEXT_SCHEMA)

    assert await echo.ainvoke({"text": "hi"}) == {"echo": {"text": "hi"}}


def test_invalid_arguments_rejected_before_run(make_tool: MakeTool) -> None:
    echo = make_tool(ECHO, "echo", args_schema=TEXT_SCHEMA)

    with pytest.raises(ToolException) as caught:
        echo.invoke({"text": 3})

    assert str(caught.value) == (
        "Invalid arguments for echo: text: 3 is not of type 'string'. Fix them and call it again."
    )


def test_missing_argument_rejected(make_tool: MakeTool) -> None:
    echo = make_tool(ECHO, "echo", args_schema=TEXT_SCHEMA)

    with pytest.raises(ToolException, match=r"input: 'text' is a required property"):
        echo.invoke({})


def test_argv_is_name_and_env_empty(make_tool: MakeTool) -> None:
    count = make_tool(COUNT_ARGS, "count")

    assert count.invoke({}) == [1, 0]


def test_env_passes_only_allowed_names(
    make_tool: MakeTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASM_TOOL_ALLOWED", "yes")
    monkeypatch.setenv("WASM_TOOL_HIDDEN", "no")
    count = make_tool(COUNT_ARGS, "count", env=["WASM_TOOL_ALLOWED", "WASM_TOOL_UNSET"])

    assert count.invoke({}) == [1, 1]


def test_endless_loop_runs_out_of_fuel(make_tool: MakeTool) -> None:
    loop = make_tool(LOOP, "loop")

    with pytest.raises(WasmOutOfFuelError) as caught:
        loop.invoke({})

    assert str(caught.value) == (
        "WASM tool 'loop' ran out of fuel: it used all 100000 units (about one per "
        "instruction), which usually means an endless loop. Fix the module, or raise fuel "
        "for this tool if the work is legitimately that large."
    )
    assert caught.value.limit == 100_000
    assert isinstance(caught.value, RunError)


def test_endless_loop_times_out_without_fuel(make_tool: MakeTool) -> None:
    loop = make_tool(LOOP, "loop", fuel=None, timeout=0.05)

    with pytest.raises(WasmTimeoutError) as caught:
        loop.invoke({})

    assert str(caught.value) == (
        "WASM tool 'loop' timed out after 0.05 s. Fix the module if it loops, or raise "
        "timeout for this tool."
    )


def test_memory_bomb_hits_memory_limit(make_tool: MakeTool) -> None:
    bomb = make_tool(MEMORY_BOMB, "bomb")

    with pytest.raises(WasmMemoryLimitError) as caught:
        bomb.invoke({})

    assert str(caught.value) == (
        "WASM tool 'bomb' failed at the memory limit: its linear memory is 262144 bytes "
        "and memory_limit=262144 bytes leaves no room for another 64 KiB page. Raise "
        "memory_limit for this tool, or make it use less memory. stderr: memory "
        "allocation failed"
    )


def test_initial_memory_over_limit_fails_at_start(make_tool: MakeTool) -> None:
    big = make_tool('(module (memory (export "memory") 8) (func (export "_start")))', "big")

    with pytest.raises(WasmMemoryLimitError, match=r"did not start: its initial memory"):
        big.invoke({})


def test_file_access_is_reported(make_tool: MakeTool) -> None:
    opener = make_tool(OPEN_FILE, "opener")

    with pytest.raises(WasmFileAccessError) as caught:
        opener.invoke({})

    assert str(caught.value) == (
        "WASM tool 'opener' failed after trying to open 'secret.txt': WASM tools have no "
        "filesystem access (no directory is preopened, so path_open returns EBADF). Pass "
        "the data in the tool's arguments instead. stderr: path_open failed: EBADF"
    )
    assert caught.value.paths == ("secret.txt",)


def test_invalid_json_output(make_tool: MakeTool) -> None:
    broken = make_tool(INVALID_JSON, "broken")

    with pytest.raises(WasmInvalidOutputError) as caught:
        broken.invoke({})

    assert str(caught.value) == (
        "WASM tool 'broken' wrote invalid JSON to stdout (Expecting ',' delimiter: line 1 "
        "column 14 (char 13)); the output starts with '{\"answer\": 42'. The module must "
        "write its result as exactly one JSON value."
    )


def test_trap_names_trap_message(make_tool: MakeTool) -> None:
    trap = make_tool(TRAP, "trap")

    with pytest.raises(WasmTrapError) as caught:
        trap.invoke({})

    assert str(caught.value) == (
        "WASM tool 'trap' trapped (wasm trap: wasm `unreachable` instruction executed), a "
        "bug in the module. The module wrote nothing to stderr."
    )


def test_nonzero_exit_shows_stderr(make_tool: MakeTool) -> None:
    failing = make_tool(EXIT_3, "failing")

    with pytest.raises(WasmExitError) as caught:
        failing.invoke({})

    assert str(caught.value) == (
        "WASM tool 'failing' exited with code 3. stderr: bad input: expected a number"
    )
    assert caught.value.exit_code == 3
    assert caught.value.stderr == "bad input: expected a number"


def test_output_over_max_output_fails(make_tool: MakeTool) -> None:
    chatty = make_tool(CHATTY, "chatty")

    with pytest.raises(WasmOutputLimitError, match=re.escape("more than max_output=64 bytes")):
        chatty.invoke({})


def test_tool_call_gets_error_message(make_tool: MakeTool) -> None:
    loop = make_tool(LOOP, "loop")
    call = ToolCall(name="loop", args={}, id="call-1", type="tool_call")

    message = loop.invoke(call)

    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.content.startswith("WASM tool 'loop' ran out of fuel")


def test_tools_work_after_every_failure(make_tool: MakeTool) -> None:
    echo = make_tool(ECHO, "echo", args_schema=TEXT_SCHEMA)
    failing = [
        make_tool(wat, name)
        for wat, name in [
            (LOOP, "loop"),
            (MEMORY_BOMB, "bomb"),
            (OPEN_FILE, "opener"),
            (INVALID_JSON, "broken"),
            (TRAP, "trap"),
            (EXIT_3, "failing"),
            (CHATTY, "chatty"),
        ]
    ]

    for tool in failing:
        with pytest.raises(ToolException):
            tool.invoke({})
        assert echo.invoke({"text": tool.name}) == {"echo": {"text": tool.name}}
