"""Pre-emption inside a run: urgent work takes the slot of less urgent preemptible work.

:class:`RunPreemption` is a mixin of :class:`~dragonscale_lc.runtime.Run`. When
every slot is taken and the best ready task's own priority is strictly higher
than the effective (aged) priority of the least urgent running preemptible
task, that task is paused
at its next checkpoint (if it calls checkpoints) or cancelled and requeued.
Each pre-emption ages the task's priority, and after ``max_preemptions`` the
task is no longer pre-empted, so it cannot starve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from ._checkpoint import CheckpointToken
from ._report import TaskRecord
from ._task import TaskStatus

if TYPE_CHECKING:
    from ._executor import DagExecutor
    from ._pool import WorkerPool

__all__ = ["RunPreemption"]


class RunPreemption:
    """Mixin of :class:`Run` that pauses, cancels and requeues running tasks."""

    # Set by Run.__init__.
    _executor: DagExecutor
    _pool: WorkerPool | None
    _running: dict[Hashable, TaskRecord]  # by task id
    _paused: dict[Hashable, TaskRecord]
    _preemptible_running: int
    _cancelled: bool

    if TYPE_CHECKING:
        # Defined by Run.

        def dispatch(self) -> None: ...

        def _make_ready(self, node: TaskRecord) -> None: ...

        def _settle(self, node: TaskRecord, status: TaskStatus) -> None: ...

        def _release(self, node: TaskRecord, *, outcome: TaskStatus | None) -> None: ...

        def _release_slot(
            self, pool: WorkerPool, node: TaskRecord, outcome: TaskStatus | None
        ) -> None: ...

        def _discard_running(self, node: TaskRecord) -> None: ...

        def _publish(self, topic: str, data: Callable[[], dict[str, Any]]) -> None: ...

    def _preempt_for(self, urgent: TaskRecord) -> None:
        """Pre-empt the least urgent running task if ``urgent`` strictly outranks it."""
        victim = min(
            (node for node in self._running.values() if self._preemptible(node)),
            key=lambda node: (node.priority, -node.seq),
            default=None,
        )
        # The urgent task's own priority decides, not its aged one: a requeued
        # victim must not pre-empt its equally urgent peers in turn.
        if victim is None or victim.priority >= urgent.task.priority or victim.preempting:
            return
        victim.preempting = True
        victim.preemptions += 1
        self._publish(
            "task.preempted",
            lambda: {"task_id": victim.task.id, "name": victim.task.name, "by": urgent.task.id},
        )
        token = victim.token
        if not victim.executing and victim.worker_task is not None:
            # Its worker has not run yet and would never reach the code that
            # requeues the task, so the task is requeued here. No work is lost.
            victim.worker_task.cancel()
            self._requeue(victim)
        elif token is not None and token.used:
            token.request()  # it pauses, or raises Preempted, at its next checkpoint
        elif victim.worker_task is not None:
            victim.worker_task.cancel()

    def _preemptible(self, node: TaskRecord) -> bool:
        task = node.task
        if not task.preemptible or node.preemptions >= self._executor.max_preemptions:
            return False
        if node.worker_task is None:
            return False  # begun by the current worker, which runs it next
        if not node.executing:
            return True  # its worker has not started it yet
        token = node.token
        if token is not None and token.used:
            return True  # it cooperates: pausing loses no work
        # Restarting loses the work done so far, which is safe only for
        # idempotent async work; a sync call cannot be interrupted at all.
        return node.is_async and task.idempotent

    def _requeue(self, node: TaskRecord) -> None:
        if node.executing:
            node.attempts -= 1  # a pre-empted attempt does not count
        self._release(node, outcome=None)
        node.preempting = False
        if self._cancelled:
            # The run was cancelled while the pre-emption was under way, and
            # _cancel_all left the task to this worker.
            self._settle(node, TaskStatus.CANCELLED)
            return
        node.priority += self._executor.aging
        self._publish("task.requeued", lambda: {"task_id": node.task.id, "priority": node.priority})
        self._make_ready(node)
        self.dispatch()

    def _pause(self, token: CheckpointToken) -> asyncio.Future[None]:
        """Release the slot of the token's task at its checkpoint; return what resumes it."""
        node = token.node
        assert isinstance(node, TaskRecord)
        self._discard_running(node)
        if self._pool is not None:
            self._release_slot(self._pool, node, None)  # for the urgent task
        node.preempting = False
        node.priority += self._executor.aging
        node.resume = asyncio.get_running_loop().create_future()
        self._paused[node.id] = node
        self._make_ready(node)
        self.dispatch()
        return node.resume

    def _resume(self, node: TaskRecord) -> None:
        self._paused.pop(node.id, None)
        node.status = TaskStatus.RUNNING
        self._running[node.id] = node
        if node.task.preemptible:
            self._preemptible_running += 1
        if self._pool is not None:
            self._pool.acquire(node.keys)  # _take checked can_start
        if node.resume is not None and not node.resume.done():
            node.resume.set_result(None)
