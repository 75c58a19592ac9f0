"""Ready tasks that the worker pool cannot start yet, each under the key that blocks it."""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from ._strategy import Entry
from ._task import TaskStatus

if TYPE_CHECKING:
    from collections.abc import Collection

    from ._pool import WorkerPool

__all__ = ["HeldTasks"]


class HeldTasks:
    """Ready-queue entries held back by a full pool, in one heap per blocking key.

    The blocking key is a key at its cap, or ``None`` when the pool's total
    limit is reached. A release lets at most as many tasks start under a key as
    the key has free slots, so :meth:`requeue` moves back only that many
    entries per key, best first. Moving every held entry back on each release
    would make the ready queue pop and hold them all again after every
    completion: quadratic work for many tasks behind one cap.
    """

    __slots__ = ("_by_key", "_pool")

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._by_key: dict[str | None, list[Entry]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def hold(self, entry: Entry) -> None:
        """Hold ``entry``, whose task the pool cannot start now."""
        key = self._blocking_key(entry[-1].keys)
        heapq.heappush(self._by_key.setdefault(key, []), entry)

    def requeue(self, ready: list[Entry]) -> None:
        """Push back onto ``ready`` as many held entries as each key has free slots.

        Stale entries (of tasks requeued, dropped or settled since) are
        discarded on the way and use no slot.
        """
        for key in list(self._by_key):
            heap = self._by_key[key]
            free = self._free_slots(key, held_count=len(heap))
            while heap and free > 0:
                entry = heapq.heappop(heap)
                node = entry[-1]
                if node.entry is entry and node.status is TaskStatus.READY:
                    heapq.heappush(ready, entry)
                    free -= 1
            if not heap:
                del self._by_key[key]

    def _blocking_key(self, keys: Collection[str]) -> str | None:
        limits, running = self._pool.limits, self._pool.running_by_key
        for key in keys:
            cap = limits.get(key)
            if cap is not None and running.get(key, 0) >= cap:
                return key
        return None

    def _free_slots(self, key: str | None, *, held_count: int) -> int:
        pool = self._pool
        if key is None:
            return pool.limit - pool.running
        cap = pool.limits.get(key)
        if cap is None:
            return held_count  # the cap was removed since
        return cap - pool.running_by_key.get(key, 0)
