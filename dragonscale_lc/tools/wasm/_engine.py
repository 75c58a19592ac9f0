"""WasmEngine: a wasmtime Engine with its compiled modules and its epoch ticker."""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import wasmtime

__all__ = ["DEFAULT_EPOCH_INTERVAL", "WasmEngine", "default_engine"]

DEFAULT_EPOCH_INTERVAL = 0.01


class WasmEngine:
    """A wasmtime ``Engine`` shared by WASM tools, with fuel and epoch interruption on.

    The engine compiles each distinct module once (by SHA-256 of its bytes)
    and keeps it for the engine's lifetime. While at least one call runs, a
    daemon thread increments the engine's epoch every ``epoch_interval``
    seconds, and each call's timeout is a deadline in those ticks.

    Args:
        epoch_interval: Seconds between epoch ticks, which is the resolution of
            timeouts.
        epoch_ticker: Whether a background thread advances the epoch. With
            ``False`` only :meth:`increment_epoch` does, which lets tests
            decide when a timeout fires.

    Example:
        >>> engine = WasmEngine(epoch_interval=0.005)
        >>> engine.deadline_ticks(0.02)
        5
    """

    def __init__(
        self, *, epoch_interval: float = DEFAULT_EPOCH_INTERVAL, epoch_ticker: bool = True
    ) -> None:
        if not (math.isfinite(epoch_interval) and epoch_interval > 0):
            raise ValueError(f"epoch_interval={epoch_interval!r} must be a positive number")
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.epoch_interval = epoch_interval
        self._epoch_ticker = epoch_ticker
        self._modules: dict[str, wasmtime.Module] = {}
        self._lock = threading.Lock()
        self._active_calls = 0
        self._stop_ticker: threading.Event | None = None
        # Free the native objects while wasmtime can still do so: left to the
        # interpreter's shutdown, their finalizers run after wasmtime's own
        # bindings are gone and print errors.
        weakref.finalize(self, _release, self._modules, self.engine)

    @property
    def active_calls(self) -> int:
        """Number of calls running in this engine now."""
        return self._active_calls

    @property
    def module_count(self) -> int:
        """Number of distinct modules compiled and cached by this engine."""
        return len(self._modules)

    def compile(self, wasm: bytes) -> tuple[wasmtime.Module, str]:
        """Return the compiled module for ``wasm`` and its SHA-256, compiling it at most once.

        Raises:
            wasmtime.WasmtimeError: ``wasm`` is not a valid WebAssembly module.
        """
        digest = hashlib.sha256(wasm).hexdigest()
        with self._lock:
            module = self._modules.get(digest)
        if module is not None:
            return module, digest

        # Compiling outside the lock lets different modules compile at once;
        # two threads racing on the same bytes both compile, and one result wins.
        module = wasmtime.Module(self.engine, wasm)
        with self._lock:
            return self._modules.setdefault(digest, module), digest

    def deadline_ticks(self, timeout: float) -> int:
        """Return the epoch deadline for ``timeout`` seconds, counted from now.

        The first tick may come at any moment after the deadline is set. One
        extra tick keeps a call from timing out early, so it may time out up
        to one interval late instead.
        """
        return math.ceil(timeout / self.epoch_interval) + 1

    def increment_epoch(self) -> None:
        """Advance the epoch by one tick; safe to call from any thread."""
        self.engine.increment_epoch()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Count one call as running, with the epoch ticker on for its duration."""
        with self._lock:
            self._active_calls += 1
            if self._active_calls == 1 and self._epoch_ticker:
                self._start_ticker()
        try:
            yield
        finally:
            with self._lock:
                self._active_calls -= 1
                if self._active_calls == 0 and self._stop_ticker is not None:
                    self._stop_ticker.set()
                    self._stop_ticker = None

    def _start_ticker(self) -> None:
        # Each ticker thread has its own stop event, so a thread that is still
        # winding down cannot be revived by the next call's new ticker.
        stop = threading.Event()
        self._stop_ticker = stop
        thread = threading.Thread(
            target=self._tick, args=(stop,), name="dragonscale-wasm-epoch", daemon=True
        )
        thread.start()

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(self.epoch_interval):
            self.engine.increment_epoch()


def _release(modules: dict[str, wasmtime.Module], engine: wasmtime.Engine) -> None:
    for module in modules.values():
        module.close()
    modules.clear()
    engine.close()


_default_engine: WasmEngine | None = None
_default_engine_lock = threading.Lock()


def default_engine() -> WasmEngine:
    """Return the process-wide engine that WASM tools use unless given their own."""
    global _default_engine  # noqa: PLW0603 - one engine per process, created on first use
    with _default_engine_lock:
        if _default_engine is None:
            _default_engine = WasmEngine()
        return _default_engine
