"""BuiltinTool: the StructuredTool behind every built-in tool."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import StructuredTool, ToolException
from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = ["BuiltinTool"]


class BuiltinTool(StructuredTool):
    """StructuredTool whose reply to a ``ToolCall`` is a message a model can read.

    Called with plain arguments, as the compiler calls it, the tool returns its
    value or raises, and the compiler records the error as a failed task.
    Called with a ``ToolCall``, as a chat model's agent loop calls it:

    - a list output becomes JSON text, with the list kept as the artifact.
      LangChain would pass each string as its own content block, and
      ``ToolMessage.text`` joins ``["de", "fr", "it"]`` into ``defrit``.
    - a ``ToolException`` or invalid arguments become a ``ToolMessage`` with
      status ``"error"`` and the error's text, so the model can correct its call.
      LangGraph's ``ToolNode`` (1.2) re-raises a ``ToolException`` by default,
      which would end the graph.
    """

    def run(
        self,
        tool_input: str | dict[str, Any],
        *args: Any,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        try:
            output = super().run(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        except (ToolException, ValidationError) as error:
            if tool_call_id is None:
                raise
            return self._error_message(error, tool_call_id)
        return _list_as_json(output)

    async def arun(
        self,
        tool_input: str | dict[str, Any],
        *args: Any,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        try:
            output = await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        except (ToolException, ValidationError) as error:
            if tool_call_id is None:
                raise
            return self._error_message(error, tool_call_id)
        return _list_as_json(output)

    def _error_message(self, error: Exception, tool_call_id: str) -> ToolMessage:
        if isinstance(error, ValidationError):
            problems = "; ".join(_describe(problem) for problem in error.errors())
            text = f"Invalid arguments for {self.name}: {problems}. Fix them and call it again."
        else:
            text = str(error)
        return ToolMessage(content=text, name=self.name, tool_call_id=tool_call_id, status="error")


def _describe(problem: ErrorDetails) -> str:
    # Positions read as values[1] rather than pydantic's values.1.
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
    text = f"{path.lstrip('.') or 'input'}: {problem['msg']}"
    if problem["type"] == "missing":
        return text
    input_repr = repr(problem["input"])
    if len(input_repr) > 60:
        input_repr = input_repr[:59] + "…"
    return f"{text}, got {input_repr}"


def _list_as_json(output: Any) -> Any:
    if not isinstance(output, ToolMessage) or not isinstance(output.content, list):
        return output
    return output.model_copy(
        update={
            "content": json.dumps(output.content, ensure_ascii=False),
            "artifact": output.content,
        }
    )
