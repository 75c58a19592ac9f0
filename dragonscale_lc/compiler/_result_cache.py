"""Result cache: a cacheable tool called again with the same arguments is not run again.

A tool is cacheable when its output depends only on its arguments, which it
declares with ``metadata["dragonscale_cacheable"] = True`` (the built-in
tools do). Within one compiler run every round shares the cache, so a replan
that repeats a call gets the earlier output. A call that starts while the
same call is still running waits for it instead of running twice. Given a
:class:`~dragonscale_lc.runtime.Cache`, outputs are also kept across runs,
with that cache's size limit and time to live.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from langchain_core.tools import BaseTool

from .._errors import RunError
from .._tool_metadata import CACHEABLE_KEY
from ..runtime import MISSING, Cache, ErrorObservation

__all__ = ["CACHEABLE_KEY", "ResultCache", "is_cacheable"]

T = TypeVar("T")


def is_cacheable(tool: BaseTool) -> bool:
    """Return whether ``tool`` declares that its output depends only on its arguments."""
    return bool((tool.metadata or {}).get(CACHEABLE_KEY))


class ResultCache:
    """Outputs of cacheable tool calls by tool name and arguments, for one run.

    Thread-safe: sync tools look up and store from worker threads.

    Args:
        store: A cache shared across runs, or ``None`` to keep outputs for
            this run only.
    """

    def __init__(self, store: Cache | None = None) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._calls: dict[str, concurrent.futures.Future[Any]] = {}
        self.hits = 0

    def claim(self, tool: str, tool_input: Mapping[str, Any]) -> tuple[str | None, Any]:
        """Look a call up: return ``(key, future)``, where the caller must run it if ``key`` is set.

        If the call ran before, or is running, the future gives its output
        and the key is ``None``. Otherwise the caller owns the call: it runs
        the tool and reports with :meth:`settle`. Arguments that are not JSON
        data cannot be compared, so such a call is never cached: the result
        is ``(None, None)`` and the caller just runs it.
        """
        key = _key(tool, tool_input)
        if key is None:
            return None, None
        with self._lock:
            future = self._calls.get(key)
            if future is not None:
                self.hits += 1
                return None, future
            if self._store is not None:
                stored = self._store.get(key)
                if stored is not MISSING:
                    self.hits += 1
                    future = concurrent.futures.Future()
                    future.set_result(stored)
                    self._calls[key] = future
                    return None, future
            future = concurrent.futures.Future()
            self._calls[key] = future
            return key, future

    @contextlib.contextmanager
    def settling(self, key: str | None) -> Iterator[Callable[[T], T]]:
        """Settle the call ``key`` with what the block passes to the function it gets.

        The block calls that function with the call's output, and gets it
        back. If the block raises, the call settles with the error. A ``None``
        key (a call that is not cached) settles nothing.
        """
        if key is None:
            yield _same
            return

        def keep(output: T) -> T:
            self.settle(key, output)
            return output

        try:
            yield keep
        except BaseException as error:
            self.settle(key, error=error)
            raise

    def settle(self, key: str, output: Any = None, error: BaseException | None = None) -> None:
        """Record the output (or the error) of a call that :meth:`claim` handed out.

        A failed or cancelled call is forgotten, so a later identical call
        runs again, because an error may be transient. Callers waiting for it
        get the error; for a cancelled call, a :class:`RunError` saying so.
        """
        if isinstance(error, asyncio.CancelledError):
            error = RunError("the same call in another task was cancelled before it finished")
        with self._lock:
            future = self._calls[key]
            if error is not None or isinstance(output, ErrorObservation):
                del self._calls[key]
            elif self._store is not None:
                self._store.put(key, output)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(output)


def _same(output: T) -> T:
    return output


def _key(tool: str, tool_input: Mapping[str, Any]) -> str | None:
    try:
        return json.dumps([tool, tool_input], sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None
