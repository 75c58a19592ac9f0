"""Cost estimates: how long a task is expected to run, learned per tool."""

from __future__ import annotations

import math

from .._errors import UsageError
from ._report import RunReport
from ._task import Task, TaskStatus

__all__ = ["DEFAULT_COST", "CostModel"]

DEFAULT_COST = 1.0
"""Seconds assumed for a task that states no cost estimate."""


class CostModel:
    """Per-tool averages of observed run times, used as task cost estimates.

    The estimate for a task is its own ``cost`` if it states one, else the
    average observed duration of its tool (``task.name``), else ``default``.
    Each observation takes O(1) time and the model stores two numbers per tool.

    The average is the plain mean of a tool's first ``1 / smoothing``
    observations, then an exponential moving average with weight
    ``smoothing`` on the newest one. ``smoothing=0`` keeps the plain mean.

    The model takes no lock, so call :meth:`observe` from one thread only,
    such as the event loop's thread. Reading estimates from other threads is
    safe because each update replaces a single dictionary entry.

    Args:
        default: Seconds estimated for a tool with no observations yet.
        smoothing: Weight of the newest observation once the moving average
            takes over, between 0 and 1.

    Example:
        >>> from dragonscale_lc.runtime import CostModel, Task
        >>> model = CostModel()
        >>> model.observe("search", 2.0)
        >>> model.observe("search", 4.0)
        >>> model.estimate(Task(id=1, fn=print, name="search"))
        3.0
        >>> model.estimate(Task(id=2, fn=print, name="search", cost=0.5))
        0.5
    """

    __slots__ = ("_averages", "default", "smoothing")

    def __init__(self, *, default: float = DEFAULT_COST, smoothing: float = 0.1) -> None:
        check_seconds(default, "default cost")
        if not 0 <= smoothing <= 1:
            raise UsageError(f"smoothing {smoothing!r} is invalid: pass a weight from 0 to 1")
        self.default = default
        self.smoothing = smoothing
        self._averages: dict[str, tuple[int, float]] = {}

    def observe(self, name: str, seconds: float) -> None:
        """Add one observed run time of tool ``name`` to its average."""
        # The comparison is false for NaN and infinity too. It saves the
        # executor a call and an error message per finished task.
        if not 0 <= seconds < math.inf:
            check_seconds(seconds, f"observed duration of {name!r}")
        count, average = self._averages.get(name, (0, 0.0))

        # A plain mean while samples are few, because a moving average seeded
        # by one sample overweights it. After that a moving average, so the
        # estimate follows a tool whose latency drifts (a loaded API).
        count += 1
        weight = max(1 / count, self.smoothing)
        self._averages[name] = (count, average + weight * (seconds - average))

    def observe_report(self, report: RunReport) -> None:
        """Add the run time of every task that finished successfully in ``report``."""
        for record in report:
            if record.status is TaskStatus.DONE and record.duration is not None:
                self.observe(record.name, record.duration)

    def average(self, name: str) -> float | None:
        """Return the average observed run time of tool ``name``, or ``None`` if unseen."""
        entry = self._averages.get(name)
        return None if entry is None else entry[1]

    def estimate(self, task: Task) -> float:
        """Return the expected run time of ``task`` in seconds."""
        if task.cost is not None:
            return task.cost
        # The dictionary is read here, not through average(), because ranking
        # a graph calls this once per task.
        entry = self._averages.get(task.name)
        return self.default if entry is None else entry[1]


def check_seconds(value: float, what: str) -> None:
    """Raise :class:`UsageError` unless ``value`` is a finite number of seconds, zero or more."""
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"{what} is {value!r} seconds: pass a finite number of zero or more")
