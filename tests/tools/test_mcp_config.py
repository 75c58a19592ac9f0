"""McpServerConfig: fields, checks and the values derived from them."""

from __future__ import annotations

import pytest

from dragonscale_lc import ConfigurationError
from dragonscale_lc.tools.mcp import McpServerConfig


def test_stdio_config_defaults() -> None:
    config = McpServerConfig(name="files", command="mcp-files", args=["--root", "."])

    assert config.transport == "stdio"
    assert config.args == ("--root", ".")
    assert config.resource_key == "mcp:files"
    assert config.timeout_for("read") is None
    assert config.max_concurrency is None
    assert config.describe() == "mcp-files --root ."


def test_http_config_transport() -> None:
    config = McpServerConfig(name="web", url="http://127.0.0.1:8000/mcp")

    assert config.transport == "streamable_http"
    assert config.describe() == "http://127.0.0.1:8000/mcp"


def test_tool_timeout_overrides_server_timeout() -> None:
    config = McpServerConfig(
        name="files", command="mcp-files", timeout=10, tool_timeouts={"slow": 60}
    )

    assert config.timeout_for("slow") == 60
    assert config.timeout_for("fast") == 10


def test_server_env_copies_only_passed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAGONSCALE_TEST_KEY", "from-parent")
    monkeypatch.setenv("DRAGONSCALE_TEST_SECRET", "hidden")
    monkeypatch.delenv("DRAGONSCALE_TEST_UNSET", raising=False)
    config = McpServerConfig(
        name="files",
        command="mcp-files",
        env={"MODE": "test"},
        pass_env=["DRAGONSCALE_TEST_KEY", "DRAGONSCALE_TEST_UNSET"],
    )

    assert config.server_env() == {"DRAGONSCALE_TEST_KEY": "from-parent", "MODE": "test"}


def test_env_wins_over_passed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAGONSCALE_TEST_KEY", "from-parent")
    config = McpServerConfig(
        name="files",
        command="mcp-files",
        env={"DRAGONSCALE_TEST_KEY": "set"},
        pass_env=["DRAGONSCALE_TEST_KEY"],
    )

    assert config.server_env() == {"DRAGONSCALE_TEST_KEY": "set"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "a b", "command": "x"}, r"invalid MCP server name 'a b': use letters"),
        ({"name": "a"}, r"'a' sets neither of command and url"),
        ({"name": "a", "command": "x", "url": "http://h/mcp"}, r"sets both of command and url"),
        ({"name": "a", "command": ""}, r"invalid command '': pass the executable"),
        ({"name": "a", "url": "ftp://h/mcp"}, r"invalid url 'ftp://h/mcp': pass an http://"),
        (
            {"name": "a", "url": "http://h/mcp", "args": ["x"]},
            r"sets url and also args, env, pass_env or cwd",
        ),
        ({"name": "a", "command": "x", "args": "--flag"}, r"args must be a list of strings"),
        ({"name": "a", "command": "x", "args": [1]}, r"args must contain strings only, got 1"),
        ({"name": "a", "command": "x", "pass_env": "HOME"}, r"pass_env must be a list"),
        ({"name": "a", "command": "x", "env": {"K": 1}}, r"env must map variable names"),
        ({"name": "a", "command": "x", "max_concurrency": 0}, r"max_concurrency must be an int"),
        ({"name": "a", "command": "x", "max_concurrency": True}, r"max_concurrency must be"),
        ({"name": "a", "command": "x", "timeout": 0}, r"timeout must be a positive number"),
        ({"name": "a", "command": "x", "timeout": float("inf")}, r"timeout must be a positive"),
        ({"name": "a", "command": "x", "connect_timeout": -1}, r"connect_timeout must be"),
        (
            {"name": "a", "command": "x", "tool_timeouts": {"slow": "10"}},
            r"tool_timeouts\['slow'\] must be a positive number of seconds, got '10'",
        ),
    ],
)
def test_invalid_config_rejected(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        McpServerConfig(**options)  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    config = McpServerConfig(name="files", command="mcp-files", tool_timeouts={"slow": 5})

    with pytest.raises(AttributeError):
        config.timeout = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.tool_timeouts["slow"] = 1  # type: ignore[index]
