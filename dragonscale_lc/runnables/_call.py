"""One run of a DagRunnable's nodes on a fresh DagExecutor, and what its events become."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import patch_config

from .._errors import DagRunError
from ..runtime import (
    DagExecutor,
    ErrorObservation,
    Event,
    EventBus,
    FailurePolicy,
    Ref,
    RunReport,
    Task,
    TaskStatus,
)
from ._node import DagNode

__all__ = ["CUSTOM_EVENT_PREFIX", "DagCall", "custom_event", "node_result"]

logger = logging.getLogger(__name__)

CUSTOM_EVENT_PREFIX = "dragonscale."
"""Prefix of the custom event names that relay runtime topics, as in ``dragonscale.task.ready``."""

# Event fields that stay out of custom events: the node's name is sent as
# "node", and arguments and outputs already appear in the child runs' events.
_OMITTED_FIELDS = frozenset({"task_id", "name", "args", "kwargs", "output"})

RunManager = CallbackManagerForChainRun | AsyncCallbackManagerForChainRun


class DagCall:
    """One run of a set of nodes with one input, on an executor of its own.

    Args:
        nodes: The checked nodes, by name.
        input: The DAG's input.
        input_key: Key of the DAG's input in the dict a node with
            dependencies receives.
        config: The config of the DAG's run; each child gets a copy.
        run_manager: The DAG's run, of which every node is a child run.
        policy: The executor's failure policy.
        max_workers: Most nodes running at once.
        sync: Call the children's ``invoke`` in worker threads instead of
            awaiting their ``ainvoke``.
    """

    def __init__(
        self,
        nodes: Mapping[str, DagNode],
        *,
        input: Any,
        input_key: str,
        config: RunnableConfig,
        run_manager: RunManager,
        policy: FailurePolicy,
        max_workers: int,
        sync: bool,
    ) -> None:
        self._nodes = nodes
        self._input = input
        self._input_key = input_key
        self._config = config
        self._run_manager = run_manager
        self._policy = policy
        self._max_workers = max_workers
        self._sync = sync

    async def events(self) -> AsyncIterator[Event]:
        """Run every node and yield the runtime's ``task.*`` events as they are published.

        Raises:
            DagRunError: A node failed under ``fail_fast``; raised after the
                run's last event.
        """
        events: asyncio.Queue[Event | None] = asyncio.Queue()
        bus = EventBus()
        # A sync subscriber into an unbounded queue, so no event is dropped.
        bus.subscribe("task.*", events.put_nowait)
        executor = DagExecutor(
            max_workers=self._max_workers, failure_policy=self._policy, events=bus
        )
        work = asyncio.create_task(executor.run(self._tasks()))
        work.add_done_callback(lambda _: events.put_nowait(None))
        try:
            while (event := await events.get()) is not None:
                yield event
        finally:
            # The consumer stopped early or was cancelled: stop the nodes too.
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        self._raise_if_stopped(work.result())

    def _tasks(self) -> list[Task]:
        return [
            Task(
                id=name,
                name=name,
                fn=self._node_call(name, node),
                args=tuple(Ref(dep) for dep in node.depends_on),
                priority=node.priority,
                cost=node.cost,
                timeout=node.timeout,
            )
            for name, node in self._nodes.items()
        ]

    def _node_call(self, name: str, node: DagNode) -> Callable[..., Any]:
        # The tag and run name make each child run findable by its node.
        callbacks = self._run_manager.get_child(f"dag:node:{name}")
        config = patch_config(self._config, callbacks=callbacks, run_name=name)
        runnable, dependencies = node.runnable, node.depends_on

        def node_input(outputs: tuple[Any, ...]) -> Any:
            if not dependencies:
                return self._input
            return {**dict(zip(dependencies, outputs, strict=True)), self._input_key: self._input}

        if self._sync:

            def call(*outputs: Any) -> Any:
                return runnable.invoke(node_input(outputs), config)

            return call

        async def acall(*outputs: Any) -> Any:
            return await runnable.ainvoke(node_input(outputs), config)

        return acall

    def _raise_if_stopped(self, report: RunReport) -> None:
        if self._policy is not FailurePolicy.FAIL_FAST or report.ok:
            return
        failed = [record for record in report if record.status is TaskStatus.FAILED]
        if not failed:
            return
        first = min(failed, key=lambda record: record.end or 0.0)
        outputs = {
            str(record.id): record.output for record in report if record.status is TaskStatus.DONE
        }
        error = first.error
        message = (
            f"node {first.id!r} failed with {type(error).__name__}: {error}; "
            f"fail_fast stopped the run with {len(outputs)} of {len(report)} nodes done, "
            "and their outputs are in the error's outputs"
        )
        raise DagRunError(message, node=str(first.id), outputs=outputs, report=report) from error


def node_result(event: Event, policy: FailurePolicy) -> tuple[str, Any] | None:
    """Return the node name and the value the DAG outputs for it, once ``event`` settles it.

    A node that failed or was skipped outputs the :class:`ErrorObservation`
    its dependents saw, except under ``fail_fast``, where the run raises.
    """
    name = str(event.data.get("task_id"))
    if event.topic == "task.completed":
        return name, event.data["output"]
    if event.topic in ("task.failed", "task.skipped") and policy is not FailurePolicy.FAIL_FAST:
        error, status = event.data["error"], event.data["status"]
        logger.info("node %r %s: %r; its output is an ErrorObservation", name, status, error)
        return name, ErrorObservation(name, error)
    return None


def custom_event(event: Event) -> tuple[str, dict[str, Any]]:
    """Return the name and data of the custom event that relays a runtime ``event``."""
    data: dict[str, Any] = {"node": event.data.get("task_id"), "time": event.time}
    for key, value in event.data.items():
        if key in _OMITTED_FIELDS:
            continue
        data[key] = _error_text(value) if isinstance(value, BaseException) else value
    return CUSTOM_EVENT_PREFIX + event.topic, data


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
