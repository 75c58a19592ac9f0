"""RunReport: what happened to every task of a run."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .._errors import ConfigurationError
from ._node import RunState
from ._task import TaskStatus

__all__ = ["RunReport", "TaskRecord"]


@dataclass(slots=True)
class TaskRecord(RunState):
    """One task's history in a run.

    Times are seconds on the executor's clock, measured from the start of the
    run; ``start`` and ``end`` stay ``None`` for a task that never ran.

    A run also keeps its state for the task in slots inherited from
    :class:`RunState`, which are not fields: the repr, equality, copies and
    pickles of a record hold its fields only.
    """

    id: Hashable
    name: str
    dependencies: Collection[Hashable]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    status: TaskStatus = TaskStatus.PENDING
    output: Any = None
    error: BaseException | None = None
    start: float | None = None
    end: float | None = None
    attempts: int = 0
    preemptions: int = 0
    worker: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds between start and end, or ``None`` if the task did not finish."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # The fields only, in the form object.__getstate__ gives a class with
        # slots, so pickles made before RunState existed still load. The run
        # state contains the task's function and asyncio objects, which do not
        # pickle and do not belong in a copy.
        return None, {name: getattr(self, name) for name in _FIELD_NAMES}


_FIELD_NAMES = tuple(f.name for f in fields(TaskRecord))


@dataclass(slots=True)
class RunReport:
    """Records of every task of a run, in the order the tasks were added."""

    records: dict[Hashable, TaskRecord] = field(default_factory=dict)
    started_at: float = 0.0
    ended_at: float | None = None

    def __iter__(self) -> Iterator[TaskRecord]:
        return iter(self.records.values())

    def __getitem__(self, task_id: Hashable) -> TaskRecord:
        return self.records[task_id]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ok(self) -> bool:
        """Whether every task finished with status ``done``."""
        return all(record.status is TaskStatus.DONE for record in self)

    @property
    def makespan(self) -> float | None:
        """Seconds from the start of the run to its end, once it has ended."""
        return None if self.ended_at is None else self.ended_at - self.started_at

    def plot_gantt(self, path: str | None = None, *, title: str = "task timeline") -> Any:
        """Draw a Gantt chart of the run with matplotlib; save it to ``path`` if given.

        Each task is a bar from its start to its end, coloured by status; tasks
        that never ran are left out. Needs the ``plot`` extra
        (``pip install 'dragonscale_lc[plot]'``).

        Returns:
            The matplotlib ``Figure``.

        Raises:
            ConfigurationError: matplotlib is not installed.
        """
        try:
            from matplotlib.figure import Figure  # noqa: PLC0415 - an optional extra
        except ImportError as error:
            raise ConfigurationError(
                "plot_gantt needs matplotlib: pip install 'dragonscale_lc[plot]'"
            ) from error
        ran = [r for r in self if r.start is not None and r.end is not None]
        figure = Figure(figsize=(8, 0.4 * len(ran) + 1.2))
        axes = figure.add_subplot()
        for row, record in enumerate(ran):
            start, end = record.start or 0.0, record.end or 0.0
            colour = _GANTT_COLOURS.get(record.status.value, "grey")
            axes.barh(row, end - start, left=start, color=colour, edgecolor="black")
        axes.set_yticks(range(len(ran)), [f"{r.id} {r.name}" for r in ran])
        axes.invert_yaxis()
        axes.set_xlabel("seconds since the run started")
        axes.set_title(title)
        figure.tight_layout()
        if path is not None:
            figure.savefig(path)
        return figure

    def to_mermaid(self) -> str:
        """Return a Mermaid flowchart of the tasks, their edges and statuses."""
        lines = ["flowchart TD"]
        for record in self:
            node = _mermaid_id(record.id)
            lines.append(f'    {node}["{record.id}. {record.name}"]:::{record.status.value}')
            lines.extend(f"    {_mermaid_id(dep)} --> {node}" for dep in record.dependencies)
        lines.extend(f"    classDef {status} {style}" for status, style in _MERMAID_STYLES.items())
        return "\n".join(lines)


_GANTT_COLOURS = {
    "done": "#28a745",
    "failed": "#dc3545",
    "cancelled": "#6c757d",
    "skipped": "#ffc107",
    "running": "#007bff",
}

_MERMAID_STYLES = {
    "done": "fill:#d4edda,stroke:#28a745",
    "failed": "fill:#f8d7da,stroke:#dc3545",
    "cancelled": "fill:#e2e3e5,stroke:#6c757d",
    "skipped": "fill:#fff3cd,stroke:#ffc107",
    "pending": "fill:#ffffff,stroke:#6c757d",
    "ready": "fill:#ffffff,stroke:#6c757d",
    "running": "fill:#cce5ff,stroke:#007bff",
}


def _mermaid_id(task_id: Hashable) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in str(task_id))
    return f"t_{text}"
