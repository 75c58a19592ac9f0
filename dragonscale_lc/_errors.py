"""Exceptions raised by dragonscale_lc.

Every exception derives from :class:`DragonscaleError`::

    DragonscaleError
    ├── UsageError                 misuse by the caller; fix the calling code
    │   ├── GraphError             invalid task graph (unknown, duplicate or
    │   │                          self dependency, cycle)
    │   └── ConfigurationError     invalid compiler, tool or CLI settings
    └── RunError                   a run failed at run time
        ├── TaskError              one task failed (tool raised, timed out)
        │   └── TaskTimeoutError
        ├── PlanError              the planner's text is not a valid plan
        ├── ReplanLimitError       still no answer after the allowed replans
        ├── ModelCallError         the planner or joiner model call failed
        └── DagRunError            a DagRunnable node failed under fail_fast

Usage errors are raised immediately at the call that is wrong. Run errors
describe something that went wrong while work ran; task errors usually do not
propagate at all but become error observations that dependent tasks and the
joiner see.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DagRunError",
    "DragonscaleError",
    "GraphError",
    "ModelCallError",
    "PlanError",
    "ReplanLimitError",
    "RunError",
    "TaskError",
    "TaskTimeoutError",
    "UsageError",
]


class DragonscaleError(Exception):
    """Root of every exception raised by dragonscale_lc."""


class UsageError(DragonscaleError):
    """The library was called in a way it does not support."""


class GraphError(UsageError):
    """A task graph is invalid; the message names the task ids involved."""


class ConfigurationError(UsageError):
    """A compiler, tool or command-line setting is invalid."""


class RunError(DragonscaleError):
    """Something failed while a run was in progress.

    Attributes:
        report: The run's report when the failure ended a run that had
            started tasks, so their results are not lost; otherwise ``None``.
        replans: How many replans the compiler made before the failure, when
            the failure ended a compiler run; otherwise ``None``.
    """

    report: object | None = None
    replans: int | None = None


class TaskError(RunError):
    """A task failed.

    Attributes:
        task_id: The id of the task that failed.
        tool: The name of the callable or tool the task ran.
    """

    def __init__(self, message: str, *, task_id: object, tool: str) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.tool = tool


class TaskTimeoutError(TaskError):
    """A task ran longer than its timeout and was cancelled."""


class PlanError(RunError):
    """The planner produced text that is not a valid plan.

    Attributes:
        line_no: The 1-based line of the plan text where the problem is, if known.
    """

    def __init__(self, message: str, *, line_no: int | None = None) -> None:
        super().__init__(message)
        self.line_no = line_no


class ReplanLimitError(RunError):
    """The compiler used every allowed replan without reaching an answer."""


class ModelCallError(RunError):
    """A chat model call of the planner or the joiner failed.

    The model client's own exception (an HTTP status error, say) is the
    ``__cause__``.

    Attributes:
        step: ``"planner"`` or ``"joiner"``.
        round: 0 for the first plan, 1 for the first replan, and so on.
    """

    def __init__(self, message: str, *, step: str, round: int, report: object) -> None:
        super().__init__(message)
        self.step = step
        self.round = round
        self.report = report


class DagRunError(RunError):
    """A node of a ``DagRunnable`` failed and its ``fail_fast`` policy stopped the run.

    The node's own exception is the ``__cause__``.

    Attributes:
        node: The name of the node that failed.
        outputs: The outputs of every node that finished before the run
            stopped, by node name.
        report: The run's :class:`~dragonscale_lc.runtime.RunReport`.
    """

    def __init__(
        self, message: str, *, node: str, outputs: dict[str, object], report: object
    ) -> None:
        super().__init__(message)
        self.node = node
        self.outputs = outputs
        self.report = report
