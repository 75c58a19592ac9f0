"""Tool configuration files: declare WASM modules, MCP servers and Python tools in TOML.

A file has up to three tables, each with one sub-table per tool or server::

    [python.lookup]
    entry = "my_package.tools:lookup"      # a BaseTool, or a function to wrap;
                                           # this file's directory is searched first

    [wasm.slugify]
    module = "wasm/slugify.wasm"           # relative to this file
    description = "Turn a title into a URL slug."
    args_schema = { type = "object", required = ["title"], properties.title.type = "string" }
    fuel = 50_000_000
    timeout = 2.0
    memory_limit = 16_777_216
    env = ["LANG"]

    [mcp.search]
    command = "python"
    args = ["servers/search.py"]           # run in this file's directory
    pass_env = ["SEARCH_API_KEY"]
    max_concurrency = 4
    timeout = 10.0

    [mcp.weather]
    url = "http://127.0.0.1:8000/mcp"

MCP entries take the fields of
:class:`~dragonscale_lc.tools.mcp.McpServerConfig` except ``name``, which is
the table's key. A server command runs in the configuration file's directory
unless ``cwd`` names another, so relative paths in ``args`` work.

Every entry is checked when the file is loaded; an invalid one raises
:class:`~dragonscale_lc.ConfigurationError` naming the file, the entry and
what is wrong.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from .mcp import McpServerConfig

__all__ = [
    "PythonToolEntry",
    "ToolsConfig",
    "WasmToolEntry",
    "as_tools_config",
    "load_tools_config",
]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EntryT = TypeVar("EntryT", bound=_Entry)


class PythonToolEntry(_Entry):
    """A tool importable from Python: ``package.module:attribute``."""

    entry: str = Field(description="Import path of a BaseTool or a function, as module:attribute.")
    name: str | None = Field(default=None, description="Name in plans, if not the tool's own.")
    description: str | None = Field(default=None, description="Description for the planner.")

    @field_validator("entry")
    @classmethod
    def _check_entry(cls, value: str) -> str:
        module, _, attribute = value.partition(":")
        if not module or not attribute:
            raise ValueError(f"{value!r} is not of the form 'package.module:attribute'")
        return value


class WasmToolEntry(_Entry):
    """A WASI module run by wasmtime; the fields are those of ``wasm_tool``."""

    module: str = Field(description="Path of the .wasm file, relative to the configuration file.")
    description: str
    args_schema: dict[str, Any]
    name: str | None = None
    fuel: int | None = Field(default=None, gt=0)
    timeout: float | None = Field(default=None, gt=0)
    memory_limit: int | None = Field(default=None, gt=0)
    max_output: int | None = Field(default=None, gt=0)
    env: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolsConfig:
    """The validated contents of a tool configuration file.

    Attributes:
        path: The file, whose directory relative paths start from.
        python: Python tool entries by name.
        wasm: WASM tool entries by name.
        mcp: MCP server settings by name.
    """

    path: Path
    python: Mapping[str, PythonToolEntry] = field(default_factory=dict)
    wasm: Mapping[str, WasmToolEntry] = field(default_factory=dict)
    mcp: Mapping[str, McpServerConfig] = field(default_factory=dict)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[list[BaseTool]]:
        """Start the MCP servers and yield every tool of the file; close the servers after.

        Each server gets one session for the whole ``async with`` block.

        Raises:
            ConfigurationError: A local tool cannot be loaded.
            McpConnectionError: A server cannot be started or reached.
        """
        tools = self.local_tools()
        if not self.mcp:
            yield tools
            return
        from .mcp import McpServers  # noqa: PLC0415 - MCP loads only when configured

        async with McpServers(self.mcp.values()) as servers:
            yield [*tools, *servers.tools]

    def local_tools(self) -> list[BaseTool]:
        """Return the Python and WASM tools; they need no connection.

        Raises:
            ConfigurationError: An entry point cannot be imported, or a WASM
                module cannot be read or compiled.
        """
        tools = [self._python_tool(name, entry) for name, entry in self.python.items()]
        tools.extend(self._wasm_tool(name, entry) for name, entry in self.wasm.items())
        return tools

    def _python_tool(self, name: str, entry: PythonToolEntry) -> BaseTool:
        target = _import(entry.entry, self._where("python", name), self.path.parent)
        if isinstance(target, BaseTool):
            if entry.name is None and entry.description is None:
                return target
            update = {"name": entry.name or target.name}
            if entry.description is not None:
                update["description"] = entry.description
            return target.model_copy(update=update)
        if not callable(target):
            raise ConfigurationError(
                f"{self._where('python', name)}: {entry.entry} is a "
                f"{type(target).__name__}, not a tool or a function; point entry at one"
            )
        return _function_tool(target, name=entry.name or name, description=entry.description)

    def _wasm_tool(self, name: str, entry: WasmToolEntry) -> BaseTool:
        # Imported here: wasmtime is an optional extra.
        from .wasm import wasm_tool  # noqa: PLC0415

        module = Path(entry.module)
        if not module.is_absolute():
            module = self.path.parent / module
        limits = {
            key: value
            for key, value in entry.model_dump(
                include={"fuel", "timeout", "memory_limit", "max_output"}
            ).items()
            if value is not None
        }
        try:
            return wasm_tool(
                module,
                name=entry.name or name,
                description=entry.description,
                args_schema=entry.args_schema,
                env=entry.env,
                **limits,
            )
        except ConfigurationError as error:
            raise ConfigurationError(f"{self._where('wasm', name)}: {error}") from error

    def _where(self, table: str, name: str) -> str:
        return f"{self.path}: [{table}.{name}]"


def as_tools_config(source: object) -> ToolsConfig | None:
    """Return ``source`` as a loaded configuration: load a path, pass a ``ToolsConfig`` through.

    Raises:
        ConfigurationError: ``source`` is neither, or the file is invalid.
    """
    if source is None or isinstance(source, ToolsConfig):
        return source
    if isinstance(source, str | PathLike):
        return load_tools_config(source)
    raise ConfigurationError(
        f"tools_config must be a path to a TOML file or a ToolsConfig, got {type(source).__name__}"
    )


def load_tools_config(path: str | PathLike[str]) -> ToolsConfig:
    """Read and check a tool configuration file.

    Raises:
        ConfigurationError: The file cannot be read, is not TOML, has an
            unknown table, or an entry is invalid; the message names the file,
            the entry and the reason.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(
            f"cannot read tool configuration {str(path)!r}: {error.strerror or error}"
        ) from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path}: invalid TOML: {error}") from error
    unknown = sorted(set(data) - {"python", "wasm", "mcp"})
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown table(s) {', '.join(unknown)}; the tables are python, wasm and mcp"
        )
    return ToolsConfig(
        path=path,
        python=_entries(path, data, "python", PythonToolEntry),
        wasm=_entries(path, data, "wasm", WasmToolEntry),
        mcp=_mcp_servers(path, _tables(path, data, "mcp")),
    )


def _mcp_servers(path: Path, tables: Mapping[str, Mapping[str, Any]]) -> dict[str, McpServerConfig]:
    from .mcp import McpServerConfig  # noqa: PLC0415 - MCP loads only when configured

    servers = {}
    for name, table in tables.items():
        settings = dict(table)
        if "name" in settings:
            raise ConfigurationError(
                f"{path}: [mcp.{name}]: name is the table's key; remove the name field"
            )
        cwd = Path(settings.pop("cwd", path.parent))
        if settings.get("command") is not None:
            settings["cwd"] = str(cwd if cwd.is_absolute() else path.parent / cwd)
        known = {item.name for item in dataclasses.fields(McpServerConfig)} - {"name"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigurationError(
                f"{path}: [mcp.{name}]: unknown field(s) {', '.join(unknown)}; "
                f"the fields are {', '.join(sorted(known))}"
            )
        try:
            servers[name] = McpServerConfig(name=name, **settings)
        except ConfigurationError as error:
            raise ConfigurationError(f"{path}: [mcp.{name}]: {error}") from None
    return servers


def _tables(path: Path, data: Mapping[str, Any], table: str) -> dict[str, Mapping[str, Any]]:
    section = data.get(table, {})
    if not isinstance(section, Mapping):
        raise ConfigurationError(f"{path}: [{table}] must be a table of named entries")
    for name, entry in section.items():
        if not isinstance(entry, Mapping):
            raise ConfigurationError(
                f"{path}: {table}.{name} must be a table such as [{table}.{name}], "
                f"got {type(entry).__name__}"
            )
    return dict(section)


def _entries(
    path: Path, data: Mapping[str, Any], table: str, model: type[EntryT]
) -> dict[str, EntryT]:
    entries = {}
    for name, raw in _tables(path, data, table).items():
        try:
            entries[name] = model.model_validate(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or 'entry'}: {problem['msg']}"
                for problem in error.errors()
            )
            raise ConfigurationError(f"{path}: [{table}.{name}]: {problems}") from None
    return entries


def _import(entry: str, where: str, directory: Path) -> Any:
    """Import ``module:attribute``, looking in ``directory`` before the import path."""
    module_name, _, attribute = entry.partition(":")
    # The file's directory comes first only for this import, so a module
    # next to the configuration file is found wherever the program runs.
    sys.path.insert(0, str(directory))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(
            f"{where}: cannot import {module_name!r}: {error}. Put the module next to the "
            "configuration file or install it"
        ) from error
    finally:
        sys.path.remove(str(directory))
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(
                f"{where}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return target


def _function_tool(function: Callable[..., Any], *, name: str, description: str | None) -> BaseTool:
    if inspect.iscoroutinefunction(function):
        return StructuredTool.from_function(coroutine=function, name=name, description=description)
    return StructuredTool.from_function(function, name=name, description=description)
