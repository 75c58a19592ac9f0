"""ScriptedChatModel: a chat model whose replies come from a script."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeAlias

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from .._errors import UsageError

__all__ = ["Reply", "ScriptedChatModel"]

Reply: TypeAlias = str | Callable[[list[BaseMessage]], str]
"""One scripted reply: the text itself, or a function of the prompt messages that returns it."""

# Splits after each run of white space, so the chunks join back to the exact text.
_CHUNK = re.compile(r"\S+\s*|\s+")


class ScriptedChatModel(BaseChatModel):
    """A chat model that replies from a script instead of calling an API.

    Each call uses the next entry of ``replies``. A string entry is the reply.
    A callable entry receives the prompt messages and returns the reply, so it
    can answer from what the prompt contains. Streaming cuts the reply after
    each run of white space and waits ``chunk_delay`` seconds before every
    chunk. The model does not support tool calling, so the compiler's joiner
    asks it for the text format (``Action: Finish(<answer>)``).

    Calls take replies in the order they are made; with ``repeat=True`` the
    script starts over after its last reply, otherwise one call too many
    raises :class:`~dragonscale_lc.UsageError`.

    Example:
        >>> from dragonscale_lc import LLMCompiler, builtin_tools
        >>> from dragonscale_lc.testing import ScriptedChatModel
        >>> plan = '1. math("6 * 7")\\n2. join()'
        >>> model = ScriptedChatModel(replies=[plan, "Action: Finish(42)"])
        >>> LLMCompiler(model=model, tools=builtin_tools()).invoke("What is 6 times 7?").content
        '42'
    """

    replies: Sequence[Reply] = Field(min_length=1)
    """The script: one entry per call, in call order."""
    repeat: bool = False
    """Start the script over after its last reply instead of raising."""
    chunk_delay: float = Field(default=0.0, ge=0)
    """Seconds to wait before each streamed chunk."""

    _calls: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def calls(self) -> int:
        """How many replies the model has given so far."""
        return self._calls

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(content=self._next_reply(messages))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in _CHUNK.findall(self._next_reply(messages)):
            if self.chunk_delay:
                time.sleep(self.chunk_delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for piece in _CHUNK.findall(self._next_reply(messages)):
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    def _next_reply(self, messages: list[BaseMessage]) -> str:
        """Take the next script entry and return its text for ``messages``."""
        # A lock, because batch calls run in worker threads.
        with self._lock:
            index = self._calls
            if index >= len(self.replies) and not self.repeat:
                raise UsageError(
                    f"ScriptedChatModel has no reply left for call {index + 1}: the script "
                    f"has {len(self.replies)} replies. Add replies or pass repeat=True"
                )
            self._calls += 1

        reply = self.replies[index % len(self.replies)]
        text = reply(messages) if callable(reply) else reply
        if not isinstance(text, str):
            raise UsageError(
                f"reply {index % len(self.replies) + 1} of the ScriptedChatModel script "
                f"returned {type(text).__name__}, not str"
            )
        return text
