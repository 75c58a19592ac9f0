"""Dispatch strategies: the order in which ready tasks get free worker slots."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from .._errors import UsageError

__all__ = ["DispatchKey", "Strategy", "dispatch_key"]

DispatchKey = Callable[[int, float], Any]
"""Maps a ready task's effective priority and upward rank to a sort key; smaller runs first."""


class Strategy(enum.Enum):
    """Built-in orders for the ready queue; ties always go to the task added first.

    ``CRITICAL_PATH`` runs higher user priority first, then higher upward rank
    (tasks on the critical path). ``PRIORITY`` uses the user priority alone,
    ``FIFO`` the order in which tasks became known.
    """

    CRITICAL_PATH = "critical_path"
    PRIORITY = "priority"
    FIFO = "fifo"


def _critical_path(priority: int, rank: float) -> tuple[int, float]:
    return (-priority, -rank)


def _priority(priority: int, rank: float) -> int:
    return -priority


def _fifo(priority: int, rank: float) -> int:
    return 0


_KEYS: dict[Strategy, DispatchKey] = {
    Strategy.CRITICAL_PATH: _critical_path,
    Strategy.PRIORITY: _priority,
    Strategy.FIFO: _fifo,
}


def dispatch_key(strategy: Strategy | str | DispatchKey) -> DispatchKey:
    """Return the sort-key function of ``strategy``.

    A callable is used as it is: it receives the task's effective priority
    and its upward rank and returns a key, smaller first, for example
    ``lambda priority, rank: -rank`` for rank alone.

    Raises:
        UsageError: ``strategy`` is neither a known name nor a callable.
    """
    if callable(strategy):
        return strategy
    try:
        return _KEYS[Strategy(strategy)]
    except ValueError:
        names = ", ".join(s.value for s in Strategy)
        raise UsageError(
            f"unknown dispatch strategy {strategy!r}; use one of {names} or a key function"
        ) from None
