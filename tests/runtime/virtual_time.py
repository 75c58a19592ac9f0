"""An asyncio event loop on virtual time, for deterministic tests of timed code.

The loop's clock starts at 0 and moves only when every task waits on a timer:
then it jumps to the earliest timer at once. So ``await asyncio.sleep(3600)``
returns without a real wait, and code that measures with ``loop.time()`` reads
exactly the delays it requested, whatever the machine's speed.

Work in worker threads (``run_in_executor``, ``asyncio.to_thread``) takes no
virtual time: while any runs, the loop waits for real I/O instead of jumping.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """A selector whose timed waits jump the loop's virtual clock instead of blocking."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        assert loop is not None
        if loop.threads_running:
            # A thread will call back through the loop's self-pipe.
            return super().select(timeout)
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0:
            return ready
        loop.jump()
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """Event loop whose ``time()`` is virtual and jumps to the next timer when idle."""

    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self.now = 0.0
        self.threads_running = 0

    def time(self) -> float:
        return self.now

    def jump(self) -> None:
        # Set the clock to the earliest timer's own deadline, not to now plus
        # the rounded timeout, so that a timer fires at exactly its time.
        # NOTE: reads asyncio's private heap of timers (BaseEventLoop._scheduled).
        scheduled = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            self.now = max(self.now, scheduled[0].when())

    def run_in_executor(self, executor: Any, func: Callable[..., T], *args: Any) -> Any:
        future = super().run_in_executor(executor, func, *args)
        self.threads_running += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _future: object) -> None:
        self.threads_running -= 1


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
