"""Planner: stream a chat model's plan into the parser, task by task."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig

from ._parser import StreamingPlanParser
from ._plan import PlanTask

__all__ = ["Planner", "PlannerModelError"]


class Planner:
    """Ask a chat model for a plan and hand each task over as soon as it is parsed."""

    def __init__(self, model: BaseChatModel) -> None:
        self.model = model

    async def astream_plan(
        self,
        messages: Sequence[BaseMessage],
        parser: StreamingPlanParser,
        on_task: Callable[[PlanTask], None],
        config: RunnableConfig | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> AIMessageChunk | None:
        """Stream the model's reply into ``parser``, calling ``on_task`` for every task.

        Returns the whole reply as one message (its ``usage_metadata`` counts
        the planner's tokens), or ``None`` if the model sent nothing. Text after
        ``join()`` is still read, so that usage arrives, and is kept in
        ``parser.trailing_text``. When ``stop()`` returns true the stream is
        abandoned, so a run that has already failed wastes no more tokens.
        """
        reply: AIMessageChunk | None = None
        stream = aiter(self.model.astream(list(messages), config))
        while True:
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                break
            except Exception as error:
                raise PlannerModelError(error) from error
            reply = chunk if reply is None else reply + chunk
            for task in parser.feed(chunk.text):
                on_task(task)
            if stop is not None and stop():
                closing = getattr(stream, "aclose", None)
                if closing is not None:
                    await closing()
                return reply
        for task in parser.close():
            on_task(task)
        return reply


class PlannerModelError(Exception):
    """The planner model's stream raised; ``error`` is what it raised.

    It separates the model's failures from those of the ``on_task`` callback,
    which are the caller's own.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error
