"""Checkpoint tokens: how a running task cooperates with pre-emption.

The executor gives every task a :class:`CheckpointToken`, reachable from the
task's code through :func:`current_checkpoint`. A task that calls
``await checkpoint()`` now and then can be paused there when more urgent work
needs its worker slot. It resumes where it stopped once a slot is free again,
so it is never restarted. A sync task calls :meth:`CheckpointToken.check`, which
raises :class:`Preempted` so the executor can restart it later.

Tasks that never call a checkpoint are restarted from scratch on pre-emption
if they are async and idempotent, and are never pre-empted otherwise.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable

__all__ = ["CheckpointToken", "Preempted", "checkpoint", "current_checkpoint"]

_current: contextvars.ContextVar[CheckpointToken | None] = contextvars.ContextVar(
    "dragonscale_checkpoint", default=None
)


class Preempted(Exception):
    """Raised by :meth:`CheckpointToken.check` in a task the executor wants to pre-empt."""


class CheckpointToken:
    """A running task's link to the executor's pre-emption requests.

    Attributes:
        requested: Whether the executor has asked the task to yield its slot.
        used: Whether the task has called a checkpoint, which shows the
            executor that it cooperates.
    """

    __slots__ = ("_on_pause", "node", "requested", "used")

    def __init__(self, on_pause: Callable[[CheckpointToken], asyncio.Future[None]]) -> None:
        self._on_pause = on_pause
        self.node: object = None  # the executor's record of the task it serves
        # A plain flag: worker threads only read it, and reading a bool
        # attribute is atomic in CPython.
        self.requested = False
        self.used = False

    def request(self) -> None:
        """Ask the task to pause or stop at its next checkpoint."""
        self.requested = True

    async def checkpoint(self) -> None:
        """Pause here if pre-emption was requested, until the executor resumes the task."""
        self.used = True
        if self.requested:
            self.requested = False
            await self._on_pause(self)

    def check(self) -> None:
        """Raise :class:`Preempted` if pre-emption was requested (for sync tasks).

        Raises:
            Preempted: The executor wants the worker slot; the task is run
                again from the start later, so it must be safe to repeat.
        """
        self.used = True
        if self.requested:
            raise Preempted("pre-empted for more urgent work")


def current_checkpoint() -> CheckpointToken | None:
    """Return the checkpoint token of the task running in this context, if any."""
    return _current.get()


async def checkpoint() -> None:
    """Pause the current task here if the executor asked it to yield its slot.

    Outside an executor task this does nothing, so code that calls it also
    runs on its own.

    Example:
        >>> async def crunch(items):
        ...     for item in items:
        ...         await checkpoint()
        ...         ...
    """
    token = _current.get()
    if token is not None:
        await token.checkpoint()


def set_current(token: CheckpointToken | None) -> contextvars.Token[CheckpointToken | None]:
    """Make ``token`` the current task's token; return what resets it."""
    return _current.set(token)
