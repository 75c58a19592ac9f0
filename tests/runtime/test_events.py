"""EventBus delivery and the events a run publishes."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Hashable

import pytest

from dragonscale_lc._errors import UsageError
from dragonscale_lc.runtime import (
    DEFAULT_QUEUE_SIZE,
    DagExecutor,
    Event,
    EventBus,
    OverflowPolicy,
    Ref,
    Task,
    TaskStatus,
)
from dragonscale_lc.runtime._topics import pattern_matches

# -- EventBus ------------------------------------------------------------------------


def test_wants_false_without_subscribers() -> None:
    assert EventBus().wants("task.started") is False


def test_wants_exact_topic() -> None:
    bus = EventBus()
    bus.subscribe("task.started", print)

    assert bus.wants("task.started") is True
    assert bus.wants("task.completed") is False


def test_wants_wildcard() -> None:
    bus = EventBus()
    bus.subscribe("task.*", print)

    assert bus.wants("task.failed") is True
    assert bus.wants("run.started") is False


def test_wants_star_matches_all() -> None:
    bus = EventBus()
    bus.subscribe("*", print)

    assert bus.wants("pool.resized") is True


def test_wants_false_after_unsubscribe() -> None:
    bus = EventBus()
    bus.wants("task.started")  # fills the per-topic cache before the change
    subscription = bus.subscribe("task.*", print)
    bus.unsubscribe(subscription)

    assert bus.wants("task.started") is False


def test_wants_true_after_subscribe_with_cached_miss() -> None:
    bus = EventBus()
    bus.wants("task.started")
    bus.subscribe("task.*", print)

    assert bus.wants("task.started") is True


def test_active_tracks_subscriptions() -> None:
    bus = EventBus()
    inactive_before = bus.active
    subscription = bus.subscribe("schedule.*", print)
    active_after_subscribe = bus.active
    bus.unsubscribe(subscription)

    assert inactive_before is False
    assert active_after_subscribe is True
    assert bus.active is False


def test_unsubscribe_unknown_is_ignored() -> None:
    bus = EventBus()
    other = EventBus().subscribe("*", print)

    bus.unsubscribe(other)

    assert bus.wants("x") is False


def test_publish_in_subscription_order() -> None:
    bus = EventBus()
    calls: list[str] = []
    bus.subscribe("task.*", lambda e: calls.append("wildcard"))
    bus.subscribe("task.started", lambda e: calls.append("exact"))
    bus.subscribe("run.*", lambda e: calls.append("other"))

    bus.publish(Event("task.started"))

    assert calls == ["wildcard", "exact"]


def test_raising_subscriber_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    received: list[str] = []

    def broken(event: Event) -> None:
        raise ValueError("subscriber bug")

    bus.subscribe("task.*", broken)
    bus.subscribe("task.*", lambda e: received.append(e.topic))

    with caplog.at_level(logging.ERROR, logger="dragonscale_lc.runtime"):
        bus.publish(Event("task.started"))
        bus.publish(Event("task.completed"))

    assert received == ["task.started", "task.completed"]
    assert len(caplog.records) == 1
    assert "raised on topic task.started and was unsubscribed" in caplog.records[0].getMessage()


# -- topic patterns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("task.started", "task.started", True),
        ("task.started", "task.completed", False),
        ("task.started", "task.started.late", False),
        ("task.*", "task.started", True),
        ("task.*", "task.retry.scheduled", True),
        ("task.*", "task", False),
        ("task.*", "tasks.started", False),
        ("task.*", "run.started", False),
        ("run.*", "run.cancelled", True),
        ("run.*", "runs.cancelled", False),
        ("*", "pool.resized", True),
        ("*", "run", True),
        ("*.failed", "task.failed", True),
        ("*.failed", "run.failed", True),
        ("*.failed", "task.failed.twice", False),
        ("*.failed", "task.x.failed", False),
        ("task.*.done", "task.a.done", True),
        ("task.*.done", "task.a.b.done", False),
    ],
)
def test_pattern_matching_table(pattern: str, topic: str, expected: bool) -> None:
    bus = EventBus()
    bus.subscribe(pattern, print)

    assert bus.wants(topic) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "invalid topic pattern '': use dotted, non-empty segments"),
        ("task.", "invalid topic pattern 'task.': use dotted, non-empty segments"),
        ("task..started", "invalid topic pattern 'task..started': use dotted"),
        ("task*", "invalid topic pattern 'task*': '*' must be a whole segment"),
        ("*ed.task", "invalid topic pattern '*ed.task': '*' must be a whole segment"),
    ],
)
def test_invalid_pattern_rejected(pattern: str, message: str) -> None:
    with pytest.raises(UsageError, match=f"^{re.escape(message)}"):
        EventBus().subscribe(pattern, print)


def test_wants_is_cached_per_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = EventBus()
    bus.subscribe("task.*", print)
    bus.subscribe("run.*", print)
    calls: list[str] = []

    def counting(pattern: str, topic_parts: list[str]) -> bool:
        calls.append(pattern)
        return pattern_matches(pattern, topic_parts)

    monkeypatch.setattr("dragonscale_lc.runtime._events.pattern_matches", counting)

    for _ in range(1000):
        bus.wants("task.started")
        bus.wants("schedule.fired")

    assert len(calls) == 4  # two patterns, each tried once per topic


# -- subscribe arguments -------------------------------------------------------------------


def test_sync_mode_rejects_coroutine_function() -> None:
    async def handler(event: Event) -> None:
        pass

    with pytest.raises(UsageError, match="is a coroutine function, which cannot be called"):
        EventBus().subscribe("task.*", handler, mode="sync")


def test_invalid_mode_rejected() -> None:
    with pytest.raises(UsageError, match=r"^mode must be 'sync', 'async' or None, got 'later'$"):
        EventBus().subscribe("task.*", print, mode="later")  # type: ignore[arg-type]


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True])
def test_invalid_maxsize_rejected(maxsize: object) -> None:
    message = f"maxsize must be an int of at least 1 event, got {maxsize!r}"

    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        EventBus().subscribe("task.*", print, mode="async", maxsize=maxsize)  # type: ignore[arg-type]


def test_invalid_overflow_rejected() -> None:
    message = "overflow must be one of drop_oldest, drop_newest, got 'block'"

    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        EventBus().subscribe("task.*", print, mode="async", overflow="block")


def test_subscription_settings() -> None:
    async def handler(event: Event) -> None:
        pass

    bus = EventBus()
    inferred = bus.subscribe("task.*", handler)
    plain = bus.subscribe("task.*", print)
    forced = bus.subscribe("task.*", print, mode="async", maxsize=5, overflow="drop_newest")

    assert (inferred.mode, inferred.maxsize, inferred.overflow) == (
        "async",
        DEFAULT_QUEUE_SIZE,
        OverflowPolicy.DROP_OLDEST,
    )
    assert plain.mode == "sync"
    assert (forced.mode, forced.maxsize, forced.overflow) == (
        "async",
        5,
        OverflowPolicy.DROP_NEWEST,
    )


# -- async subscribers -------------------------------------------------------------------


def numbered(count: int, topic: str = "task.started") -> list[Event]:
    return [Event(topic, {"n": n}) for n in range(count)]


async def test_async_subscriber_receives_in_order() -> None:
    bus = EventBus()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    subscription = bus.subscribe("task.*", record)

    for event in numbered(50):
        bus.publish(event)
    queued_before_drain = subscription.queued
    delivered_before_drain = list(received)
    await bus.drain()

    assert delivered_before_drain == []  # publish only queues
    assert queued_before_drain == 50
    assert received == list(range(50))
    assert subscription.queued == 0
    assert subscription.dropped == 0


async def test_async_mode_with_plain_callable() -> None:
    bus = EventBus()
    received: list[int] = []
    bus.subscribe("task.*", lambda event: received.append(event.data["n"]), mode="async")

    for event in numbered(3):
        bus.publish(event)
    delivered_before_drain = list(received)
    await bus.drain()

    assert delivered_before_drain == []
    assert received == [0, 1, 2]


async def test_sync_and_async_subscribers_together() -> None:
    bus = EventBus()
    sync_seen: list[int] = []
    async_seen: list[int] = []

    async def record(event: Event) -> None:
        async_seen.append(event.data["n"])

    bus.subscribe("task.*", record)
    bus.subscribe("task.*", lambda event: sync_seen.append(event.data["n"]))

    for event in numbered(3):
        bus.publish(event)
    sync_before_drain = list(sync_seen)
    await bus.drain()

    assert sync_before_drain == [0, 1, 2]
    assert async_seen == [0, 1, 2]


async def test_drain_waits_for_handler_in_progress() -> None:
    bus = EventBus()
    started = asyncio.Event()
    gate = asyncio.Event()
    finished: list[str] = []

    async def slow(event: Event) -> None:
        started.set()
        await gate.wait()
        finished.append(event.topic)

    bus.subscribe("task.*", slow)
    bus.publish(Event("task.started"))
    await started.wait()

    drain = asyncio.create_task(bus.drain())
    gate.set()
    await drain

    assert finished == ["task.started"]


async def test_drain_waits_for_events_published_by_subscribers() -> None:
    bus = EventBus()
    received: list[str] = []

    async def relay(event: Event) -> None:
        bus.publish(Event("run.relayed"))

    async def record(event: Event) -> None:
        received.append(event.topic)

    bus.subscribe("task.*", relay)
    bus.subscribe("run.*", record)
    bus.publish(Event("task.started"))
    await bus.drain()

    assert received == ["run.relayed"]


async def test_drain_from_subscriber_is_rejected() -> None:
    bus = EventBus()
    errors: list[UsageError] = []

    async def misuse(event: Event) -> None:
        try:
            await bus.drain()
        except UsageError as error:
            errors.append(error)

    bus.subscribe("task.*", misuse)
    bus.publish(Event("task.started"))
    await bus.drain()

    assert len(errors) == 1
    assert "EventBus.drain() was called from an async event subscriber" in str(errors[0])


async def test_unsubscribe_discards_queued_events() -> None:
    bus = EventBus()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    subscription = bus.subscribe("task.*", record)
    for event in numbered(3):
        bus.publish(event)
    bus.unsubscribe(subscription)
    await bus.aclose()

    assert received == []
    assert subscription.queued == 0
    assert subscription.active is False


# -- overflow --------------------------------------------------------------------------


async def test_overflow_drop_oldest(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    subscription = bus.subscribe("task.*", record, maxsize=3, overflow="drop_oldest")

    with caplog.at_level(logging.WARNING, logger="dragonscale_lc.runtime"):
        for event in numbered(5):
            bus.publish(event)
        await bus.drain()

    assert received == [2, 3, 4]
    assert subscription.dropped == 2
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.WARNING
    message = caplog.records[0].getMessage()
    assert "(pattern 'task.*') fell behind: its queue is full at 3 events" in message
    assert "so the oldest event was dropped" in message


async def test_overflow_drop_newest(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    subscription = bus.subscribe("task.*", record, maxsize=3, overflow=OverflowPolicy.DROP_NEWEST)

    with caplog.at_level(logging.WARNING, logger="dragonscale_lc.runtime"):
        for event in numbered(5):
            bus.publish(event)
        await bus.drain()

    assert received == [0, 1, 2]
    assert subscription.dropped == 2
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "(pattern 'task.*') fell behind: its queue is full at 3 events" in message
    assert "so the new event was dropped" in message


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest"])
async def test_overflow_logged_once(overflow: str, caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    subscription = bus.subscribe("task.*", record, maxsize=2, overflow=overflow)

    with caplog.at_level(logging.WARNING, logger="dragonscale_lc.runtime"):
        for event in numbered(5):
            bus.publish(event)
        await bus.drain()
        for event in numbered(4):
            bus.publish(event)
        await bus.drain()

    assert subscription.dropped == 5  # 3 of the first burst, 2 of the second
    assert len(received) == 4
    assert len(caplog.records) == 1


async def test_overflow_of_one_subscriber_spares_others() -> None:
    bus = EventBus()
    small: list[int] = []
    large: list[int] = []

    async def record_small(event: Event) -> None:
        small.append(event.data["n"])

    async def record_large(event: Event) -> None:
        large.append(event.data["n"])

    narrow = bus.subscribe("task.*", record_small, maxsize=1)
    wide = bus.subscribe("task.*", record_large, maxsize=10)
    for event in numbered(10):
        bus.publish(event)
    await bus.drain()

    assert small == [9]
    assert narrow.dropped == 9
    assert large == list(range(10))
    assert wide.dropped == 0


# -- failing async subscribers -------------------------------------------------------------


async def test_raising_async_subscriber_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    calls: list[str] = []
    received: list[str] = []

    async def broken(event: Event) -> None:
        calls.append(event.topic)
        raise ValueError("subscriber bug")

    async def record(event: Event) -> None:
        received.append(event.topic)

    failing = bus.subscribe("task.*", broken)
    bus.subscribe("task.*", record)

    with caplog.at_level(logging.ERROR, logger="dragonscale_lc.runtime"):
        bus.publish(Event("task.started"))
        bus.publish(Event("task.completed"))
        await bus.drain()
        bus.publish(Event("task.failed"))
        await bus.drain()

    assert calls == ["task.started"]
    assert received == ["task.started", "task.completed", "task.failed"]
    assert failing.active is False
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "raised on topic task.started and was unsubscribed" in message
    assert "broken" in message
    assert isinstance(caplog.records[0].exc_info[1], ValueError)  # type: ignore[index]


# -- closing --------------------------------------------------------------------------


async def test_aclose_drains_and_leaves_no_task() -> None:
    before = asyncio.all_tasks()
    bus = EventBus()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    bus.subscribe("task.*", record)
    bus.subscribe("run.*", record)
    for event in [*numbered(3), *numbered(2, topic="run.started")]:
        bus.publish(event)
    started = asyncio.all_tasks() - before
    await bus.aclose()

    assert len(started) == 2  # one consumer task per async subscriber
    assert sorted(received) == [0, 0, 1, 1, 2]
    assert asyncio.all_tasks() == before


async def test_aclose_cancel_discards_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    before = asyncio.all_tasks()
    bus = EventBus()
    started = asyncio.Event()
    cancelled: list[int] = []

    async def stuck(event: Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.append(event.data["n"])
            raise

    subscription = bus.subscribe("task.*", stuck)
    for event in numbered(4):
        bus.publish(event)
    await started.wait()

    with caplog.at_level(logging.WARNING, logger="dragonscale_lc.runtime"):
        await bus.aclose(cancel=True)

    assert cancelled == [0]
    assert subscription.dropped == 3
    assert subscription.queued == 0
    assert asyncio.all_tasks() == before
    assert len(caplog.records) == 1
    assert "closing the event bus discarded 3 queued events" in caplog.records[0].getMessage()


async def test_aclose_cancels_subscriber_that_swallows_cancellation() -> None:
    before = asyncio.all_tasks()
    bus = EventBus()
    started = asyncio.Event()

    async def stubborn(event: Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return  # swallows the cancellation

    bus.subscribe("task.*", stubborn)
    bus.publish(Event("task.started"))
    await started.wait()
    await bus.aclose(cancel=True)

    assert asyncio.all_tasks() == before


async def test_async_with_drains_on_exit() -> None:
    before = asyncio.all_tasks()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    async with EventBus() as bus:
        bus.subscribe("task.*", record)
        for event in numbered(3):
            bus.publish(event)

    assert received == [0, 1, 2]
    assert asyncio.all_tasks() == before


async def test_async_with_cancels_on_error() -> None:
    before = asyncio.all_tasks()
    started = asyncio.Event()

    async def stuck(event: Event) -> None:
        started.set()
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError, match=r"^body failed$"):
        async with EventBus() as bus:
            bus.subscribe("task.*", stuck)
            bus.publish(Event("task.started"))
            await started.wait()
            raise RuntimeError("body failed")

    assert asyncio.all_tasks() == before


async def test_bus_reused_after_aclose() -> None:
    bus = EventBus()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    bus.subscribe("task.*", record)
    bus.publish(Event("task.started", {"n": 1}))
    await bus.aclose()
    bus.publish(Event("task.started", {"n": 2}))
    await bus.aclose()

    assert received == [1, 2]


def test_events_queued_without_loop_are_delivered_later() -> None:
    bus = EventBus()
    received: list[int] = []

    async def record(event: Event) -> None:
        received.append(event.data["n"])

    async def publish_and_leave() -> None:
        # The consumer task starts here but the loop ends before it runs;
        # asyncio.run then cancels it, which must not lose the queued events.
        bus.publish(Event("task.started", {"n": 2}))

    subscription = bus.subscribe("task.*", record)
    bus.publish(Event("task.started", {"n": 1}))  # no running loop
    asyncio.run(publish_and_leave())
    asyncio.run(bus.aclose())

    assert received == [1, 2]
    assert subscription.dropped == 0


# -- cost without subscribers ---------------------------------------------------------------


class CountingBus(EventBus):
    """An EventBus that counts publish calls."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[str] = []

    def publish(self, event: Event) -> None:
        self.published.append(event.topic)
        super().publish(event)


async def test_executor_never_publishes_without_subscribers() -> None:
    bus = CountingBus()
    tasks = [
        Task(id="a", fn=value, args=(1,)),
        Task(id="b", fn=fail, args=(Ref("a"),)),
        Task(id="c", fn=value, args=(Ref("b"),)),
        *(Task(id=i, fn=value, args=(i,)) for i in range(20)),
    ]

    report = await DagExecutor(events=bus, failure_policy="skip_dependents").run(tasks)

    assert report["c"].status is TaskStatus.SKIPPED
    assert bus.published == []


async def test_executor_publishes_only_subscribed_topics() -> None:
    bus = CountingBus()
    received: list[Event] = []
    bus.subscribe("schedule.*", received.append)
    bus.subscribe("task.failed", received.append)
    tasks = [Task(id="a", fn=value), Task(id="b", fn=fail), Task(id="c", fn=value)]

    await DagExecutor(events=bus).run(tasks)

    assert bus.published == ["task.failed"]
    assert [event.data["task_id"] for event in received] == ["b"]


# -- events of a run ---------------------------------------------------------------------


async def fail(*_: object) -> None:
    raise ConnectionError("connection refused")


async def value(x: object = None) -> object:
    return x


async def test_run_event_order() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("*", events.append)
    tasks = [Task(id="a", fn=value, args=(1,)), Task(id="b", fn=fail, args=(Ref("a"),))]

    await DagExecutor(events=bus).run(tasks)

    assert [(e.topic, e.data.get("task_id")) for e in events] == [
        ("run.started", None),
        ("task.ready", "a"),
        ("task.started", "a"),
        ("task.completed", "a"),
        ("task.ready", "b"),
        ("task.started", "b"),
        ("task.failed", "b"),
        ("run.completed", None),
    ]


async def test_completed_event_carries_output() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("task.completed", events.append)

    await DagExecutor(events=bus).run([Task(id=1, fn=value, args=("out",))])

    assert events[0].data["output"] == "out"
    assert events[0].data["status"] == "done"


async def test_failed_event_carries_error() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("task.failed", events.append)

    await DagExecutor(events=bus).run([Task(id=1, fn=fail)])

    assert isinstance(events[0].data["error"], ConnectionError)


async def test_started_event_carries_resolved_args() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("task.started", events.append)
    tasks = [Task(id=1, fn=value, args=(7,)), Task(id=2, fn=value, args=(Ref(1),))]

    await DagExecutor(events=bus).run(tasks)

    assert events[1].data["args"] == (7,)


async def test_skipped_event() -> None:
    bus = EventBus()
    skipped: list[Hashable] = []
    bus.subscribe("task.skipped", lambda e: skipped.append(e.data["task_id"]))
    tasks = [Task(id=1, fn=fail), Task(id=2, fn=value, args=(Ref(1),))]

    await DagExecutor(events=bus, failure_policy="skip_dependents").run(tasks)

    assert skipped == [2]


async def test_raising_subscriber_does_not_affect_run(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    calls: list[str] = []

    def broken(event: Event) -> None:
        calls.append(event.topic)
        raise RuntimeError("subscriber bug")

    bus.subscribe("task.*", broken)
    tasks = [Task(id=i, fn=value, args=(i,)) for i in range(3)]

    with caplog.at_level(logging.ERROR, logger="dragonscale_lc.runtime"):
        report = await DagExecutor(events=bus).run(tasks)

    assert [r.status for r in report] == [TaskStatus.DONE] * 3
    assert calls == ["task.ready"]
    assert len(caplog.records) == 1
    assert bus.wants("task.ready") is False
