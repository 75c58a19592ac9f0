"""A key-value cache for plans, tool results and analyses.

:class:`Cache` keeps recent entries in memory, least recently used first out,
with an optional time to live. Given a ``path``, it also writes every entry to
a SQLite table, so a new process (a restarted service, the next CLI call)
starts with the entries an earlier one stored.
"""

from __future__ import annotations

import collections
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from os import PathLike
from typing import Any

from .._errors import UsageError

__all__ = ["MISSING", "Cache", "CacheStats"]

logger = logging.getLogger(__name__)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Sentinel that :meth:`Cache.get` returns for an absent key, because ``None`` is a valid value."""


class CacheStats:
    """Counts of lookups that found an entry and lookups that did not."""

    __slots__ = ("hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"CacheStats(hits={self.hits}, misses={self.misses})"


class Cache:
    """Entries by string key: an in-memory LRU with a time to live, optionally kept in SQLite.

    Args:
        maxsize: Entries kept in memory; the least recently used goes first.
        ttl: Seconds an entry stays valid after it was stored, or ``None`` for
            no limit.
        path: SQLite database file. Entries are written through to it and
            read from it when memory misses, so they survive restarts. Values
            must then be JSON data; other values stay in memory only.
        table: Table name in the database, so several caches can share a file.
        clock: Wall-clock seconds, used for the time to live; injectable for
            tests. Wall time, not a monotonic clock, because entries outlive
            the process.

    All methods are thread-safe.

    Example:
        >>> from dragonscale_lc.runtime import Cache
        >>> cache = Cache(maxsize=2)
        >>> cache.put("a", 1)
        >>> cache.get("a"), cache.get("b") is MISSING
        (1, True)
    """

    def __init__(
        self,
        *,
        maxsize: int = 1024,
        ttl: float | None = None,
        path: str | PathLike[str] | None = None,
        table: str = "entries",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if maxsize < 1:
            raise UsageError(f"maxsize must be at least 1, got {maxsize}")
        if ttl is not None and not ttl > 0:
            raise UsageError(f"ttl must be positive seconds or None, got {ttl!r}")
        if not table.isidentifier():
            raise UsageError(f"table {table!r} is invalid: use letters, digits and underscores")
        self.maxsize = maxsize
        self.ttl = ttl
        self.stats = CacheStats()
        self._clock = clock
        self._table = table
        self._memory: collections.OrderedDict[str, tuple[float, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            # Write-ahead logging with normal sync makes each write a cheap
            # append. A crash may lose the last writes, which a cache can afford.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(key TEXT PRIMARY KEY, stored_at REAL NOT NULL, value TEXT NOT NULL)"
            )

    def get(self, key: str) -> Any:
        """Return the value stored under ``key``, or :data:`MISSING` if absent or expired."""
        with self._lock:
            entry = self._memory.get(key)
            if entry is None and self._db is not None:
                entry = self._load(key)
                if entry is not None:
                    self._remember(key, entry)
            if entry is not None and self._expired(entry[0]):
                self._forget(key)
                entry = None
            if entry is None:
                self.stats.misses += 1
                return MISSING
            self._memory.move_to_end(key)
            self.stats.hits += 1
            return entry[1]

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, replacing what was there."""
        with self._lock:
            stored_at = self._clock()
            self._remember(key, (stored_at, value))
            if self._db is None:
                return
            try:
                text = json.dumps(value)
            except (TypeError, ValueError) as error:
                logger.debug("cache entry %r stays in memory only: %s", key, error)
                return
            self._db.execute(
                f"INSERT OR REPLACE INTO {self._table} (key, stored_at, value) VALUES (?, ?, ?)",
                (key, stored_at, text),
            )

    def clear(self) -> None:
        """Remove every entry, from memory and from the database."""
        with self._lock:
            self._memory.clear()
            if self._db is not None:
                self._db.execute(f"DELETE FROM {self._table}")

    def close(self) -> None:
        """Close the database file; the in-memory entries stay usable."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._memory)

    def _remember(self, key: str, entry: tuple[float, Any]) -> None:
        self._memory[key] = entry
        self._memory.move_to_end(key)
        while len(self._memory) > self.maxsize:
            self._memory.popitem(last=False)

    def _forget(self, key: str) -> None:
        self._memory.pop(key, None)
        if self._db is not None:
            self._db.execute(f"DELETE FROM {self._table} WHERE key = ?", (key,))

    def _load(self, key: str) -> tuple[float, Any] | None:
        assert self._db is not None
        row = self._db.execute(
            f"SELECT stored_at, value FROM {self._table} WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return (row[0], json.loads(row[1]))

    def _expired(self, stored_at: float) -> bool:
        return self.ttl is not None and self._clock() - stored_at >= self.ttl
