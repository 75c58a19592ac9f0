"""Retry policies for transient task failures, run by tenacity."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .._errors import UsageError

__all__ = ["RetryPolicy", "is_transient"]

_RATE_LIMIT_STATUS = 429
_SERVER_BUSY_STATUSES = frozenset({502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """Return whether ``error`` is worth retrying: connection trouble, timeouts, overload.

    HTTP errors are recognised by a ``status_code`` (or ``status``) attribute
    of 429, 502, 503 or 504, so no HTTP library needs to be imported here.
    """
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    status = getattr(error, "status_code", None) or getattr(error, "status", None)
    return status == _RATE_LIMIT_STATUS or status in _SERVER_BUSY_STATUSES


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a failing task.

    Waits grow exponentially from ``initial`` seconds, capped at ``maximum``,
    with up to ``jitter`` seconds of random jitter so that many tasks failing
    together do not retry in lockstep.

    Args:
        attempts: Total attempts, the first one included (1 disables retries).
        initial: Wait before the second attempt, in seconds.
        maximum: Longest wait between attempts, in seconds.
        jitter: Largest random extra wait, in seconds.
        retry_if: Which errors to retry; transient ones by default.

    Example:
        >>> RetryPolicy(attempts=4, initial=0.5).attempts
        4
    """

    attempts: int = 3
    initial: float = 0.1
    maximum: float = 10.0
    jitter: float = 0.1
    retry_if: Callable[[BaseException], bool] = is_transient

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise UsageError(f"attempts must be at least 1, got {self.attempts}")
        if self.initial < 0 or self.maximum < 0 or self.jitter < 0:
            raise UsageError(
                f"retry waits must not be negative, got initial={self.initial}, "
                f"maximum={self.maximum}, jitter={self.jitter}"
            )

    def retrying(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        before_sleep: Callable[[RetryCallState], Any] | None = None,
    ) -> AsyncRetrying:
        """Return a tenacity controller for one task, re-raising the last error."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(
                multiplier=self.initial, max=self.maximum, jitter=self.jitter
            ),
            retry=retry_if_exception(self.retry_if),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
