"""Dispatch strategies: the order in which ready tasks get free worker slots."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from .._errors import UsageError

__all__ = ["DispatchKey", "Entry", "EntryMaker", "Strategy", "dispatch_key", "entry_maker"]

DispatchKey = Callable[[int, float], Any]
"""Maps a ready task's effective priority and upward rank to a sort key; smaller runs first."""

Entry = tuple[Any, ...]
"""A ready-queue entry: the sort key, then the task's sequence number, then its node.

The built-in strategies spread their key over the first items of the entry
instead of nesting a key tuple, so comparing two entries compares numbers
directly. The node is always the last item and the sequence number the one
before it.
"""

EntryMaker = Callable[[int, float, int, Any], Entry]
"""Builds the entry of a task from its effective priority, rank, sequence number and node."""


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


def _critical_path_entry(priority: int, rank: float, seq: int, node: Any) -> Entry:
    return (-priority, -rank, seq, node)


def _priority_entry(priority: int, rank: float, seq: int, node: Any) -> Entry:
    return (-priority, seq, node)


def _fifo_entry(priority: int, rank: float, seq: int, node: Any) -> Entry:
    return (seq, node)


# Each gives its strategy's order: the key's items compare as the key would.
_ENTRIES: dict[DispatchKey, EntryMaker] = {
    _critical_path: _critical_path_entry,
    _priority: _priority_entry,
    _fifo: _fifo_entry,
}


def entry_maker(key: DispatchKey) -> EntryMaker:
    """Return the function that builds ready-queue entries ordered by ``key``."""
    maker = _ENTRIES.get(key)
    if maker is not None:
        return maker

    def make_entry(priority: int, rank: float, seq: int, node: Any) -> Entry:
        return (key(priority, rank), seq, node)

    return make_entry


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
