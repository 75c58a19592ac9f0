"""ToolBox: the tools a plan may call, turned into runtime tasks."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.tools import BaseTool, StructuredTool, Tool

from .._errors import ConfigurationError, PlanError
from ..runtime import Task
from ._plan import PlanTask
from ._result_cache import ResultCache, is_cacheable

__all__ = ["ToolBox"]

JOIN = "join"


class ToolBox:
    """Tools by name, described for the planner and called through LangChain.

    Plain callables are wrapped with ``StructuredTool.from_function``, so their
    docstrings and type hints describe them to the planner.

    A tool may declare worker-pool keys for its tasks besides its name in
    ``metadata["dragonscale_resources"]`` (a string or a list of strings, such
    as ``"mcp:search"`` for every tool of one MCP server), and caps for keys in
    ``metadata["dragonscale_resource_limits"]`` (``{"mcp:search": 2}``).

    Raises:
        ConfigurationError: No tools, two tools with one name, a tool named
            ``join`` (the plan's end marker), invalid resource metadata, or
            two tools that declare different caps for one key.
    """

    def __init__(self, tools: Iterable[BaseTool | Callable[..., Any]]) -> None:
        self._tools: dict[str, BaseTool] = {}
        for item in tools:
            tool = item if isinstance(item, BaseTool) else _as_tool(item)
            if tool.name in self._tools:
                raise ConfigurationError(
                    f"two tools are named {tool.name!r}; tool names must be unique"
                )
            if tool.name == JOIN:
                raise ConfigurationError("a tool cannot be named 'join': plans use join() to end")
            self._tools[tool.name] = tool
        self._resources = {name: _resources(tool) for name, tool in self._tools.items()}
        self._limits = _resource_limits(self._tools.values())
        if not self._tools:
            raise ConfigurationError(
                "the compiler needs at least one tool: pass tools=[...], for example "
                "dragonscale_lc.tools.builtin_tools()"
            )

    @property
    def names(self) -> list[str]:
        """Names of the tools, in the order they were given."""
        return list(self._tools)

    @property
    def resource_limits(self) -> dict[str, int]:
        """Caps per worker-pool key that the tools declare in their metadata."""
        return dict(self._limits)

    def __getitem__(self, name: str) -> BaseTool:
        return self._tools[name]

    def describe(self) -> str:
        """Return a numbered description of every tool for the planner prompt."""
        entries = [
            f"{index}. {_signature(tool)}\n{tool.description.strip()}"
            for index, tool in enumerate(self._tools.values(), start=1)
        ]
        return "\n\n".join(entries)

    def make_task(
        self,
        plan_task: PlanTask,
        config: RunnableConfig,
        *,
        timeout: float | None = None,
        before_call: Callable[[], Coroutine[Any, Any, None]] | None = None,
        results: ResultCache | None = None,
    ) -> Task:
        """Return the runtime task that calls ``plan_task``'s tool with the run's config.

        Positional arguments are matched to the tool's parameters here, so the
        task's keyword arguments are exactly the tool's input. ``before_call``
        is awaited on the event loop before each call of the tool, sync tools
        included. With ``results``, a cacheable tool's call returns the output
        of an earlier identical call instead of running again.

        Raises:
            PlanError: The call passes more positional arguments than the tool
                has parameters, or one argument twice.
        """
        tool = self._tools[plan_task.tool]
        tool_config = patch_config(config, run_name=tool.name)
        tool_config["metadata"] = {
            **tool_config.get("metadata", {}),
            "dragonscale_task_id": plan_task.id,
        }

        cache = results if results is not None and is_cacheable(tool) else None

        async def call_async(**tool_input: Any) -> Any:
            if before_call is not None:
                await before_call()
            if cache is None:
                return await tool.ainvoke(tool_input, config=tool_config)
            key, earlier = cache.claim(tool.name, tool_input)
            if key is None and earlier is not None:
                # Shielded: a cancelled waiter must not cancel the call it waits for.
                return await asyncio.shield(asyncio.wrap_future(earlier))
            with cache.settling(key) as keep:
                return keep(await tool.ainvoke(tool_input, config=tool_config))

        loop = asyncio.get_running_loop() if before_call is not None else None

        def call_sync(**tool_input: Any) -> Any:
            if before_call is not None and loop is not None:
                # This runs in a worker thread; the loop runs before_call.
                asyncio.run_coroutine_threadsafe(before_call(), loop).result()
            if cache is None:
                return tool.invoke(tool_input, config=tool_config)
            key, earlier = cache.claim(tool.name, tool_input)
            if key is None and earlier is not None:
                return earlier.result()
            with cache.settling(key) as keep:
                return keep(tool.invoke(tool_input, config=tool_config))

        # A sync-only tool's ainvoke would run in the event loop's small default
        # thread pool. Calling invoke puts it in the executor's own worker
        # threads instead, so max_concurrency applies to sync and async tools alike.
        call = call_async if _has_async_implementation(tool) else call_sync
        return Task(
            id=plan_task.id,
            fn=call,
            kwargs=_tool_input(tool, plan_task.args, plan_task.kwargs),
            name=tool.name,
            timeout=timeout,
            resources=self._resources[tool.name],
        )


def _as_tool(fn: Callable[..., Any]) -> BaseTool:
    if inspect.iscoroutinefunction(fn):
        return StructuredTool.from_function(coroutine=fn)
    return StructuredTool.from_function(fn)


def _resources(tool: BaseTool) -> tuple[str, ...]:
    keys = (tool.metadata or {}).get("dragonscale_resources", ())
    if isinstance(keys, str):
        keys = (keys,)
    if not isinstance(keys, list | tuple) or not all(isinstance(key, str) and key for key in keys):
        raise ConfigurationError(
            f"tool {tool.name!r} has invalid metadata['dragonscale_resources'] {keys!r}; "
            "pass a string or a list of non-empty strings, such as ['mcp:search']"
        )
    return tuple(keys)


def _resource_limits(tools: Iterable[BaseTool]) -> dict[str, int]:
    limits: dict[str, int] = {}
    declared_by: dict[str, str] = {}
    for tool in tools:
        caps = (tool.metadata or {}).get("dragonscale_resource_limits", {})
        if not isinstance(caps, Mapping):
            raise ConfigurationError(
                f"tool {tool.name!r} has invalid metadata['dragonscale_resource_limits'] "
                f"{caps!r}; pass a dict of key to cap, such as {{'mcp:search': 2}}"
            )
        for key, cap in caps.items():
            if key in limits and limits[key] != cap:
                raise ConfigurationError(
                    f"tools {declared_by[key]!r} and {tool.name!r} declare different caps "
                    f"for key {key!r} ({limits[key]} and {cap}); give every tool of one "
                    "key the same cap"
                )
            limits[key] = cap
            declared_by.setdefault(key, tool.name)
    return limits


def _has_async_implementation(tool: BaseTool) -> bool:
    coroutine = getattr(tool, "coroutine", None)
    if coroutine is not None:
        return True
    if isinstance(tool, StructuredTool | Tool):
        return False
    return type(tool)._arun is not BaseTool._arun


def _signature(tool: BaseTool) -> str:
    params = []
    for name, schema in tool.args.items():
        kind = schema.get("type", "any") if isinstance(schema, Mapping) else "any"
        default = f"={json.dumps(schema['default'])}" if "default" in schema else ""
        params.append(f"{name}: {kind}{default}")
    return f"{tool.name}({', '.join(params)})"


def _tool_input(tool: BaseTool, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Map a plan call's arguments onto the tool's parameter names and check them."""
    names = list(tool.args)
    if len(args) > len(names):
        expected = ", ".join(names) or "none"
        raise PlanError(
            f"{tool.name}() takes {len(names)} positional argument(s) ({expected}) "
            f"but the call passes {len(args)}"
        )
    tool_input = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in tool.args:
            raise PlanError(
                f"{tool.name}() has no parameter {key!r}; its parameters are: {', '.join(names)}"
            )
        if key in tool_input:
            raise PlanError(f"{tool.name}() gets two values for argument {key!r}")
        tool_input[key] = value
    missing = [name for name in _required(tool) if name not in tool_input]
    if missing:
        raise PlanError(f"{tool.name}() is missing required argument(s): {', '.join(missing)}")
    return tool_input


def _required(tool: BaseTool) -> list[str]:
    # A JSON Schema given as a dict (WASM and MCP tools) is not a pydantic
    # model, and get_input_schema() would drop its "required" list.
    if isinstance(tool.args_schema, dict):
        schema = tool.args_schema
    else:
        schema = tool.get_input_schema().model_json_schema()  # type: ignore[union-attr]
    return [name for name in schema.get("required", []) if name in tool.args]
