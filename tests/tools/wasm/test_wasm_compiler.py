"""WASM tools in compiler plans, running at the same time as other tools."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from wasm_modules import ECHO, EXIT_3, LOOP, MEMORY_BOMB, TEXT_SCHEMA, TRAP, MakeTool

from dragonscale_lc import LLMCompiler, PlanError
from dragonscale_lc.tools import builtin_tools
from dragonscale_lc.tools.wasm import WasmEngine

GUARD = 10.0


async def test_plan_reports_each_wasm_task(make_tool: MakeTool) -> None:
    tools = [
        make_tool(ECHO, "echo", args_schema=TEXT_SCHEMA),
        make_tool(LOOP, "loop"),
        make_tool(LOOP, "slow", fuel=None, timeout=0.05),
        make_tool(MEMORY_BOMB, "bomb"),
        make_tool(TRAP, "trap"),
        make_tool(EXIT_3, "failing"),
        *builtin_tools(),
    ]
    plan = (
        '1. echo("hi")\n2. math("6 * 7")\n3. loop()\n4. slow()\n5. bomb()\n6. trap()\n'
        "7. failing()\n8. join()"
    )
    compiler = LLMCompiler(tools=tools, plan=plan, direct_join=True)

    result = await compiler.arun("Run every tool.")

    tasks = {task["tool"]: task for task in result.to_dict()["tasks"]}
    assert tasks["echo"]["status"] == "done"
    assert tasks["echo"]["output"] == {"echo": {"text": "hi"}}
    assert tasks["math"]["status"] == "done"
    assert tasks["math"]["output"] == 42.0
    for name in ["loop", "slow", "bomb", "trap", "failing"]:
        assert tasks[name]["status"] == "failed", name
    assert tasks["loop"]["error"].startswith("WasmOutOfFuelError: WASM tool 'loop' ran out")
    assert tasks["slow"]["error"].startswith("WasmTimeoutError: WASM tool 'slow' timed out")
    assert tasks["bomb"]["error"].startswith("WasmMemoryLimitError: WASM tool 'bomb' failed")
    assert tasks["trap"]["error"].startswith("WasmTrapError: WASM tool 'trap' trapped")
    assert tasks["failing"]["error"] == (
        "WasmExitError: WASM tool 'failing' exited with code 3. stderr: bad input: "
        "expected a number"
    )


def test_planner_sees_required_arguments(make_tool: MakeTool) -> None:
    echo = make_tool(ECHO, "echo", args_schema=TEXT_SCHEMA)
    compiler = LLMCompiler(tools=[echo], plan="1. echo()\n2. join()", direct_join=True)

    with pytest.raises(PlanError, match=re.escape("echo() is missing required argument(s): text")):
        compiler.invoke("Echo nothing.")


class CountingEngine(WasmEngine):
    """Engine without a ticker that sets ``all_running`` once ``expected`` calls run."""

    def __init__(self, expected: int) -> None:
        super().__init__(epoch_ticker=False)
        self.expected = expected
        self.all_running = threading.Event()

    @contextmanager
    def running(self) -> Iterator[None]:
        with super().running():
            if self.active_calls == self.expected:
                self.all_running.set()
            yield


async def test_wasm_calls_run_concurrently(make_tool: MakeTool) -> None:
    # No epoch tick happens before three endless loops run at once, so none
    # of them can end earlier. The ticks come from this coroutine on the event
    # loop, which needs the GIL while the three loops execute.
    engine = CountingEngine(expected=3)
    spin = make_tool(LOOP, "spin", engine=engine, fuel=None, timeout=engine.epoch_interval)
    echo = make_tool(ECHO, "echo", args_schema=TEXT_SCHEMA, engine=engine)
    plan = '1. spin()\n2. spin()\n3. spin()\n4. math("6 * 7")\n5. join()'
    compiler = LLMCompiler(tools=[spin, *builtin_tools()], plan=plan, direct_join=True)

    run = asyncio.create_task(compiler.arun("Spin three times."))
    reached = await asyncio.to_thread(engine.all_running.wait, GUARD)
    assert reached, "three WASM calls never ran at once"
    async with asyncio.timeout(GUARD):
        while not run.done():
            engine.increment_epoch()
            await asyncio.sleep(engine.epoch_interval)
    result = await run

    statuses = [(task["tool"], task["status"]) for task in result.to_dict()["tasks"]]
    assert statuses == [
        ("spin", "failed"),
        ("spin", "failed"),
        ("spin", "failed"),
        ("math", "done"),
    ]
    assert engine.active_calls == 0
    assert echo.invoke({"text": "after"}) == {"echo": {"text": "after"}}
