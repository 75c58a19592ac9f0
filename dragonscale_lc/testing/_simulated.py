"""SimulatedChatModel: a scripted chat model with a real model's streaming latency."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field, model_validator

from ._scripted import ScriptedChatModel

__all__ = ["SimulatedChatModel"]


class SimulatedChatModel(ScriptedChatModel):
    """A scripted chat model that streams at a fixed speed and reports token usage.

    Replies come from ``replies`` as in :class:`ScriptedChatModel`. Each reply
    is cut into tokens of ``chars_per_token`` characters. The first token
    arrives ``time_to_first_token`` seconds after the call, and each further
    token ``1 / tokens_per_second`` seconds after the one before. ``invoke``
    and ``ainvoke`` take as long as streaming the whole reply.

    Token counts are estimates: output tokens are the streamed pieces, and
    input tokens are the prompt's characters divided by ``chars_per_token``,
    rounded up. The last chunk carries them as ``usage_metadata``.

    Example:
        >>> model = SimulatedChatModel(
        ...     replies=["Action: Finish(42)"], time_to_first_token=0.0, tokens_per_second=1e6
        ... )
        >>> reply = model.invoke("What is 6 times 7?")
        >>> reply.content, reply.usage_metadata["output_tokens"]
        ('Action: Finish(42)', 5)
    """

    time_to_first_token: float = Field(default=0.3, ge=0)
    """Seconds from the call to the first token."""
    tokens_per_second: float = Field(default=50.0, gt=0)
    """Tokens streamed per second after the first one."""
    chars_per_token: int = Field(default=4, ge=1)
    """Characters in each streamed token, and the divisor for the input token estimate."""

    @model_validator(mode="after")
    def _check_chunk_delay(self) -> SimulatedChatModel:
        if self.chunk_delay:
            raise ValueError(
                "SimulatedChatModel ignores chunk_delay; set time_to_first_token and "
                "tokens_per_second instead"
            )
        return self

    @property
    def _llm_type(self) -> str:
        return "simulated-chat-model"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        pieces = self._pieces(messages)
        for index, piece in enumerate(pieces):
            time.sleep(self._delay_before(index))
            chunk = self._chunk(messages, pieces, index)
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
        pieces = self._pieces(messages)
        for index, piece in enumerate(pieces):
            await asyncio.sleep(self._delay_before(index))
            chunk = self._chunk(messages, pieces, index)
            if run_manager is not None:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    def _pieces(self, messages: list[BaseMessage]) -> list[str]:
        text = self._next_reply(messages)
        size = self.chars_per_token
        # An empty reply still streams one empty token, so it arrives after the first-token delay.
        return [text[start : start + size] for start in range(0, len(text), size)] or [""]

    def _delay_before(self, index: int) -> float:
        return self.time_to_first_token if index == 0 else 1.0 / self.tokens_per_second

    def _chunk(
        self, messages: list[BaseMessage], pieces: list[str], index: int
    ) -> ChatGenerationChunk:
        usage = self._usage(messages, len(pieces)) if index == len(pieces) - 1 else None
        return ChatGenerationChunk(
            message=AIMessageChunk(content=pieces[index], usage_metadata=usage)
        )

    def _usage(self, messages: list[BaseMessage], output_tokens: int) -> UsageMetadata:
        prompt_chars = sum(len(message.text) for message in messages)
        input_tokens = math.ceil(prompt_chars / self.chars_per_token)
        return UsageMetadata(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )
