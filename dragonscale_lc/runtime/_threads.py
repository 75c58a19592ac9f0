"""DaemonThreadPool: worker threads that the interpreter does not wait for at exit.

A sync call cannot be interrupted. When a run gives up on one (it timed out,
or the run was cancelled), the call keeps its thread until it returns. The
standard ``ThreadPoolExecutor`` joins its threads when the interpreter exits,
so one such call would keep the whole process alive after the program has
finished. This pool's threads are daemon threads, so the process exits and
the abandoned call ends with it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from .._errors import UsageError

__all__ = ["DaemonThreadPool"]

P = ParamSpec("P")
T = TypeVar("T")

_Work = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class DaemonThreadPool(Executor):
    """An executor of at most ``max_workers`` daemon threads, started as work arrives.

    Calls still running when the interpreter exits are stopped with it, which
    is the point: the run that made them has already reported them as timed
    out or cancelled.

    Example:
        >>> pool = DaemonThreadPool(max_workers=2)
        >>> pool.submit(sum, [1, 2, 3]).result()
        6
        >>> pool.shutdown()
    """

    def __init__(self, max_workers: int, *, thread_name_prefix: str = "dragonscale") -> None:
        if max_workers < 1:
            raise UsageError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # Released by a thread each time it finishes a call: a submit that
        # can acquire it leaves the call to that thread instead of starting one.
        self._idle = threading.Semaphore(0)
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue ``fn(*args, **kwargs)`` and return its future."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit work to a pool that was shut down")
            self._work.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                self._start_thread()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; with ``cancel_futures``, drop queued calls that have not started.

        With ``wait``, block until every thread has finished its current call.
        """
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._work.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._serve,
            name=f"{self._prefix}-{len(self._threads)}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def _serve(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:
                    future.set_exception(error)
                else:
                    future.set_result(result)
            # Drop the references before waiting, so a finished call's
            # arguments and result are not kept alive by an idle thread.
            del item, future, fn, args, kwargs
            self._idle.release()
