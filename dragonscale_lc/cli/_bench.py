"""The ``dragonscale bench`` commands: overhead, uneven chains, workflows, pre-emption, memory,
DagRunnable against nested RunnableParallel, and the TimedScheduler's idle cost and drift.

The ``compiler`` command lives in ``_bench_compiler`` and is added by the app."""

from __future__ import annotations

import asyncio
import enum
import json
import os
import platform
import sys
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._errors import ConfigurationError
from ..bench import (
    Workflow,
    WorkflowResult,
    load_workflow,
    measure_dag_runnable,
    measure_memory,
    measure_overhead,
    measure_preemption,
    measure_scheduler_drift,
    measure_scheduler_idle,
    measure_uneven,
    measure_workflow,
    scale_for_critical_path,
)

__all__ = ["bench_app"]

bench_app = typer.Typer(
    help="Measure the runtime and the compiler against references and fixed goals.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)

EXIT_USAGE = 2
DEFAULT_TARGET_CRITICAL_PATH = 1.5


class Backend(enum.StrEnum):
    """Backend on which the workflow benchmark runs its tasks."""

    LOCAL = "local"
    DASK = "dask"


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


@bench_app.command()
def overhead(
    nodes: Annotated[int, typer.Option(min=1, help="Tasks in the random DAG.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the random DAG.")] = 0,
    repeat: Annotated[
        int, typer.Option(min=1, help="Timed runs of each runner; the fastest counts.")
    ] = 5,
    langgraph_nodes: Annotated[
        int, typer.Option(min=1, help="Tasks in the DAG that LangGraph runs.")
    ] = 1000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="The executor's max_workers. Default: the executor's, 16."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Time no-op tasks of a random DAG on the executor, bare asyncio and LangGraph."""
    result = asyncio.run(
        measure_overhead(
            nodes, seed=seed, repeat=repeat, langgraph_nodes=langgraph_nodes, workers=workers
        )
    )
    summary = result.to_dict()
    if as_json:
        _print_json(summary)
        return
    rows = [
        ("DAG", f"{nodes} tasks, seed {seed}, best of {repeat}"),
        ("executor max_workers", str(result.workers)),
        ("ours", _seconds(result.ours_s)),
        ("floor: bare asyncio tasks", _seconds(result.floor_s)),
        ("naive asyncio: an Event per node", _seconds(result.naive_asyncio_s)),
        ("ratio to floor", f"{result.ratio_to_floor:.2f}"),
        ("ratio to naive", f"{result.ratio_to_naive:.2f}"),
        ("ours per task", f"{result.ours_per_node_us:.1f} µs"),
        (f"LangGraph per task ({langgraph_nodes} tasks)", f"{result.langgraph_per_node_us:.1f} µs"),
        (
            f"ours per task ({langgraph_nodes} tasks)",
            f"{result.ours_per_node_us_at_langgraph_nodes:.1f} µs",
        ),
        ("LangGraph / ours per task", f"{result.langgraph_factor:.1f}x"),
    ]
    _print_table("overhead", rows, summary["goals"])


@bench_app.command()
def uneven(
    chains: Annotated[int, typer.Option(min=1, help="Parallel chains.")] = 8,
    length: Annotated[int, typer.Option(min=1, help="Steps per chain.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the step durations.")] = 0,
    scale: Annotated[
        float, typer.Option(min=0.001, help="Factor on the 5-100 ms step durations.")
    ] = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """Run parallel chains of uneven sleeps on the executor and on LangGraph."""
    result = asyncio.run(measure_uneven(chains, length, seed=seed, scale=scale))
    summary = result.to_dict()
    if as_json:
        _print_json(summary)
        return
    rows = [
        ("chains", f"{chains} of {length} steps, seed {seed}, scale {scale:g}"),
        ("critical path (longest chain)", _seconds(result.critical_path_s)),
        ("makespan", _seconds(result.makespan_s)),
        ("ratio", f"{result.ratio:.3f}"),
        ("LangGraph makespan", _seconds(result.langgraph_makespan_s)),
        ("LangGraph ratio", f"{result.langgraph_ratio:.3f}"),
        ("superstep bound (sum of slowest steps)", _seconds(result.superstep_bound_s)),
    ]
    _print_table("uneven chains", rows, summary["goals"])


@bench_app.command()
def workflow(
    file: Annotated[
        Path | None, typer.Argument(help="A WfFormat 1.5 JSON workflow instance.")
    ] = None,
    all_in: Annotated[
        Path | None,
        typer.Option("--all", help="Run every *.json workflow instance in this folder."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Tasks running at once.")] = 8,
    time_scale: Annotated[
        float | None,
        typer.Option(min=1e-9, help="Factor from recorded run times to sleep seconds."),
    ] = None,
    target_critical_path: Annotated[
        float | None,
        typer.Option(
            min=1e-6,
            help="Seconds the critical path should last; sets the time scale. "
            f"Default {DEFAULT_TARGET_CRITICAL_PATH:g} s when --time-scale is not given.",
        ),
    ] = None,
    backend: Annotated[
        Backend,
        typer.Option(
            help="Where tasks run: the local event loop, or a Dask cluster started on "
            "127.0.0.1 with --dask-processes worker processes and --workers threads in all."
        ),
    ] = Backend.LOCAL,
    dask_processes: Annotated[
        int, typer.Option(min=1, help="Worker processes of the local Dask cluster.")
    ] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Replay workflow instances as scaled sleeps and compare with list scheduling."""
    paths = _workflow_paths(file, all_in)
    if time_scale is not None and target_critical_path is not None:
        _fail("give --time-scale or --target-critical-path, not both.")
    target = DEFAULT_TARGET_CRITICAL_PATH if target_critical_path is None else target_critical_path

    results = []
    for path in paths:
        loaded = _load(path)
        scale = time_scale if time_scale is not None else _scale_for(loaded, target)
        if not as_json:
            errors.print(f"running {escape(loaded.name)} ({len(loaded.parents)} tasks)")
        if backend is Backend.DASK:
            measure = _dask_measure()
            run = measure(loaded, workers=workers, time_scale=scale, processes=dask_processes)
        else:
            run = measure_workflow(loaded, workers=workers, time_scale=scale)
        results.append(asyncio.run(run))

    if as_json:
        summaries = [result.to_dict() for result in results]
        if all_in is None:
            _print_json(summaries[0])
        else:
            met = all(result.goals["ratio_to_simulated_le_1_05"] for result in results)
            goals = {"ratio_to_simulated_le_1_05": met}
            _print_json({"workers": workers, "instances": summaries, "goals": goals})
        return
    if all_in is None:
        _print_workflow_result(results[0])
    else:
        _print_workflow_summary(results)


@bench_app.command()
def preemption(
    workers: Annotated[
        int, typer.Option(min=1, help="Worker slots, all filled by long tasks.")
    ] = 4,
    repeat: Annotated[
        int, typer.Option(min=1, help="Runs with and without pre-emption; the median counts.")
    ] = 5,
    long_seconds: Annotated[
        float, typer.Option(min=0.001, help="Seconds each long, low-priority task sleeps.")
    ] = 0.2,
    as_json: JsonFlag = False,
) -> None:
    """Time how soon an urgent task starts while long tasks fill every worker."""
    result = asyncio.run(measure_preemption(workers=workers, repeat=repeat, long_s=long_seconds))
    summary = result.to_dict()
    if as_json:
        _print_json(summary)
        return
    rows = [
        ("setup", f"{workers} long tasks of {long_seconds:g} s on {workers} workers"),
        ("runs", f"median of {repeat}"),
        ("urgent start, with pre-emption", _milliseconds(result.high_priority_start_latency_s)),
        ("urgent start, without", _milliseconds(result.without_preemption_latency_s)),
        ("pre-emptions per run", str(result.preemptions)),
        ("victims ran again", _yes(result.victims_reran)),
        ("victims completed", _yes(result.victims_completed)),
        (
            "urgent started before any long task ended",
            _yes(result.urgent_started_before_long_finished),
        ),
    ]
    _print_table("pre-emption", rows, summary["goals"])


@bench_app.command()
def memory(
    nodes: Annotated[int, typer.Option(min=1, help="Tasks in the random DAG.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the random DAG.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Measure peak memory of building, analysing and running a large DAG, in a fresh process."""
    result = asyncio.run(measure_memory(nodes, seed=seed))
    summary = result.to_dict()
    if as_json:
        _print_json(summary)
        return
    rows = [
        ("DAG", f"{nodes} tasks, {result.edges} edges, seed {seed}"),
        ("executor max_workers", str(result.workers)),
        ("peak RSS of the process", f"{result.peak_rss_mb:.1f} MiB"),
        ("peak RSS after imports", f"{result.baseline_rss_mb:.1f} MiB"),
        ("build tasks and TaskGraph", _seconds(result.build_s)),
        ("analysis: upward_ranks, critical_path", _seconds(result.analysis_s)),
        ("run", _seconds(result.run_s)),
    ]
    _print_table("memory", rows, summary["goals"])


@bench_app.command("dag-runnable")
def dag_runnable(
    chains: Annotated[int, typer.Option(min=1, help="Parallel chains.")] = 8,
    length: Annotated[int, typer.Option(min=1, help="Steps per chain.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the step durations.")] = 0,
    scale: Annotated[
        float, typer.Option(min=0.001, help="Factor on the 5-100 ms step durations.")
    ] = 1.0,
    as_json: JsonFlag = False,
) -> None:
    """Run chains of uneven RunnableLambda sleeps as nested RunnableParallel and as DagRunnable."""
    result = asyncio.run(measure_dag_runnable(chains, length, seed=seed, scale=scale))
    if as_json:
        _print_json(result.to_dict())
        return
    rows = [
        ("chains", f"{chains} of {length} steps, seed {seed}, scale {scale:g}"),
        ("critical path (longest chain)", _seconds(result.critical_path_s)),
        ("superstep bound (sum of slowest steps)", _seconds(result.superstep_bound_s)),
        ("nested RunnableParallel makespan", _seconds(result.nested_parallel_makespan_s)),
        ("DagRunnable makespan", _seconds(result.dag_runnable_makespan_s)),
        ("ratio (nested / DagRunnable)", f"{result.ratio:.2f}"),
    ]
    _print_table("DagRunnable against nested RunnableParallel", rows, {})


@bench_app.command("scheduler-idle")
def scheduler_idle(
    jobs: Annotated[
        int, typer.Option(min=1, help="Jobs waiting, due an hour or more ahead.")
    ] = 1000,
    seconds: Annotated[
        float, typer.Option(min=0.001, help="Wall-clock seconds over which CPU time is measured.")
    ] = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Measure the process's CPU use while a TimedScheduler has many waiting jobs."""
    result = asyncio.run(measure_scheduler_idle(jobs, seconds))
    summary = result.to_dict()
    if as_json:
        _print_json(summary)
        return
    rows = [
        ("jobs waiting", f"{jobs}, half one-time, half fixed-rate"),
        ("scheduling them", _seconds(result.schedule_s)),
        ("wall time measured", _seconds(result.seconds)),
        ("CPU time of the process", _seconds(result.cpu_s)),
        ("CPU fraction", f"{result.cpu_fraction:.5f}"),
    ]
    _print_table("TimedScheduler, idle", rows, summary["goals"])


@bench_app.command("scheduler-drift")
def scheduler_drift(
    period: Annotated[
        float, typer.Option(min=0.001, help="Seconds between nominal starts.")
    ] = 0.05,
    runs: Annotated[int, typer.Option(min=2, help="Runs of the fixed-rate job.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the run times.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Compare a fixed-rate job's starts with its nominal times, and with a naive sleep loop."""
    result = asyncio.run(measure_scheduler_drift(period, runs, seed=seed))
    summary = result.to_dict()
    if as_json:
        _print_json(summary)
        return
    rows = [
        ("job", f"{runs} runs every {period:g} s, run times 0 to 40 % of it, seed {seed}"),
        ("max lateness", _milliseconds(result.max_lateness_s)),
        ("mean lateness", _milliseconds(result.mean_lateness_s)),
        ("drift: last start - (t0 + (runs - 1) * period)", _milliseconds(result.drift_s)),
        ("naive sleep loop, drift", _milliseconds(result.naive_drift_s)),
    ]
    _print_table("TimedScheduler, fixed-rate drift", rows, summary["goals"])


def _workflow_paths(file: Path | None, folder: Path | None) -> list[Path]:
    if file is not None and folder is not None:
        _fail("give a workflow FILE or --all FOLDER, not both.")
    if file is not None:
        return [file]
    if folder is None:
        _fail("give a workflow FILE, or --all FOLDER to run every instance in a folder.")
    if not folder.is_dir():
        _fail(f"--all needs a folder, and {str(folder)!r} is not one.")
    paths = sorted(folder.glob("*.json"))
    if not paths:
        _fail(f"no *.json workflow instances in folder {str(folder)!r}.")
    return paths


def _load(path: Path) -> Workflow:
    try:
        return load_workflow(path)
    except ConfigurationError as error:
        _fail(str(error))


def _scale_for(loaded: Workflow, target: float) -> float:
    try:
        return scale_for_critical_path(loaded, target)
    except ValueError as error:
        _fail(f"{error}; pass --time-scale instead.")


def _dask_measure() -> Callable[..., Coroutine[Any, Any, WorkflowResult]]:
    try:
        from ..bench import measure_workflow_on_dask  # noqa: PLC0415 - needs the dask extra
    except ModuleNotFoundError as error:
        _fail(f"--backend dask needs the dask extra ({error}): pip install 'dragonscale_lc[dask]'")
    return measure_workflow_on_dask


def _print_workflow_result(result: WorkflowResult) -> None:
    recorded = result.recorded_makespan_s
    rows = [
        ("backend", result.backend),
        ("instance", escape(result.name)),
        ("tasks, workers", f"{result.tasks}, {result.workers}"),
        ("time scale", f"{result.time_scale:.4g}"),
        ("critical path", _seconds(result.critical_path_s)),
        ("lower bound: max(critical path, work / workers)", _seconds(result.lower_bound_s)),
        ("simulated list schedule", _seconds(result.simulated_list_schedule_s)),
        ("makespan", _seconds(result.makespan_s)),
        ("ratio to simulated", f"{result.ratio_to_simulated:.3f}"),
        ("ratio to lower bound", f"{result.ratio_to_lower_bound:.3f}"),
        ("FIFO makespan (strategy fifo)", _seconds(result.fifo_makespan_s)),
        ("simulated FIFO", _seconds(result.simulated_fifo_s)),
        ("recorded makespan x scale", "-" if recorded is None else _seconds(recorded)),
        ("overhead per task", _milliseconds_or_dash(result.overhead_per_task_ms)),
        (
            "local backend's overhead per task",
            _milliseconds_or_dash(result.local_overhead_per_task_ms),
        ),
        ("no-op remote call, round trip", _milliseconds_or_dash(result.round_trip_ms)),
    ]
    _print_table("workflow", rows, result.goals)


def _milliseconds_or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _print_workflow_summary(results: Iterable[WorkflowResult]) -> None:
    table = Table(title="workflows, in seconds", header_style="bold", box=box.SIMPLE)
    table.add_column("instance", overflow="fold")
    for column in ("tasks", "simulated", "makespan", "/ sim", "/ bound", "FIFO", "goal"):
        table.add_column(column, justify="right", no_wrap=True)
    for result in results:
        table.add_row(
            escape(result.name),
            str(result.tasks),
            f"{result.simulated_list_schedule_s:.3f}",
            f"{result.makespan_s:.3f}",
            f"{result.ratio_to_simulated:.3f}",
            f"{result.ratio_to_lower_bound:.3f}",
            f"{result.fifo_makespan_s:.3f}",
            _goal_mark(result.goals["ratio_to_simulated_le_1_05"]),
        )
    console.print(table)
    console.print(
        "/ sim: makespan over the simulated list schedule (goal: ratio_to_simulated_le_1_05). "
        "/ bound: makespan over max(critical path, work / workers). "
        "FIFO: the same run with the executor's fifo strategy."
    )


def _print_table(title: str, rows: list[tuple[str, str]], goals: dict[str, bool]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right", overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    for goal, met in goals.items():
        table.add_row(f"goal {goal}", _goal_mark(met))
    console.print(table)


def _print_json(summary: dict[str, Any]) -> None:
    summary = {**summary, "environment": _environment()}
    sys.stdout.write(json.dumps(summary) + "\n")


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _seconds(value: float) -> str:
    return f"{value:.4f} s"


def _milliseconds(value: float) -> str:
    return f"{value * 1e3:.3f} ms"


def _yes(value: bool) -> str:
    return "yes" if value else "[bold red]no[/]"


def _goal_mark(met: bool) -> str:
    return "[green]met[/]" if met else "[bold red]not met[/]"


def _fail(message: str) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)
