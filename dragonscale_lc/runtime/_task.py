"""Tasks: units of work in a graph, and the states they move through."""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import UsageError
from ._refs import find_refs
from ._retry import RetryPolicy

__all__ = ["FailurePolicy", "Task", "TaskStatus"]


class TaskStatus(enum.Enum):
    """Where a task is in its life.

    ``PENDING`` waits for dependencies, ``READY`` waits for a worker,
    ``RUNNING`` occupies a worker slot. The last four are terminal.
    """

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


class FailurePolicy(enum.Enum):
    """Policy for the dependents of a task that failed.

    ``CONTINUE`` runs them with an :class:`ErrorObservation` in place of the
    failed output (LLMCompiler's behaviour: the planner's tools and the joiner
    see the error). ``SKIP_DEPENDENTS`` marks every task downstream of the
    failure as skipped. ``FAIL_FAST`` cancels the whole run.
    """

    CONTINUE = "continue"
    SKIP_DEPENDENTS = "skip_dependents"
    FAIL_FAST = "fail_fast"


_TERMINAL = frozenset(
    {TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.SKIPPED}
)


# Not frozen: a frozen dataclass sets every field through object.__setattr__,
# which triples the cost of creating a task on the executor's hot path.
@dataclass(slots=True, kw_only=True, eq=False)
class Task:
    """A call to run once its dependencies have finished.

    A task is shared, not copied, by the graphs and runs it is added to, so do
    not change one after adding it.

    Args:
        id: Unique id within its graph (an int for plan tasks, any hashable value
            otherwise).
        fn: A sync or async callable. Sync callables run in a worker thread with
            a copy of the caller's context variables.
        args: Positional arguments; may contain ``Ref`` and ``Template`` values.
        kwargs: Keyword arguments; may contain references too.
        dependencies: Ids this task waits for besides those its arguments
            reference. References add their ids automatically.
        name: What the report and events call the callable (a tool name).
        priority: Higher runs first among ready tasks.
        cost: Estimated run time in seconds, used to rank the critical path.
        timeout: Seconds before the task is cancelled and fails, or ``None``.
        preemptible: The executor may cancel and requeue the task for more
            urgent work.
        idempotent: Running the task twice is harmless, so it may be restarted.
        cacheable: Its output depends only on its arguments.
        retry: Retry policy for transient errors, or ``None`` for the executor's.
        resources: Keys besides the name whose concurrency caps apply, such as
            ``"mcp:search-server"``.
        remote: Run the call on the executor's backend (a Dask cluster, for
            instance) instead of in the run. The dispatcher, argument
            resolution and settling stay in the run. A remote task cannot be
            preemptible, because a backend may not interrupt a running call.

    Example:
        >>> from dragonscale_lc.runtime import Ref, Task
        >>> Task(id="b", fn=len, args=(Ref("a"),)).dependencies
        frozenset({'a'})
    """

    id: Hashable
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    dependencies: frozenset[Hashable] = frozenset()
    name: str = ""
    priority: int = 0
    cost: float | None = None
    timeout: float | None = None
    preemptible: bool = False
    idempotent: bool = True
    cacheable: bool = False
    retry: RetryPolicy | None = None
    resources: tuple[str, ...] = ()
    remote: bool = False
    has_refs: bool = field(init=False, repr=False, default=False)

    def __post_init__(self) -> None:
        if self.remote and self.preemptible:
            raise UsageError(
                f"task {self.id!r} is both remote and preemptible; a backend may not be able "
                "to interrupt a running call, so pre-empting it would run it twice. "
                "Drop one of the two flags"
            )
        if self.args or self.kwargs:
            referenced = {ref.task_id for ref in find_refs((self.args, self.kwargs))}
            if referenced:
                self.has_refs = True
                self.dependencies = frozenset(self.dependencies) | referenced
        if type(self.dependencies) is not frozenset:
            self.dependencies = frozenset(self.dependencies)
        if not self.name:
            self.name = getattr(self.fn, "__name__", type(self.fn).__name__)
