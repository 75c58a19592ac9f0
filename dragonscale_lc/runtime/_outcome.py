"""Task outcomes that drive the worker pool's limit, and the mapping from an exception to one.

An overload (HTTP 429, a rate-limit error) or a timeout makes the pool halve
its limit. Any other error leaves the limit alone. The mapping looks at
status attributes and class names, so the runtime needs no HTTP library.
"""

from __future__ import annotations

from typing import Literal, get_args

from .._errors import TaskTimeoutError

__all__ = ["OUTCOMES", "Outcome", "classify"]

Outcome = Literal["ok", "error", "overload", "timeout"]
"""End state of a task, in the terms the adaptive limit reacts to."""

OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))


def classify(error: BaseException) -> Outcome:
    """Return the pool outcome for a task that raised ``error``.

    Rate-limit errors are recognised without importing any HTTP library. An
    error is one when its ``status_code`` or ``status`` attribute is 429, when
    ``error.response.status_code`` is 429 (where httpx's ``HTTPStatusError``
    keeps the status), or when a class in its MRO has ``RateLimit`` in its
    name, in any letter case. ``TimeoutError``
    (``asyncio.TimeoutError`` included) and :class:`TaskTimeoutError` are
    timeouts. Explicit causes (``raise ... from error``) are checked too,
    outermost first, so an adapter that wraps a 429 still reports an overload.

    Example:
        >>> class RateLimitError(Exception):
        ...     pass
        >>> classify(RateLimitError()), classify(TimeoutError()), classify(KeyError())
        ('overload', 'timeout', 'error')
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_rate_limit(current):
            return "overload"
        if isinstance(current, TimeoutError | TaskTimeoutError):
            return "timeout"
        current = current.__cause__
    return "error"


def _is_rate_limit(error: BaseException) -> bool:
    response = _attribute(error, "response")
    for owner, name in ((error, "status_code"), (error, "status"), (response, "status_code")):
        if _attribute(owner, name) == 429:
            return True
    return any("ratelimit" in cls.__name__.lower() for cls in type(error).__mro__)


def _attribute(owner: object, name: str) -> object:
    # classify() runs on the executor's completion path, where an exception
    # would break the run. So a property that raises counts as absent.
    try:
        return getattr(owner, name, None)
    except Exception:
        return None
