"""Benchmark logic on small inputs: graphs, baselines, LangGraph, simulation, loader,
pre-emption, memory and the command line.

No test asserts a wall-clock time; the benchmarks' figures are in the docs.
"""

from __future__ import annotations

import importlib
import json
import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dragonscale_lc import ConfigurationError, DagExecutor
from dragonscale_lc.bench import (
    build_dag_runnable,
    build_langgraph,
    build_nested_parallel,
    critical_path,
    executor_tasks,
    load_workflow,
    measure_dag_runnable,
    measure_memory_in_process,
    measure_preemption,
    random_dag,
    run_floor,
    run_langgraph,
    run_naive,
    run_preemption_trial,
    simulate_list_schedule,
    topological_order,
)
from dragonscale_lc.cli import app

# Node 3 joins a two-step branch (0 -> 1) and a one-step branch (2), so in
# supersteps its parents finish in different steps.
DIAMOND = {0: (), 1: (0,), 2: (), 3: (1, 2)}

# The CPM worked example: A3, B2, C4, D2 with A->C, B->C, B->D.
CPM_DURATIONS = {"A": 3.0, "B": 2.0, "C": 4.0, "D": 2.0}
CPM_PARENTS: dict[str, tuple[str, ...]] = {"A": (), "B": (), "C": ("A", "B"), "D": ("B",)}


def assert_parents_first(order: list[Any], parents: dict[Any, tuple[Any, ...]]) -> None:
    position = {node: index for index, node in enumerate(order)}
    for node, node_parents in parents.items():
        for parent in node_parents:
            assert position[parent] < position[node], (parent, node, order)


# Random DAGs


@pytest.mark.parametrize("seed", range(5))
def test_random_dag_parents_are_earlier_and_few(seed: int) -> None:
    dag = random_dag(300, seed=seed)

    assert len(dag) == 300
    for index, parents in enumerate(dag):
        assert len(parents) <= 3
        assert len(set(parents)) == len(parents)
        assert all(0 <= parent < index for parent in parents)


def test_random_dag_is_acyclic() -> None:
    dag = random_dag(300, seed=7)

    order = topological_order(dict(enumerate(dag)))

    assert sorted(order) == list(range(300))


def test_random_dag_same_seed_same_graph() -> None:
    assert random_dag(200, seed=3) == random_dag(200, seed=3)
    assert random_dag(200, seed=3) != random_dag(200, seed=4)


def test_random_dag_has_joins() -> None:
    dag = random_dag(200, seed=0)

    assert max(len(parents) for parents in dag) == 3
    assert any(not parents for parents in dag[1:])


def test_topological_order_rejects_cycle() -> None:
    with pytest.raises(ValueError, match=r"the graph has a cycle: 2 nodes"):
        topological_order({"a": ("b",), "b": ("a",)})


# Asyncio baselines and the executor


async def test_floor_runs_every_node() -> None:
    ran: list[int] = []

    async def record(index: int) -> None:
        ran.append(index)

    await run_floor(100, record)

    assert sorted(ran) == list(range(100))


async def test_naive_runs_every_node_after_parents() -> None:
    dag = random_dag(200, seed=1)
    ran: list[int] = []

    async def record(index: int) -> None:
        ran.append(index)

    await run_naive(dag, record)

    assert sorted(ran) == list(range(200))
    assert_parents_first(ran, dict(enumerate(dag)))


async def test_executor_tasks_run_after_parents() -> None:
    dag = random_dag(200, seed=2)
    ran: list[int] = []

    async def record(index: int) -> None:
        ran.append(index)

    report = await DagExecutor(max_workers=200).run(executor_tasks(dag, record))

    assert report.ok
    assert sorted(ran) == list(range(200))
    assert_parents_first(ran, dict(enumerate(dag)))


# LangGraph


async def test_langgraph_join_runs_once_after_all_parents() -> None:
    ran: list[int] = []

    async def record(node: int) -> None:
        ran.append(node)

    done = await run_langgraph(build_langgraph(DIAMOND, record), len(DIAMOND))

    assert sorted(ran) == [0, 1, 2, 3]
    assert ran.count(3) == 1
    assert_parents_first(ran, DIAMOND)
    assert len(done) == 4
    assert set(done) == {0, 1, 2, 3}


async def test_langgraph_random_dag_runs_each_node_once() -> None:
    parents = dict(enumerate(random_dag(60, seed=5)))
    ran: list[int] = []

    async def record(node: int) -> None:
        ran.append(node)

    done = await run_langgraph(build_langgraph(parents, record), len(parents))

    assert sorted(ran) == list(range(60))
    assert_parents_first(ran, parents)
    assert_parents_first(done, parents)


# Discrete-event simulation of list scheduling


def test_simulation_two_machines_independent_tasks() -> None:
    # Rank order a, b, c, d: a and b start at 0, c takes b's machine at 2,
    # d takes a's at 3, and both end at 4.
    durations = {"a": 3.0, "b": 2.0, "c": 2.0, "d": 1.0}
    parents: dict[str, tuple[str, ...]] = dict.fromkeys(durations, ())

    assert simulate_list_schedule(durations, parents, 2) == 4.0


def test_simulation_cpm_example() -> None:
    # A and B start at 0. D starts when B ends at 2, and C when A ends at 3.
    assert simulate_list_schedule(CPM_DURATIONS, CPM_PARENTS, 2) == 7.0
    assert simulate_list_schedule(CPM_DURATIONS, CPM_PARENTS, 1) == 11.0
    assert simulate_list_schedule(CPM_DURATIONS, CPM_PARENTS, None) == 7.0


def test_simulation_rank_beats_fifo() -> None:
    # r leads to the long task s. By rank, r starts at 0 and s runs from 1 to 5.
    # FIFO starts p and q first, so r starts at 1 and s runs from 2 to 6.
    durations = {"p": 1.0, "q": 1.0, "r": 1.0, "s": 4.0}
    parents: dict[str, tuple[str, ...]] = {"p": (), "q": (), "r": (), "s": ("r",)}
    fifo = dict.fromkeys(durations, 0.0)

    assert simulate_list_schedule(durations, parents, 2) == 5.0
    assert simulate_list_schedule(durations, parents, 2, ranks=fifo) == 6.0


def test_simulation_priority_before_rank() -> None:
    durations = {"p": 1.0, "q": 1.0, "r": 1.0, "s": 4.0}
    parents: dict[str, tuple[str, ...]] = {"p": (), "q": (), "r": (), "s": ("r",)}

    makespan = simulate_list_schedule(durations, parents, 2, priorities={"p": 1, "q": 1})

    assert makespan == 6.0


def test_simulation_insertion_order_breaks_ties() -> None:
    # Equal ranks: when x, the head of the chain x -> z, is inserted first,
    # z starts at 1 and ends at 4; inserted last, x waits for y and w.
    durations = {"x": 1.0, "y": 1.0, "w": 1.0, "z": 3.0}
    parents: dict[str, tuple[str, ...]] = {"x": (), "y": (), "w": (), "z": ("x",)}
    ranks = dict.fromkeys(durations, 0.0)

    x_first = simulate_list_schedule(durations, parents, 2, ranks=ranks, order="xywz")
    x_last = simulate_list_schedule(durations, parents, 2, ranks=ranks, order="ywxz")

    assert x_first == 4.0
    assert x_last == 5.0


@pytest.mark.parametrize("seed", range(5))
def test_simulation_unlimited_machines_is_critical_path(seed: int) -> None:
    rng = random.Random(seed)
    parents = dict(enumerate(random_dag(150, seed=seed)))
    durations = {node: rng.uniform(0.0, 5.0) for node in parents}

    simulated = simulate_list_schedule(durations, parents, None)

    assert simulated == critical_path(durations, parents, topological_order(parents))


@pytest.mark.parametrize("seed", range(3))
def test_simulation_between_bounds(seed: int) -> None:
    rng = random.Random(seed)
    parents = dict(enumerate(random_dag(150, seed=seed)))
    durations = {node: rng.uniform(0.0, 5.0) for node in parents}
    path = critical_path(durations, parents, topological_order(parents))

    simulated = simulate_list_schedule(durations, parents, 4)

    # Graham's bound for any list schedule: at most work / m + critical path.
    assert max(path, sum(durations.values()) / 4) <= simulated
    assert simulated <= sum(durations.values()) / 4 + path
    assert simulate_list_schedule(durations, parents, 1) == pytest.approx(sum(durations.values()))


def test_simulation_rejects_zero_machines() -> None:
    with pytest.raises(ValueError, match="machines must be at least 1 or None, got 0"):
        simulate_list_schedule({"a": 1.0}, {"a": ()}, 0)


# Pre-emption

# Far longer than adding the urgent task takes, so no long task ends first,
# yet short enough to keep the tests fast.
LONG_S = 0.05


async def test_preemption_urgent_starts_first() -> None:
    trial = await run_preemption_trial(2, LONG_S, preemptible=True)

    assert trial.urgent_started_before_long_finished
    assert trial.preemptions >= 1
    assert trial.victims_reran
    assert trial.victims_completed
    assert trial.latency_s >= 0


async def test_no_preemption_urgent_waits() -> None:
    trial = await run_preemption_trial(2, LONG_S, preemptible=False)

    assert not trial.urgent_started_before_long_finished
    assert trial.preemptions == 0
    assert trial.victims == ()
    assert not trial.victims_reran


async def test_preemption_result_has_every_field() -> None:
    result = await measure_preemption(workers=1, repeat=2, long_s=LONG_S)

    summary = result.to_dict()
    assert len(summary["latencies_s"]) == len(summary["without_preemption_latencies_s"]) == 2
    assert summary["preemptions"] == 1  # one worker: the urgent task's victim is the only one
    assert summary["victims_reran"] and summary["victims_completed"]
    assert summary["urgent_started_before_long_finished"]
    assert summary["speedup"] > 0
    assert set(summary["goals"]) == {"high_priority_start_latency_le_5_ms"}


@pytest.mark.parametrize("bad", [{"workers": 0}, {"repeat": 0}, {"long_s": 0.0}])
async def test_preemption_rejects_bad_settings(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be at least 1 and long_s positive"):
        await measure_preemption(**bad)


# Memory


async def test_memory_in_process_tiny_graph() -> None:
    result = await measure_memory_in_process(50, seed=1)

    assert (result.nodes, result.seed, result.workers) == (50, 1, 16)
    assert result.edges == sum(len(parents) for parents in random_dag(50, seed=1))
    assert result.critical_path_tasks >= 1
    for value in (result.baseline_rss_mb, result.peak_rss_mb, result.ru_maxrss_mb):
        assert value > 0
    assert result.peak_rss_mb >= result.baseline_rss_mb
    for value in (result.build_s, result.analysis_s, result.run_s):
        assert value > 0
    assert set(result.goals) == {"peak_rss_mb_le_300"}


async def test_memory_rejects_empty_graph() -> None:
    with pytest.raises(ValueError, match="nodes must be at least 1, got 0"):
        await measure_memory_in_process(0)


# WfFormat loader


def wfformat(
    tasks: list[dict[str, Any]], runtimes: dict[str, Any], makespan: float | None = 9.0
) -> dict[str, Any]:
    execution: dict[str, Any] = {
        "tasks": [{"id": tid, "runtimeInSeconds": runtime} for tid, runtime in runtimes.items()]
    }
    if makespan is not None:
        execution["makespanInSeconds"] = makespan
    return {
        "name": "synthetic",
        "schemaVersion": "1.5",
        "workflow": {"specification": {"tasks": tasks, "files": []}, "execution": execution},
    }


SYNTHETIC = wfformat(
    # Listed child first, as some real instances are.
    [
        {"id": "merge", "name": "merge", "parents": ["split_1", "split_2"], "children": []},
        {"id": "split_1", "name": "split", "parents": [], "children": ["merge"]},
        {"id": "split_2", "name": "split", "parents": [], "children": ["merge"]},
    ],
    {"split_1": 4.0, "split_2": 2, "merge": 1.5},
)


def write_json(folder: Path, name: str, document: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_loader_reads_parents_and_runtimes(tmp_path: Path) -> None:
    workflow = load_workflow(write_json(tmp_path, "tiny.json", SYNTHETIC))

    assert workflow.name == "tiny"
    assert dict(workflow.parents) == {
        "merge": ("split_1", "split_2"),
        "split_1": (),
        "split_2": (),
    }
    assert dict(workflow.runtimes) == {"merge": 1.5, "split_1": 4.0, "split_2": 2.0}
    assert workflow.order == ("split_1", "split_2", "merge")
    assert workflow.recorded_makespan == 9.0


def test_loader_makespan_is_optional(tmp_path: Path) -> None:
    document = wfformat([{"id": "a", "parents": []}], {"a": 1.0}, makespan=None)

    assert load_workflow(write_json(tmp_path, "a.json", document)).recorded_makespan is None


def without_runtime(document: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(document))
    del copy["workflow"]["execution"]["tasks"][1]["runtimeInSeconds"]
    return copy


MALFORMED = [
    (without_runtime(SYNTHETIC), r"workflow\.execution\.tasks\[1\]\.runtimeInSeconds is missing"),
    ({"workflow": {"execution": {}}}, r"workflow\.specification is missing"),
    ([], r"the top level must be a JSON object, got an array"),
    (
        wfformat([{"id": "a", "parents": "b"}], {"a": 1.0}),
        r"workflow\.specification\.tasks\[0\]\.parents must be a JSON array, got a string",
    ),
    (
        wfformat([{"id": "a", "parents": ["ghost"]}], {"a": 1.0}),
        r"workflow\.specification\.tasks\[0\]\.parents: task 'a' names unknown parent 'ghost'",
    ),
    (
        wfformat([{"id": "a", "parents": []}, {"id": "b", "parents": []}], {"a": 1.0}),
        r"workflow\.execution\.tasks has no runtimeInSeconds for task 'b'",
    ),
    (
        wfformat([{"id": "a", "parents": []}], {"a": -1}),
        r"workflow\.execution\.tasks\[0\]\.runtimeInSeconds must be a number of seconds, "
        r"0 or more, got -1",
    ),
    (
        wfformat([{"id": "a", "parents": ["b"]}, {"id": "b", "parents": ["a"]}], {"a": 1, "b": 1}),
        r"workflow\.specification\.tasks: the graph has a cycle",
    ),
]


@pytest.mark.parametrize(("document", "message"), MALFORMED)
def test_loader_rejects_malformed_file(tmp_path: Path, document: Any, message: str) -> None:
    path = write_json(tmp_path, "broken.json", document)

    with pytest.raises(ConfigurationError, match=message) as caught:
        load_workflow(path)

    assert str(caught.value).startswith(f"invalid workflow file {str(path)!r}: ")


def test_loader_rejects_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('{"workflow": ', encoding="utf-8")

    with pytest.raises(ConfigurationError, match=r"cut\.json' is not valid JSON: .* line 1"):
        load_workflow(path)


def test_loader_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read workflow file '.*nothing\.json'"):
        load_workflow(tmp_path / "nothing.json")


# Command line


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["bench", *args, "--json"])

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    summary = json.loads(lines[0])
    assert isinstance(summary, dict)
    return summary


def test_cli_overhead_json(runner: CliRunner) -> None:
    summary = invoke_json(
        runner, "overhead", "--nodes", "60", "--repeat", "1", "--langgraph-nodes", "20"
    )

    assert summary["nodes"] == 60
    assert summary["langgraph_nodes"] == 20
    for key in ("ours_s", "floor_s", "naive_asyncio_s", "ratio_to_floor", "ratio_to_naive"):
        assert summary[key] > 0
    assert summary["ours_per_node_us"] > 0
    assert summary["langgraph_per_node_us"] > 0
    assert set(summary["goals"]) == {
        "ratio_to_floor_le_2_5",
        "ratio_to_naive_le_1_0",
        "langgraph_per_node_ge_20x_ours",
    }
    assert summary["environment"]["cpus"] >= 1


def test_cli_uneven_json(runner: CliRunner) -> None:
    summary = invoke_json(
        runner, "uneven", "--chains", "3", "--length", "2", "--scale", "0.01", "--seed", "2"
    )

    assert summary["chains"] == 3
    assert summary["critical_path_s"] <= summary["superstep_bound_s"]
    assert summary["makespan_s"] > 0
    assert summary["langgraph_makespan_s"] > 0
    assert summary["ratio"] == pytest.approx(summary["makespan_s"] / summary["critical_path_s"])
    assert set(summary["goals"]) == {"ratio_le_1_03"}


def test_cli_workflow_json(runner: CliRunner, tmp_path: Path) -> None:
    path = write_json(tmp_path, "tiny.json", SYNTHETIC)

    summary = invoke_json(
        runner, "workflow", str(path), "--workers", "1", "--target-critical-path", "0.01"
    )

    assert summary["tasks"] == 3
    assert summary["workers"] == 1
    assert summary["critical_path_s"] == pytest.approx(0.01)
    # One worker runs all 7.5 recorded seconds of work back to back.
    assert summary["lower_bound_s"] == pytest.approx(0.01 * 7.5 / 5.5)
    assert summary["simulated_list_schedule_s"] == pytest.approx(summary["lower_bound_s"])
    assert summary["recorded_makespan_s"] == pytest.approx(9.0 * 0.01 / 5.5)
    assert summary["fifo_makespan_s"] > 0
    assert set(summary["goals"]) == {"ratio_to_simulated_le_1_05"}


def test_cli_workflow_all_json(runner: CliRunner, tmp_path: Path) -> None:
    write_json(tmp_path, "one.json", SYNTHETIC)
    write_json(tmp_path, "two.json", wfformat([{"id": "a", "parents": []}], {"a": 3.0}))

    summary = invoke_json(
        runner, "workflow", "--all", str(tmp_path), "--workers", "2", "--time-scale", "0.001"
    )

    assert [instance["name"] for instance in summary["instances"]] == ["one", "two"]
    assert summary["instances"][1]["critical_path_s"] == pytest.approx(0.003)
    assert set(summary["goals"]) == {"ratio_to_simulated_le_1_05"}


def test_cli_preemption_json(runner: CliRunner) -> None:
    summary = invoke_json(
        runner, "preemption", "--workers", "2", "--repeat", "1", "--long-seconds", str(LONG_S)
    )

    assert summary["workers"] == 2
    assert summary["long_task_s"] == LONG_S
    for key in ("high_priority_start_latency_s", "without_preemption_latency_s"):
        assert summary[key] > 0
    assert summary["preemptions"] >= 1
    assert summary["victims_reran"] and summary["victims_completed"]
    assert set(summary["goals"]) == {"high_priority_start_latency_le_5_ms"}


def test_cli_memory_json(runner: CliRunner) -> None:
    summary = invoke_json(runner, "memory", "--nodes", "30", "--seed", "2")

    assert (summary["nodes"], summary["seed"]) == (30, 2)
    for key in ("baseline_rss_mb", "peak_rss_mb", "ru_maxrss_mb", "run_s", "analysis_s"):
        assert summary[key] > 0
    assert summary["graph_rss_mb"] >= 0
    assert set(summary["goals"]) == {"peak_rss_mb_le_300"}


def test_cli_workflow_table(runner: CliRunner, tmp_path: Path) -> None:
    path = write_json(tmp_path, "tiny.json", SYNTHETIC)

    result = runner.invoke(app, ["bench", "workflow", str(path), "--target-critical-path", "0.01"])

    assert result.exit_code == 0, result.stderr
    assert "simulated list schedule" in result.stdout
    assert "goal ratio_to_simulated_le_1_05" in result.stdout


def test_cli_workflow_malformed_file(runner: CliRunner, tmp_path: Path) -> None:
    path = write_json(tmp_path, "broken.json", without_runtime(SYNTHETIC))

    result = runner.invoke(app, ["bench", "workflow", str(path), "--json"])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "broken.json" in result.stderr
    assert "runtimeInSeconds is missing" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a workflow FILE, or --all FOLDER"),
        (["x.json", "--all", "."], "not both"),
        (["x.json", "--time-scale", "1", "--target-critical-path", "1"], "not both"),
    ],
)
def test_cli_workflow_usage_errors(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["bench", "workflow", *args])

    assert result.exit_code == 2
    assert message in result.stderr


# Public surface


def test_bench_exports_match_all() -> None:
    module = importlib.import_module("dragonscale_lc.bench")
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "TYPE_CHECKING"}
    }

    assert [name for name in module.__all__ if not hasattr(module, name)] == []
    assert public - set(module.__all__) == set()


def test_bench_import_does_not_load_langgraph() -> None:
    # A fresh interpreter: this one has loaded LangGraph for the tests above.
    code = "import sys, dragonscale_lc.bench; print('langgraph' in sys.modules)"

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )

    assert result.stdout.strip() == "False"


# DagRunnable against nested RunnableParallel


TINY_CHAINS = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))


async def test_dag_runnable_and_nested_parallel_agree() -> None:
    nested = await build_nested_parallel(TINY_CHAINS).ainvoke(None)
    dag = await build_dag_runnable(TINY_CHAINS, outputs=["c0.s2", "c1.s2"]).ainvoke(None)

    assert nested == {"c0.s2": "c0.s2", "c1.s2": "c1.s2"}
    assert dag == nested


def test_dag_runnable_depends_on_chain_step() -> None:
    dag = build_dag_runnable(TINY_CHAINS)

    assert dag.max_concurrency == 2
    assert dag.nodes["c1.s2"].depends_on == ("c1.s1",)
    assert dag.nodes["c1.s0"].depends_on == ()


async def test_measure_dag_runnable_tiny() -> None:
    result = await measure_dag_runnable(2, 3, seed=1, scale=0.001)
    summary = result.to_dict()

    assert summary["critical_path_s"] <= summary["superstep_bound_s"]
    assert summary["ratio"] == result.nested_parallel_makespan_s / result.dag_runnable_makespan_s
    assert (summary["chains"], summary["length"], summary["seed"]) == (2, 3, 1)


async def test_measure_dag_runnable_rejects_empty() -> None:
    with pytest.raises(ValueError, match=r"^chains and length must be at least 1"):
        await measure_dag_runnable(0, 3)


def test_cli_bench_dag_runnable_json(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        ["bench", "dag-runnable", "--chains", "2", "--length", "2", "--scale", "0.001", "--json"],
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["nested_parallel_makespan_s"] > 0
    assert summary["dag_runnable_makespan_s"] > 0
    assert "ratio" in summary
    assert "environment" in summary
