"""OutputCapture: a bounded buffer for a module's stdout or stderr."""

from __future__ import annotations

import errno
import threading

__all__ = ["OutputCapture"]


class OutputCapture:
    """Bytes a module writes to one stream, up to ``limit``.

    Wasmtime calls :meth:`write` from its own I/O threads, hence the lock.

    Args:
        limit: Bytes to keep.
        fail_past_limit: Whether a write past ``limit`` fails inside the
            module (``fd_write`` returns EFBIG) or is silently dropped.
    """

    def __init__(self, limit: int, *, fail_past_limit: bool) -> None:
        self.limit = limit
        self.overflowed = False
        self._fail_past_limit = fail_past_limit
        self._chunks: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int | None:
        """Store ``data``; return ``None`` for "all written", or a negative errno."""
        with self._lock:
            room = self.limit - self._size
            if len(data) > room:
                self.overflowed = True
                data = data[:room]
            self._chunks.append(data)
            self._size += len(data)
        if self.overflowed and self._fail_past_limit:
            return -errno.EFBIG
        return None

    def getvalue(self) -> bytes:
        """Return everything stored so far."""
        with self._lock:
            return b"".join(self._chunks)
