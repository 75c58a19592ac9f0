"""Progress events of a compiler run, delivered in order to their listeners.

A run's progress (a task parsed, ready, started, completed, pre-empted or
retried, a plan completed, a join decided) reaches two kinds of listener. A
plain callback gets each event at once, inside the call that publishes it.
LangChain callback handlers get each one as a custom event named
``dragonscale.<topic>``, so ``astream_events`` shows them among the chat
model's tokens and the tools' start and end events.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackManager
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_async_callback_manager_for_config

from ._joiner import Finish, JoinDecision, Replan
from ._result import to_jsonable

__all__ = ["CUSTOM_EVENT_PREFIX", "Emit", "Progress", "decision_dict", "event_payload"]

CUSTOM_EVENT_PREFIX = "dragonscale."

Emit = Callable[[str, dict[str, Any]], None]
"""Receives progress events: a topic such as ``task.completed`` and its data."""


class Progress:
    """Publish a run's progress events to a callback and to LangChain's handlers.

    ``accept``, if given, filters the events both kinds of listener get.
    Custom events go out in the order they were published. Dispatching one
    means awaiting the handlers, so events queue up and a background flush
    sends them. :meth:`flush` lets a caller wait until every event published
    so far is out: a tool call does that before it starts, so a task's
    ``dragonscale.task.started`` event comes before its ``on_tool_start``.
    """

    def __init__(
        self,
        config: RunnableConfig,
        emit: Emit | None = None,
        *,
        accept: Callable[[str, dict[str, Any]], bool] | None = None,
    ) -> None:
        self._emit = emit
        self._accept = accept
        manager = get_async_callback_manager_for_config(config)
        # Custom events belong to a parent run, which exists only inside a
        # Runnable call, so a bare arun() sends none.
        self._manager: AsyncCallbackManager | None = (
            manager if manager.parent_run_id is not None and manager.handlers else None
        )
        self._pending: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._lock = asyncio.Lock()
        self._flushing: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """Whether anyone listens."""
        return self._emit is not None or self._manager is not None

    @property
    def sends_custom_events(self) -> bool:
        """Whether LangChain callback handlers get the events as custom events."""
        return self._manager is not None

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        """Hand one event to the callback now and queue it as a custom event."""
        if self._accept is not None and not self._accept(topic, data):
            return
        if self._emit is not None:
            self._emit(topic, data)
        if self._manager is None:
            return
        self._pending.append((topic, event_payload(data)))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Dispatch every queued custom event, oldest first."""
        manager = self._manager
        if manager is None:
            return
        # Taken even with nothing queued: a flush in progress may be sending
        # the last event, and the caller must wait until it is out.
        async with self._lock:
            while self._pending:
                topic, data = self._pending.popleft()
                await manager.on_custom_event(
                    CUSTOM_EVENT_PREFIX + topic, data, run_id=manager.parent_run_id
                )

    async def aclose(self) -> None:
        """Dispatch what is still queued, before the run's own end event."""
        await self.flush()
        if self._flushing is not None:
            await self._flushing


def event_payload(data: dict[str, Any]) -> dict[str, Any]:
    """Return an event's data as JSON-ready values: errors and decisions become text and dicts."""
    payload: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, BaseException):
            payload[key] = f"{type(value).__name__}: {value}"
        elif isinstance(value, Finish | Replan):
            payload[key] = decision_dict(value)
        else:
            payload[key] = to_jsonable(value)
    return payload


def decision_dict(decision: JoinDecision) -> dict[str, str]:
    """Return a join decision as plain data."""
    if isinstance(decision, Finish):
        return {"action": "finish", "answer": decision.answer, "thought": decision.thought}
    return {"action": "replan", "reason": decision.reason, "thought": decision.thought}
