"""EventBus: publish runtime events on dotted topics to subscribers.

Topics look like ``task.completed``; a subscription pattern may end in ``*``
(``task.*``) or be ``*`` alone. Publishing costs one dictionary lookup when no
subscriber matches the topic, so callers check :meth:`EventBus.wants` before
they build an event's payload.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventBus", "Subscription"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in a run.

    Attributes:
        topic: Dotted name such as ``task.started``.
        data: Event details (task id, tool name, output, error).
        time: Seconds since the start of the run that published it.
    """

    topic: str
    data: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0


@dataclass(eq=False, slots=True)
class Subscription:
    """A subscriber's registration; pass it to :meth:`EventBus.unsubscribe`."""

    pattern: str
    callback: Callable[[Event], object]
    active: bool = True


class EventBus:
    """Deliver events synchronously to the subscribers whose pattern matches.

    A subscriber that raises is logged once with the topic and then
    unsubscribed, so one faulty subscriber cannot break a run or flood the log.
    """

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._by_topic: dict[str, tuple[Subscription, ...]] = {}

    def subscribe(self, pattern: str, callback: Callable[[Event], object]) -> Subscription:
        """Call ``callback(event)`` for every event whose topic matches ``pattern``."""
        subscription = Subscription(pattern, callback)
        self._subscriptions.append(subscription)
        self._by_topic.clear()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering events to ``subscription``; unknown ones are ignored."""
        subscription.active = False
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        self._by_topic.clear()

    def wants(self, topic: str) -> bool:
        """Return whether any subscriber would receive an event on ``topic``."""
        return bool(self._matching(topic))

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every matching subscriber, in subscription order."""
        for subscription in self._matching(event.topic):
            if not subscription.active:
                continue
            try:
                subscription.callback(event)
            except Exception:
                logger.exception(
                    "event subscriber %r raised on topic %s and was unsubscribed",
                    subscription.callback,
                    event.topic,
                )
                self.unsubscribe(subscription)

    def _matching(self, topic: str) -> tuple[Subscription, ...]:
        found = self._by_topic.get(topic)
        if found is None:
            found = tuple(s for s in self._subscriptions if fnmatch.fnmatchcase(topic, s.pattern))
            self._by_topic[topic] = found
        return found
