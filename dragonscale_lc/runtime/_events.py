"""EventBus: publish runtime events on dotted topics to sync and async subscribers.

Topics and patterns
    A topic is a dotted name such as ``task.completed``. A subscription pattern
    is an exact topic or contains ``*`` segments. A ``*`` as the last segment
    matches one or more trailing segments, so ``task.*`` matches
    ``task.started`` and ``task.a.b`` but not ``task``. A ``*`` anywhere else
    matches exactly one segment (``*.failed`` matches ``run.failed``), and
    ``*`` alone matches every topic. A ``*`` that shares a segment with other
    characters (``task*``) is rejected.

Cost
    The topics a pattern matches are computed once per topic and cached until
    the next subscribe or unsubscribe, so :meth:`EventBus.wants` is one
    dictionary lookup. Publishers check it before they build an event, and a
    topic without subscribers costs nothing more.

Sync and async subscribers
    A sync subscriber is called inside :meth:`EventBus.publish`. An async
    subscriber (a coroutine function, or any callable subscribed with
    ``mode="async"``) has its own bounded queue and one consumer task, started
    on the running event loop by the first event it receives. It gets its
    events in publish order, one at a time. Events published while no loop
    runs stay queued until a publish inside a loop, :meth:`EventBus.drain` or
    :meth:`EventBus.aclose` starts the consumer.

Overflow policies of an async subscriber's queue
    ``publish`` is synchronous and the executor calls it from completion
    callbacks, so a publisher can neither wait for room in a queue nor be
    allowed to fail because a subscriber is slow. There is no ``block`` or
    ``error`` policy for that reason. A full queue drops one event instead:

    - ``drop_oldest`` (default): the oldest queued event is dropped and the new
      one is queued, so the subscriber sees the latest state.
    - ``drop_newest``: the incoming event is dropped, so the subscriber sees
      an unbroken prefix of the stream.

    Either way :attr:`Subscription.dropped` counts the event and the first drop
    of a subscription is logged at WARNING. A subscriber that must see every
    event should be sync, or get a ``maxsize`` larger than any burst.

Failures
    A subscriber (sync or async) that raises is logged once at ERROR with the
    topic, then unsubscribed. The publisher and the other subscribers carry on.

Lifecycle
    ``await bus.drain()`` returns once every async queue is empty and no async
    subscriber is running. ``await bus.aclose()`` (or leaving ``async with
    bus``) drains, or with ``cancel=True`` discards the queues, then cancels
    and awaits the consumer tasks so no asyncio task is left pending. The
    subscriptions stay, so a bus can serve one ``asyncio.run`` after another.
    The bus is not thread-safe: publish from the thread that runs its loop.

Topics
    The executor's runs publish ``run.started``, ``run.completed`` and
    ``run.cancelled`` (data: ``ok``); ``task.ready`` (``task_id``, ``name``)
    and ``task.started`` (adds ``args``, ``kwargs``); ``task.completed``,
    ``task.failed``, ``task.skipped`` and ``task.cancelled`` (``task_id``,
    ``name``, ``status``, ``output``, ``error``, ``start``, ``end``); and
    ``task.retrying``, ``task.preempted`` and ``task.requeued``. A fail-fast
    run ends with ``run.cancelled``. A run opened with ``DagExecutor.open()``
    also publishes ``graph.updated`` for each task added, edge added or drop
    (``kind``, ``ids``, ``version``) and ``graph.compacted`` when its graph's
    delta log is compacted (``previous_base_version``, ``base_version``,
    ``deltas``, ``tasks``).

    The WorkerPool publishes ``pool.resized`` (``old``, ``new``, ``reason``,
    ``key``).

    The compiler session produces ``plan.task_parsed``, ``plan.completed`` and
    ``join.decided``, but sends them to its ``emit`` callback, not to a bus.

    The TimedScheduler publishes ``schedule.fired`` (``job``, ``nominal``,
    ``due``, ``start``, ``lateness``, ``run``, ``coalesced``),
    ``schedule.missed`` (``job``, ``nominal``, ``due``, ``lateness``,
    ``slots``) and ``schedule.failed`` (``job``, ``nominal``, ``run``,
    ``error``). Their times are readings of the scheduler's clock, and an
    event's ``time`` counts from the scheduler's start.

    Reserved, with no publisher yet: ``run.failed``.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from .._errors import UsageError
from ._mailbox import Mailbox
from ._topics import check_pattern, pattern_matches

__all__ = ["DEFAULT_QUEUE_SIZE", "Event", "EventBus", "OverflowPolicy", "Subscription"]

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000
"""Default ``maxsize`` of an async subscriber's queue, in events."""


class OverflowPolicy(enum.Enum):
    """Policy for the event that an async subscriber's full queue drops."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in a run.

    Attributes:
        topic: Dotted name such as ``task.started``.
        data: Event details (task id, tool name, output, error).
        time: Seconds since the start of the run (or scheduler) that published it.
    """

    topic: str
    data: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0


@dataclass(eq=False, slots=True)
class Subscription:
    """A subscriber's registration; pass it to :meth:`EventBus.unsubscribe`.

    Attributes:
        pattern: Topic pattern, such as ``task.*``.
        callback: Called with each matching event.
        active: False once unsubscribed, by the caller or after it raised.
        mode: ``"sync"`` (called inside publish) or ``"async"`` (queued).
        maxsize: Capacity of an async subscriber's queue, in events.
        overflow: Which event a full queue drops.
        dropped: Events this subscriber never received, because its queue
            was full or because ``aclose(cancel=True)`` discarded them.
    """

    pattern: str
    callback: Callable[[Event], object]
    active: bool = True
    mode: Literal["sync", "async"] = "sync"
    maxsize: int = DEFAULT_QUEUE_SIZE
    overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST
    dropped: int = 0
    # Set by EventBus.subscribe for async subscribers.
    _mailbox: Mailbox | None = field(default=None, init=False, repr=False)

    @property
    def queued(self) -> int:
        """Number of events waiting in an async subscriber's queue (0 for sync)."""
        return len(self._mailbox.events) if self._mailbox is not None else 0


class EventBus:
    """Deliver events to the subscribers whose pattern matches the topic.

    Example:
        >>> bus = EventBus()
        >>> seen = []
        >>> subscription = bus.subscribe("task.*", lambda event: seen.append(event.topic))
        >>> bus.wants("task.started"), bus.wants("run.started")
        (True, False)
        >>> bus.publish(Event("task.started", {"task_id": 1}))
        >>> seen
        ['task.started']
    """

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._by_topic: dict[str, tuple[Subscription, ...]] = {}
        self._consumers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> EventBus:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Draining after an error (or a cancellation) could wait on a slow
        # subscriber while the caller is trying to unwind, so cancel instead.
        await self.aclose(cancel=exc_type is not None)

    def subscribe(
        self,
        pattern: str,
        callback: Callable[[Event], object],
        *,
        mode: Literal["sync", "async"] | None = None,
        maxsize: int = DEFAULT_QUEUE_SIZE,
        overflow: OverflowPolicy | str = OverflowPolicy.DROP_OLDEST,
    ) -> Subscription:
        """Deliver every event whose topic matches ``pattern`` to ``callback``.

        Args:
            pattern: Exact topic or wildcard pattern (``task.*``, ``*.failed``, ``*``).
            callback: Called with each event. A coroutine function is awaited
                by the subscription's consumer task.
            mode: ``"sync"`` calls ``callback`` inside :meth:`publish`;
                ``"async"`` queues the event for the consumer task, which also
                awaits whatever ``callback`` returns if it is awaitable. By
                default coroutine functions are async and others sync.
            maxsize: Capacity of an async subscriber's queue, in events.
            overflow: Which event a full async queue drops.

        Returns:
            The subscription, to pass to :meth:`unsubscribe` and to read
            its ``dropped`` count from.

        Raises:
            UsageError: ``pattern``, ``mode``, ``maxsize`` or ``overflow`` is invalid.

        Example:
            >>> import asyncio
            >>> async def main() -> list[str]:
            ...     bus, seen = EventBus(), []
            ...     async def record(event: Event) -> None:
            ...         seen.append(event.topic)
            ...     bus.subscribe("run.*", record, maxsize=100, overflow="drop_newest")
            ...     bus.publish(Event("run.started"))
            ...     await bus.aclose()
            ...     return seen
            >>> asyncio.run(main())
            ['run.started']
        """
        check_pattern(pattern)
        resolved_mode = _resolve_mode(callback, mode)
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise UsageError(f"maxsize must be an int of at least 1 event, got {maxsize!r}")
        try:
            policy = OverflowPolicy(overflow)
        except ValueError:
            choices = ", ".join(p.value for p in OverflowPolicy)
            raise UsageError(f"overflow must be one of {choices}, got {overflow!r}") from None

        subscription = Subscription(
            pattern, callback, mode=resolved_mode, maxsize=maxsize, overflow=policy
        )
        if resolved_mode == "async":
            subscription._mailbox = Mailbox(
                functools.partial(self._deliver, subscription),
                self._consumers,
                name=f"event subscriber {pattern}",
            )
        self._subscriptions.append(subscription)
        self._by_topic.clear()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering events to ``subscription``; unknown ones are ignored.

        Events still queued for an async subscriber are discarded, and its
        consumer task ends once its current callback, if any, returns.
        """
        subscription.active = False
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        self._by_topic.clear()

        if subscription._mailbox is not None:
            subscription._mailbox.close()

    @property
    def active(self) -> bool:
        """Whether anyone subscribes at all; publishers check it before anything else."""
        return bool(self._subscriptions)

    def wants(self, topic: str) -> bool:
        """Return whether any subscriber would receive an event on ``topic``."""
        return bool(self._matching(topic))

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every matching subscriber, in subscription order.

        Sync subscribers have run when this returns; async ones have the event
        queued. Subscriber errors never propagate to the caller.
        """
        for subscription in self._matching(event.topic):
            if not subscription.active:
                continue  # unsubscribed by an earlier subscriber of this event
            if subscription._mailbox is None:
                self._call(subscription, event)
            else:
                self._enqueue(subscription, subscription._mailbox, event)

    async def drain(self) -> None:
        """Wait until every async subscriber has handled every queued event.

        Events that async subscribers publish while handling others are
        waited for too. A subscriber that never returns keeps this waiting,
        so bound it with ``asyncio.timeout`` where that can happen.

        Raises:
            UsageError: Called from an async subscriber, which would wait for itself.
        """
        self._check_not_in_consumer("drain")
        while pending := [m for m in self._mailboxes() if m.has_work]:
            for mailbox in pending:
                await mailbox.wait_idle()

    async def aclose(self, *, cancel: bool = False) -> None:
        """Stop the async subscribers' consumer tasks and await them.

        Args:
            cancel: Discard queued events (counted in each subscription's
                ``dropped``) and cancel callbacks in progress, instead of
                first waiting for the queues to drain.

        Raises:
            UsageError: Called from an async subscriber, which would cancel itself.
        """
        self._check_not_in_consumer("aclose")
        if cancel:
            self._discard_queued()
        else:
            await self.drain()

        # Consumers of a loop that was closed without cancelling them can be
        # neither cancelled nor awaited from this loop; they never run again.
        loop = asyncio.get_running_loop()
        consumers = [c for c in self._consumers if c.get_loop() is loop]
        self._consumers.difference_update([c for c in self._consumers if c.get_loop() is not loop])
        for consumer in consumers:
            consumer.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)

    def _matching(self, topic: str) -> tuple[Subscription, ...]:
        found = self._by_topic.get(topic)
        if found is None:
            parts = topic.split(".")
            found = tuple(s for s in self._subscriptions if pattern_matches(s.pattern, parts))
            self._by_topic[topic] = found
        return found

    def _call(self, subscription: Subscription, event: Event) -> None:
        try:
            subscription.callback(event)
        except Exception:
            self._fail(subscription, event)

    def _fail(self, subscription: Subscription, event: Event) -> None:
        # Unsubscribing makes this the only log line the subscriber produces.
        logger.exception(
            "event subscriber %r raised on topic %s and was unsubscribed",
            subscription.callback,
            event.topic,
        )
        self.unsubscribe(subscription)

    async def _deliver(self, subscription: Subscription, event: Event) -> None:
        try:
            result = subscription.callback(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self._fail(subscription, event)

    def _enqueue(self, subscription: Subscription, mailbox: Mailbox, event: Event) -> None:
        if len(mailbox.events) < subscription.maxsize:
            mailbox.events.append(event)
        else:
            self._count_drop(subscription)
            if subscription.overflow is OverflowPolicy.DROP_OLDEST:
                mailbox.events.popleft()
                mailbox.events.append(event)
        mailbox.notify()

    def _count_drop(self, subscription: Subscription) -> None:
        subscription.dropped += 1
        if subscription.dropped == 1:
            dropped_event = (
                "oldest" if subscription.overflow is OverflowPolicy.DROP_OLDEST else "new"
            )
            logger.warning(
                "event subscriber %r (pattern %r) fell behind: its queue is full at %d events, "
                "so the %s event was dropped. Later drops are only counted in its dropped "
                "attribute. Raise maxsize or make the subscriber faster.",
                subscription.callback,
                subscription.pattern,
                subscription.maxsize,
                dropped_event,
            )

    def _mailboxes(self) -> list[Mailbox]:
        return [s._mailbox for s in self._subscriptions if s._mailbox is not None]

    def _discard_queued(self) -> None:
        for subscription in self._subscriptions:
            mailbox = subscription._mailbox
            if mailbox is None or not mailbox.events:
                continue
            discarded = len(mailbox.events)
            mailbox.events.clear()
            subscription.dropped += discarded
            logger.warning(
                "closing the event bus discarded %d queued events of subscriber %r (pattern %r)",
                discarded,
                subscription.callback,
                subscription.pattern,
            )

    def _check_not_in_consumer(self, method: str) -> None:
        if asyncio.current_task() in self._consumers:
            raise UsageError(
                f"EventBus.{method}() was called from an async event subscriber, which would "
                "wait for its own consumer task; call it from the code that owns the bus"
            )


def _resolve_mode(
    callback: Callable[[Event], object], mode: Literal["sync", "async"] | None
) -> Literal["sync", "async"]:
    is_coroutine = _is_coroutine_callable(callback)
    if mode is None:
        return "async" if is_coroutine else "sync"
    if mode not in ("sync", "async"):
        raise UsageError(f"mode must be 'sync', 'async' or None, got {mode!r}")
    if mode == "sync" and is_coroutine:
        raise UsageError(
            f"callback {callback!r} is a coroutine function, which cannot be called "
            "inside publish(); subscribe it with mode='async' or leave mode unset"
        )
    return mode


def _is_coroutine_callable(callback: Callable[..., object]) -> bool:
    while isinstance(callback, functools.partial):
        callback = callback.func
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
