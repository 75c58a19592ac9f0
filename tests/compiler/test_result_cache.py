"""Result cache: a cacheable tool called again with the same arguments is not run again."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool, StructuredTool

from dragonscale_lc.compiler import LLMCompiler
from dragonscale_lc.compiler._result_cache import ResultCache
from dragonscale_lc.runtime import Cache
from dragonscale_lc.testing import ScriptedChatModel
from dragonscale_lc.tools import builtin_tools

CACHEABLE = {"dragonscale_cacheable": True}


def depth_tool(
    calls: Counter[str], *, cacheable: bool = True, fail_first: bool = False
) -> BaseTool:
    async def harbour_depth(harbour: str) -> float:
        """Return the depth in metres of a harbour."""
        calls[harbour] += 1
        if fail_first and calls[harbour] == 1:
            raise ConnectionError("depth service unavailable")
        return {"west": 12.0, "east": 9.5}[harbour]

    return StructuredTool.from_function(
        coroutine=harbour_depth, metadata=CACHEABLE if cacheable else None
    )


def replanning(first: str, second: str, **options: Any) -> LLMCompiler:
    planner = ScriptedChatModel(replies=[first, second])
    joiner = ScriptedChatModel(
        replies=["Thought: not enough.\nAction: Replan(check again)", "Action: Finish(done)"]
    )
    return LLMCompiler(model=planner, joiner_model=joiner, **options)


async def test_replan_repeating_call_runs_it_once() -> None:
    calls: Counter[str] = Counter()
    compiler = replanning(
        '1. harbour_depth("west")\n2. join()\n',
        '3. harbour_depth("west")\n4. math("$3 * 2")\n5. join()\n',
        tools=[depth_tool(calls), *builtin_tools()],
    )

    result = await compiler.arun("How deep is the west harbour, doubled?")

    assert calls == {"west": 1}
    assert result.report[3].output == 12.0
    assert result.report[4].output == 24.0


async def test_tool_not_marked_cacheable_runs_again() -> None:
    calls: Counter[str] = Counter()
    compiler = replanning(
        '1. harbour_depth("west")\n2. join()\n',
        '3. harbour_depth("west")\n4. join()\n',
        tools=[depth_tool(calls, cacheable=False)],
    )

    await compiler.arun("How deep is the west harbour?")

    assert calls == {"west": 2}


async def test_failed_call_runs_again_after_replan() -> None:
    calls: Counter[str] = Counter()
    compiler = replanning(
        '1. harbour_depth("west")\n2. join()\n',
        '3. harbour_depth("west")\n4. join()\n',
        tools=[depth_tool(calls, fail_first=True)],
    )

    result = await compiler.arun("How deep is the west harbour?")

    assert calls == {"west": 2}
    assert result.report[1].status.value == "failed"
    assert result.report[3].output == 12.0


async def test_concurrent_identical_async_calls_share_one_run() -> None:
    calls = 0
    release = asyncio.Event()

    async def slow_lookup(key: str) -> str:
        """Look a key up slowly."""
        nonlocal calls
        calls += 1
        await release.wait()
        return key.upper()

    async def opener() -> str:
        """Let the lookups finish."""
        await asyncio.sleep(0)
        release.set()
        return "open"

    tools = [
        StructuredTool.from_function(coroutine=slow_lookup, metadata=CACHEABLE),
        StructuredTool.from_function(coroutine=opener),
    ]
    plan = '1. slow_lookup("a")\n2. slow_lookup("a")\n3. slow_lookup("b")\n4. opener()\n5. join()'

    result = await LLMCompiler(tools=tools, plan=plan).arun("Look up a twice")

    assert calls == 2
    assert [result.report[n].output for n in (1, 2, 3)] == ["A", "A", "B"]


async def test_concurrent_identical_sync_calls_share_one_run() -> None:
    calls = 0
    lock = threading.Lock()

    def blocking_lookup(key: str) -> str:
        """Look a key up, blocking."""
        nonlocal calls
        with lock:
            calls += 1
        return key.upper()

    tool = StructuredTool.from_function(blocking_lookup, metadata=CACHEABLE)
    plan = "".join(f'{n}. blocking_lookup("a")\n' for n in range(1, 6)) + "6. join()"

    result = await LLMCompiler(tools=[tool], plan=plan).arun("Look up a five times")

    assert calls == 1
    assert {result.report[n].output for n in range(1, 6)} == {"A"}


async def test_store_keeps_outputs_across_runs(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    plan = '1. harbour_depth("east")\n2. join()'

    for _ in range(2):
        store = Cache(path=tmp_path / "results.sqlite", table="results")
        compiler = LLMCompiler(tools=[depth_tool(calls)], plan=plan, result_cache=store)
        result = await compiler.arun("How deep is the east harbour?")
        store.close()
        assert result.answer == "9.5"

    assert calls == {"east": 1}


def test_arguments_that_are_not_json_are_not_cached() -> None:
    cache = ResultCache()

    assert cache.claim("tool", {"value": object()}) == (None, None)
    assert cache.claim("tool", {"value": float("nan")}) == (None, None)


def test_builtin_tools_are_cacheable() -> None:
    assert all(tool.metadata == CACHEABLE for tool in builtin_tools())


@pytest.mark.parametrize("error", [asyncio.CancelledError(), ValueError("bad")])
def test_waiters_get_error_and_key_is_forgotten(error: BaseException) -> None:
    cache = ResultCache()
    key, _ = cache.claim("tool", {"x": 1})
    assert key is not None
    waiting_key, waiting = cache.claim("tool", {"x": 1})
    assert waiting_key is None

    cache.settle(key, error=error)

    with pytest.raises(Exception, match=r"cancelled before it finished|bad"):
        waiting.result()
    assert cache.claim("tool", {"x": 1})[0] is not None
