"""Mailbox: the queue and consumer task behind one async event subscriber."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._events import Event

__all__ = ["Mailbox"]


class Mailbox:
    """Events waiting for one async subscriber, and the task that hands them over.

    The consumer task passes the events to ``handle`` one at a time, in queue
    order. It starts on the running loop at the first :meth:`notify` and runs
    until :meth:`close` or a cancellation. A later :meth:`notify` starts a new
    one, so a mailbox can outlive the event loop that first consumed it.

    Args:
        handle: Awaited with each event. It must not raise.
        consumers: Set the consumer task is added to while it runs, so its
            owner can cancel and await it.
        name: Name of the consumer task, for debugging.
    """

    __slots__ = (
        "_busy",
        "_consumer",
        "_consumers",
        "_handle",
        "_idle_waiters",
        "_name",
        "_wakeup",
        "closed",
        "events",
    )

    def __init__(
        self,
        handle: Callable[[Event], Awaitable[None]],
        consumers: set[asyncio.Task[None]],
        name: str,
    ) -> None:
        self.events: deque[Event] = deque()
        self.closed = False
        self._handle = handle
        self._consumers = consumers
        self._name = name
        self._consumer: asyncio.Task[None] | None = None
        # Set while the consumer waits for an event, so notify() can wake it.
        self._wakeup: asyncio.Future[None] | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._busy = False

    @property
    def has_work(self) -> bool:
        """Whether events are queued or one is being handled."""
        return self._busy or bool(self.events)

    def notify(self) -> None:
        """Make the consumer handle the queued events, starting it if needed.

        Without a running event loop the events stay queued until the next
        call from inside one.
        """
        if _is_alive(self._consumer):
            self._wake()
        else:
            self._start()

    def close(self) -> None:
        """Discard the queued events and let the consumer end after its current event."""
        self.closed = True
        self.events.clear()
        self._wake()

    async def wait_idle(self) -> None:
        """Wait until the queue is empty and no event is being handled."""
        if not self.has_work:
            return
        if not _is_alive(self._consumer):
            self._start()

        idle = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(idle)
        await idle

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        self._wakeup = None
        consumer = loop.create_task(self._consume(), name=self._name)
        self._consumer = consumer
        self._consumers.add(consumer)
        consumer.add_done_callback(self._consumers.discard)

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        consumer = asyncio.current_task()
        assert consumer is not None  # a coroutine that a task runs
        try:
            while not self.closed:
                if not self.events:
                    _resolve(self._idle_waiters)
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    continue

                self._busy = True
                try:
                    await self._handle(self.events.popleft())
                finally:
                    self._busy = False
                if consumer.cancelling():
                    return  # the subscriber swallowed the cancellation meant for this task
        finally:
            # Also reached on cancellation: the next notify() or wait_idle()
            # finds no live consumer and starts one for the events still queued.
            self._wakeup = None
            if self._consumer is consumer:
                self._consumer = None
            _resolve(self._idle_waiters)

    def _wake(self) -> None:
        waiter, self._wakeup = self._wakeup, None
        # A future of a closed loop can no longer schedule its callbacks.
        if waiter is not None and not waiter.done() and not waiter.get_loop().is_closed():
            waiter.set_result(None)


def _is_alive(consumer: asyncio.Task[None] | None) -> bool:
    # A task of a loop that was closed without cancelling it never runs again.
    return consumer is not None and not consumer.done() and not consumer.get_loop().is_closed()


def _resolve(waiters: list[asyncio.Future[None]]) -> None:
    pending = list(waiters)
    waiters.clear()
    for waiter in pending:
        if not waiter.done():
            waiter.set_result(None)
