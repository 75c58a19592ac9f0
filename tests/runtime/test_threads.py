"""DaemonThreadPool: sync calls in threads that never keep the process from exiting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from dragonscale_lc import UsageError
from dragonscale_lc.runtime._threads import DaemonThreadPool


def test_runs_calls_and_returns_results() -> None:
    pool = DaemonThreadPool(max_workers=2)

    futures = [pool.submit(pow, 2, n) for n in range(5)]

    assert [future.result(timeout=10) for future in futures] == [1, 2, 4, 8, 16]
    pool.shutdown()


def test_error_reaches_future() -> None:
    pool = DaemonThreadPool(max_workers=1)

    future = pool.submit(int, "not a number")

    with pytest.raises(ValueError, match="invalid literal"):
        future.result(timeout=10)
    pool.shutdown()


def test_runs_max_workers_calls_at_once() -> None:
    pool = DaemonThreadPool(max_workers=3)
    barrier = threading.Barrier(3, timeout=10)

    futures = [pool.submit(barrier.wait) for _ in range(3)]

    assert sorted(future.result(timeout=10) for future in futures) == [0, 1, 2]
    assert all(thread.daemon for thread in pool._threads)
    pool.shutdown()


def test_shutdown_cancels_queued_calls() -> None:
    pool = DaemonThreadPool(max_workers=1)
    release = threading.Event()
    running = pool.submit(release.wait, 10)
    queued = pool.submit(print, "never")

    pool.shutdown(wait=False, cancel_futures=True)
    release.set()

    assert running.result(timeout=10) is True
    assert queued.cancelled()


def test_submit_after_shutdown_rejected() -> None:
    pool = DaemonThreadPool(max_workers=1)
    pool.shutdown()

    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(print)


def test_invalid_max_workers_rejected() -> None:
    with pytest.raises(UsageError, match="max_workers must be at least 1, got 0"):
        DaemonThreadPool(max_workers=0)


def test_stuck_sync_task_lets_process_exit() -> None:
    script = textwrap.dedent(
        """
        import asyncio, threading
        from dragonscale_lc.runtime import DagExecutor, Task

        def stuck() -> None:
            threading.Event().wait()  # never returns

        report = asyncio.run(DagExecutor().run([Task(id="stuck", fn=stuck, timeout=0.1)]))
        print(report["stuck"].status.value)
        """
    )

    # Without daemon threads the interpreter would wait for the stuck call
    # forever at exit, and this timeout would expire.
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "failed"
