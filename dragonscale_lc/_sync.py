"""Bridges from sync callers to coroutines and async iterators, shared by the Runnables."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["iterate_sync", "run_sync", "single"]

T = TypeVar("T")


async def single(item: T) -> AsyncIterator[T]:
    """Yield ``item`` once: the input stream of a Runnable called with one input."""
    yield item


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    # A loop already runs in this thread (a notebook, say): run in a fresh
    # thread with its own loop, keeping the caller's context variables.
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, make()).result()


def iterate_sync(make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
    """Drive an async iterator on a helper thread's event loop and yield its items."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    started: queue.Queue[tuple[asyncio.AbstractEventLoop, asyncio.Task[None]]] = queue.Queue()

    async def pump() -> None:
        started.put((asyncio.get_running_loop(), asyncio.current_task()))  # type: ignore[arg-type]
        try:
            async for item in make():
                items.put(("item", item))
        except asyncio.CancelledError:
            pass  # the consumer stopped early
        except BaseException as error:  # handed to the consuming thread
            items.put(("error", error))
        finally:
            items.put(("done", None))

    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(asyncio.run, pump()), daemon=True
    )
    thread.start()
    loop, task = started.get()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        # Closing the generator early cancels the run on its own loop, which
        # cancels the running tools, instead of waiting for them to finish.
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            loop.call_soon_threadsafe(task.cancel)
        thread.join()
