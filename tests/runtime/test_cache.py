"""Cache: in-memory LRU with a time to live, written through to SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dragonscale_lc import UsageError
from dragonscale_lc.runtime import MISSING, Cache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_get_missing_key() -> None:
    cache = Cache()

    assert cache.get("absent") is MISSING
    assert cache.stats.misses == 1


def test_none_is_a_value() -> None:
    cache = Cache()
    cache.put("nothing", None)

    assert cache.get("nothing") is None
    assert cache.stats.hits == 1


def test_least_recently_used_goes_first() -> None:
    cache = Cache(maxsize=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)

    assert cache.get("b") is MISSING
    assert cache.get("a") == 1
    assert cache.get("c") == 3
    assert len(cache) == 2


def test_entry_expires_after_ttl() -> None:
    clock = FakeClock()
    cache = Cache(ttl=60, clock=clock)
    cache.put("a", 1)

    clock.now += 59.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is MISSING


def test_sqlite_entries_survive_new_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    first = Cache(path=path)
    first.put("plan", {"text": "1. math('1 + 1')", "tasks": [1, 2]})
    first.close()

    second = Cache(path=path)

    assert second.get("plan") == {"text": "1. math('1 + 1')", "tasks": [1, 2]}


def test_sqlite_expired_entry_deleted(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "cache.sqlite"
    Cache(path=path, ttl=10, clock=clock).put("a", 1)
    clock.now += 10

    assert Cache(path=path, ttl=10, clock=clock).get("a") is MISSING
    assert Cache(path=path, clock=clock).get("a") is MISSING


def test_sqlite_tables_keep_caches_apart(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    Cache(path=path, table="plans").put("k", "plan")

    assert Cache(path=path, table="results").get("k") is MISSING
    assert Cache(path=path, table="plans").get("k") == "plan"


def test_non_json_value_stays_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = Cache(path=path)
    marker = object()
    cache.put("object", marker)

    assert cache.get("object") is marker
    assert Cache(path=path).get("object") is MISSING


def test_clear_removes_database_entries(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = Cache(path=path)
    cache.put("a", 1)
    cache.clear()

    assert cache.get("a") is MISSING
    assert Cache(path=path).get("a") is MISSING


def test_threads_share_one_cache(tmp_path: Path) -> None:
    cache = Cache(path=tmp_path / "cache.sqlite", maxsize=10_000)

    def fill(start: int) -> None:
        for n in range(start, start + 200):
            cache.put(str(n), n)

    threads = [threading.Thread(target=fill, args=(n * 200,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(cache) == 800
    assert Cache(path=tmp_path / "cache.sqlite").get("799") == 799


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"maxsize": 0}, "maxsize must be at least 1, got 0"),
        ({"ttl": 0}, "ttl must be positive seconds or None, got 0"),
        ({"table": "plans; DROP"}, "table 'plans; DROP' is invalid"),
    ],
)
def test_invalid_options_rejected(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Cache(**options)  # type: ignore[arg-type]
