"""EventBus delivery and the events a run publishes."""

from __future__ import annotations

import logging
from collections.abc import Hashable

import pytest

from dragonscale_lc.runtime import DagExecutor, Event, EventBus, Ref, Task, TaskStatus

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
