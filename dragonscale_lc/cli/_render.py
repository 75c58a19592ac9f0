"""Terminal views of a run: live task progress and the final timeline."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..compiler import CompilerResult, format_output
from ..runtime import RunReport, TaskStatus

__all__ = ["Progress", "render_plan", "render_timeline"]

_STATUS_STYLE = {
    "pending": "dim",
    "ready": "cyan",
    "running": "bold blue",
    "done": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "skipped": "yellow",
}
_OUTPUT_WIDTH = 48


class Progress:
    """Task table kept up to date from compiler events; rich re-renders it live."""

    def __init__(self) -> None:
        self._rows: dict[Any, dict[str, Any]] = {}
        self.decision: str | None = None

    def on_event(self, topic: str, data: dict[str, Any]) -> None:
        """Record one compiler event (the ``emit`` callback of ``LLMCompiler.arun``)."""
        if topic == "plan.task_parsed":
            self._rows[data["task_id"]] = {"call": data["call"], "status": "pending", "detail": ""}
        elif topic.startswith("task.") and data.get("task_id") in self._rows:
            row = self._rows[data["task_id"]]
            row["status"] = (
                topic.removeprefix("task.")
                .replace("completed", "done")
                .replace("started", "running")
            )
            if topic == "task.completed":
                row["detail"] = format_output(data.get("output"))
            elif topic == "task.failed":
                error = data.get("error")
                row["detail"] = f"{type(error).__name__}: {error}"
        elif topic == "join.decided":
            self.decision = str(data.get("decision"))

    def __rich__(self) -> RenderableType:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("task")
        table.add_column("status")
        table.add_column("output", overflow="ellipsis", max_width=_OUTPUT_WIDTH, no_wrap=True)
        for row in self._rows.values():
            status = row["status"]
            table.add_row(
                row["call"], Text(status, style=_STATUS_STYLE.get(status, "")), row["detail"]
            )
        return table


def render_plan(plan: str) -> Text:
    """Return a plan's text with task lines and thoughts told apart."""
    text = Text()
    for line in plan.strip().splitlines():
        style = "italic dim" if line.lstrip().lower().startswith("thought") else "cyan"
        text.append(line + "\n", style=style)
    return text


def render_timeline(report: RunReport, *, width: int = 40) -> RenderableType:
    """Return a Gantt-style bar per task, scaled to the run's makespan."""
    records = [record for record in report if record.start is not None and record.end is not None]
    span = max((record.end or 0.0 for record in records), default=0.0) or 1.0
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("id", justify="right")
    table.add_column("tool")
    table.add_column("timeline")
    table.add_column("ms", justify="right")
    for record in records:
        start, end = record.start or 0.0, record.end or 0.0
        left = round(start / span * width)
        length = max(1, round((end - start) / span * width))
        bar = Text(" " * left)
        colour = "green" if record.status is TaskStatus.DONE else "red"
        bar.append("█" * min(length, width - left or 1), style=colour)
        table.add_row(str(record.id), record.name, bar, f"{(end - start) * 1000:.1f}")
    return Group(table, Text(f"makespan {span * 1000:.1f} ms", style="dim"))


def render_answer(result: CompilerResult) -> Text:
    """Return the answer line with the replan count."""
    text = Text("answer: ", style="bold")
    text.append(result.answer, style="bold green")
    if result.replans:
        text.append(f"  ({result.replans} replan(s))", style="dim")
    return text
