"""DagRunnable: inputs, outputs, validation, scheduling, config, streaming, events and failures."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableLambda, RunnableParallel

from dragonscale_lc import (
    ConfigurationError,
    DagNode,
    DagRunError,
    DagRunnable,
    ErrorObservation,
    GraphError,
    RunReport,
    TaskStatus,
    TaskTimeoutError,
)

GUARD = 5.0
"""Seconds after which a test counts as hung; every run here takes milliseconds."""


def boom(_: Any) -> Any:
    raise ValueError("boom")


class Recorder(BaseCallbackHandler):
    """Collect chain runs (name, tags, metadata, parent) and custom events, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[UUID, dict[str, Any]] = {}
        self.custom: list[tuple[str, dict[str, Any]]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self.lock:
            self.runs[run_id] = {
                "name": kwargs.get("name"),
                "tags": kwargs.get("tags") or [],
                "metadata": kwargs.get("metadata") or {},
                "parent": kwargs.get("parent_run_id"),
            }

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self.lock:
            self.custom.append((name, data))

    def by_name(self, name: str) -> dict[str, Any]:
        (run,) = [run for run in self.runs.values() if run["name"] == name]
        return run

    def id_of(self, name: str) -> UUID:
        (run_id,) = [run_id for run_id, run in self.runs.items() if run["name"] == name]
        return run_id


def diamond(**kwargs: Any) -> DagRunnable:
    return DagRunnable(
        nodes={
            "double": lambda x: 2 * x,
            "square": lambda x: x * x,
            "total": DagNode(
                lambda d: d["double"] + d["square"] + d["input"], depends_on=["double", "square"]
            ),
        },
        **kwargs,
    )


# Inputs and outputs


def test_roots_get_input_dependents_get_dict() -> None:
    seen: dict[str, Any] = {}

    def record(name: str) -> RunnableLambda[Any, str]:
        return RunnableLambda(lambda value: seen.setdefault(name, value) and name)

    dag = DagRunnable(
        nodes={
            "a": record("a"),
            "b": DagNode(record("b"), depends_on="a"),
            "c": DagNode(record("c"), depends_on=["b", "a"]),
        }
    )

    dag.invoke({"question": "q"})

    assert seen["a"] == {"question": "q"}
    assert seen["b"] == {"a": "a", "input": {"question": "q"}}
    assert seen["c"] == {"b": "b", "a": "a", "input": {"question": "q"}}


def test_input_key_renames_input_entry() -> None:
    dag = DagRunnable(
        nodes={"input": lambda x: x + 1, "next": DagNode(lambda d: d, depends_on="input")},
        input_key="dag_input",
    )

    assert dag.invoke(1) == {"input": 2, "next": {"input": 2, "dag_input": 1}}


def test_output_in_node_order() -> None:
    assert list(diamond().invoke(3).items()) == [("double", 6), ("square", 9), ("total", 18)]


async def test_outputs_subset_still_runs_every_node() -> None:
    calls = Counter[str]()

    def count(name: str, value: int) -> RunnableLambda[Any, int]:
        return RunnableLambda(lambda _: calls.update([name]) or value)

    dag = DagRunnable(
        nodes={"a": count("a", 1), "b": count("b", 2), "c": count("c", 3)}, outputs=["c", "a"]
    )

    result = await dag.ainvoke(None)

    assert list(result.items()) == [("c", 3), ("a", 1)]
    assert calls == {"a": 1, "b": 1, "c": 1}


def test_callables_and_dicts_are_coerced() -> None:
    dag = DagRunnable(nodes={"pair": {"x": lambda v: v, "y": lambda v: -v}})

    assert dag.invoke(4) == {"pair": {"x": 4, "y": -4}}


def test_nodes_may_be_positional() -> None:
    dag = DagRunnable({"one": lambda _: 1})

    assert dag.invoke(None) == {"one": 1}


def test_output_schema_lists_outputs() -> None:
    dag = diamond(outputs=["total"])

    assert list(dag.get_output_schema().model_fields) == ["total"]


# Validation


@pytest.mark.parametrize(
    ("nodes", "error", "message"),
    [
        ({}, ConfigurationError, r"^DagRunnable needs at least one node: pass nodes="),
        (
            {"a": len, "b": DagNode(len, depends_on=["a", "serch"])},
            GraphError,
            r"^node 'b' depends on unknown node 'serch'; the nodes are 'a', 'b'\. "
            r"Fix the name in depends_on or add the node$",
        ),
        (
            {"a": DagNode(len, depends_on="a")},
            GraphError,
            r"^the DagRunnable's nodes are not acyclic: task 'a' depends on itself\. "
            r"Remove a name from depends_on",
        ),
        (
            {
                "a": DagNode(len, depends_on="c"),
                "b": DagNode(len, depends_on="a"),
                "c": DagNode(len, depends_on="b"),
            },
            GraphError,
            r"^the DagRunnable's nodes are not acyclic: the graph has a cycle: "
            r"'a' -> 'b' -> 'c' -> 'a'\. Remove a name from depends_on to break the cycle$",
        ),
        (
            {"input": len},
            ConfigurationError,
            r"^node name 'input' is the key under which nodes receive the DAG's input; "
            r"rename the node, or set input_key to another key$",
        ),
        (
            {"a": 5},
            ConfigurationError,
            r"^node 'a': a node needs a Runnable, a callable or a dict of them, got int 5$",
        ),
        ({"": len}, ConfigurationError, r"^node names must be non-empty strings, got ''$"),
    ],
)
def test_invalid_nodes_rejected(
    nodes: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        DagRunnable(nodes=nodes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depends_on": [1]}, r"^depends_on must contain node names \(strings\), got int 1$"),
        ({"priority": 1.5}, r"^priority must be an int, got 1\.5$"),
        ({"cost": -1}, r"^cost must be a number of seconds, zero or more, got -1$"),
        ({"timeout": 0}, r"^timeout must be a number of seconds, more than zero, got 0$"),
    ],
)
def test_invalid_node_options_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DagNode(len, **kwargs)


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([], r"^outputs is empty: list at least one node name, or leave it unset$"),
        (["total", "nope"], r"^outputs names unknown node 'nope'; the nodes are 'double', "),
    ],
)
def test_invalid_outputs_rejected(outputs: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        diamond(outputs=outputs)


# Scheduling


async def test_fast_chain_does_not_wait_for_slow_branch() -> None:
    # The slow root finishes only after the fast chain's second step has
    # started. A runner that waits for every root before the second level
    # never gets there, and the guard times out.
    release = asyncio.Event()
    order: list[str] = []

    async def slow(_: Any) -> str:
        await release.wait()
        order.append("slow")
        return "slow"

    async def fast(_: Any) -> str:
        order.append("fast")
        return "fast"

    async def second(_: Any) -> str:
        order.append("second")
        release.set()
        return "second"

    dag = DagRunnable(
        nodes={
            "slow": RunnableLambda(slow),
            "fast": RunnableLambda(fast),
            "second": DagNode(RunnableLambda(second), depends_on="fast"),
            "join": DagNode(lambda d: (d["slow"], d["second"]), depends_on=["slow", "second"]),
        }
    )

    async with asyncio.timeout(GUARD):
        result = await dag.ainvoke(None)

    assert order == ["fast", "second", "slow"]
    assert result["join"] == ("slow", "second")


async def test_nested_parallel_waits_for_slowest() -> None:
    # The same graph as nested RunnableParallel steps: the second level waits
    # for the slow branch, which waits for the second level, so it hangs.
    release = asyncio.Event()

    async def slow(_: Any) -> str:
        await release.wait()
        return "slow"

    async def second(_: Any) -> str:
        release.set()
        return "second"

    nested = RunnableParallel(slow=RunnableLambda(slow), fast=lambda _: "fast") | RunnableParallel(
        second=RunnableLambda(second)
    )

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await nested.ainvoke(None)


async def test_priority_orders_ready_nodes() -> None:
    started: list[str] = []

    def node(name: str, priority: int) -> DagNode:
        return DagNode(RunnableLambda(lambda _: started.append(name)), priority=priority)

    dag = DagRunnable(nodes={"low": node("low", 0), "mid": node("mid", 5), "high": node("high", 9)})

    await dag.ainvoke(None, {"max_concurrency": 1})

    assert started == ["high", "mid", "low"]


async def test_cost_puts_critical_path_first() -> None:
    started: list[str] = []

    def node(name: str, **kwargs: Any) -> DagNode:
        return DagNode(RunnableLambda(lambda _: started.append(name)), **kwargs)

    dag = DagRunnable(
        nodes={
            "short": node("short", cost=1.0),
            "long": node("long", cost=1.0),
            "long_tail": node("long_tail", cost=5.0, depends_on="long"),
        }
    )

    await dag.ainvoke(None, {"max_concurrency": 1})

    assert started == ["long", "long_tail", "short"]


# Config


def test_max_concurrency_caps_sync_nodes() -> None:
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=GUARD)
    running, peak = 0, 0

    def work(_: Any) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()  # only passes once two nodes run at once
        with lock:
            running -= 1

    dag = DagRunnable(nodes={f"n{i}": work for i in range(6)})

    dag.invoke(None, {"max_concurrency": 2})

    assert peak == 2


async def test_max_concurrency_caps_async_nodes() -> None:
    barrier = asyncio.Barrier(3)
    running, peak = 0, 0

    async def work(_: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await barrier.wait()  # only passes once three nodes run at once
        running -= 1

    dag = DagRunnable(nodes={f"n{i}": RunnableLambda(work) for i in range(9)}, max_concurrency=3)

    async with asyncio.timeout(GUARD):
        await dag.ainvoke(None)

    assert peak == 3


def test_sync_invoke_runs_nodes_in_threads() -> None:
    main = threading.get_ident()
    dag = DagRunnable(nodes={"where": lambda _: threading.get_ident()})

    assert dag.invoke(None)["where"] != main


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream", "astream"])
async def test_nodes_are_named_child_runs(mode: str) -> None:
    recorder = Recorder()
    config = {
        "callbacks": [recorder],
        "tags": ["outer"],
        "metadata": {"user": "u1"},
        "run_name": "my_dag",
    }
    dag = diamond()

    if mode == "invoke":
        await asyncio.to_thread(dag.invoke, 3, config)
    elif mode == "ainvoke":
        await dag.ainvoke(3, config)
    elif mode == "stream":
        await asyncio.to_thread(lambda: list(dag.stream(3, config)))
    else:
        _ = [chunk async for chunk in dag.astream(3, config)]

    dag_id = recorder.id_of("my_dag")
    for name in ("double", "square", "total"):
        run = recorder.by_name(name)
        assert run["parent"] == dag_id
        assert "outer" in run["tags"]
        assert f"dag:node:{name}" in run["tags"]
        assert run["metadata"]["user"] == "u1"


# Streaming and events


async def test_astream_yields_each_node_when_done() -> None:
    release = asyncio.Event()

    async def slow(_: Any) -> str:
        await release.wait()
        return "slow"

    dag = DagRunnable(nodes={"slow": RunnableLambda(slow), "fast": lambda _: "fast"})
    chunks = []

    async with asyncio.timeout(GUARD):
        async for chunk in dag.astream(None):
            chunks.append(chunk)
            release.set()  # the slow node ends only after the first chunk arrived

    assert chunks == [{"fast": "fast"}, {"slow": "slow"}]


def test_stream_chunks_add_up_to_output() -> None:
    dag = diamond()

    chunks = list(dag.stream(3))

    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert [len(chunk) for chunk in chunks] == [1, 1, 1]
    assert total == dag.invoke(3)


async def test_astream_events_nests_children_and_relays_tasks() -> None:
    dag = diamond()

    events = [event async for event in dag.astream_events(3, version="v2")]

    dag_id = next(e["run_id"] for e in events if e["event"] == "on_chain_start")
    starts = {e["name"]: e for e in events if e["event"] == "on_chain_start"}
    assert starts["total"]["parent_ids"] == [dag_id]
    assert starts["total"]["data"]["input"] == {"double": 6, "square": 9, "input": 3}
    custom = [(e["name"], e["data"]["node"]) for e in events if e["event"] == "on_custom_event"]
    for node in ("double", "square", "total"):
        for topic in ("ready", "started", "completed"):
            assert (f"dragonscale.task.{topic}", node) in custom
    assert all(e["run_id"] == dag_id for e in events if e["event"] == "on_custom_event")
    streamed = [e["data"]["chunk"] for e in events if e["event"] == "on_chain_stream"]
    assert sorted(key for chunk in streamed for key in chunk) == ["double", "square", "total"]
    assert events[-1]["data"]["output"] == {"double": 6, "square": 9, "total": 18}


def test_sync_invoke_dispatches_custom_events() -> None:
    recorder = Recorder()

    diamond().invoke(3, {"callbacks": [recorder]})

    completed = [data for name, data in recorder.custom if name == "dragonscale.task.completed"]
    assert sorted(data["node"] for data in completed) == ["double", "square", "total"]
    assert {data["status"] for data in completed} == {"done"}
    assert all(data["end"] >= data["start"] for data in completed)


# Failures


def failing_dag(**kwargs: Any) -> DagRunnable:
    return DagRunnable(
        nodes={
            "ok": lambda x: x + 1,
            "bad": boom,
            "after_bad": DagNode(lambda d: d["bad"], depends_on="bad"),
            "after_ok": DagNode(lambda d: d["ok"] * 10, depends_on="ok"),
        },
        **kwargs,
    )


async def test_continue_keeps_results_and_passes_error() -> None:
    result = await failing_dag(failure_policy="continue").ainvoke(1)

    assert result["ok"] == 2
    assert result["after_ok"] == 20
    assert isinstance(result["bad"], ErrorObservation)
    assert isinstance(result["bad"].error, ValueError)
    assert result["bad"] == "ERROR in task bad: ValueError: boom"
    assert isinstance(result["after_bad"], ErrorObservation)
    assert result["after_bad"] == result["bad"]


def test_skip_dependents_outputs_skip_error() -> None:
    result = failing_dag(failure_policy="skip_dependents").invoke(1)

    assert result["after_ok"] == 20
    assert isinstance(result["after_bad"], ErrorObservation)
    assert result["after_bad"] == (
        "ERROR in task after_bad: RunError: skipped because task bad (bad) ValueError: boom"
    )


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_fail_fast_raises_with_results(mode: str) -> None:
    dag = failing_dag()

    with pytest.raises(DagRunError) as caught:
        if mode == "invoke":
            dag.invoke(1)
        else:
            await dag.ainvoke(1)

    error = caught.value
    assert error.node == "bad"
    assert isinstance(error.__cause__, ValueError)
    assert isinstance(error.report, RunReport)
    assert error.report["bad"].status is TaskStatus.FAILED
    # Whether "ok" finished before the failure stopped the run depends on timing.
    assert set(error.outputs) <= {"ok", "after_ok"}
    for name, output in error.outputs.items():
        assert output == {"ok": 2, "after_ok": 20}[name]
    assert str(error).startswith("node 'bad' failed with ValueError: boom; fail_fast stopped")


async def test_fail_fast_cancels_slow_node_promptly() -> None:
    never = asyncio.Event()

    async def stuck(_: Any) -> None:
        await never.wait()

    dag = DagRunnable(nodes={"stuck": RunnableLambda(stuck), "done": lambda _: 1, "bad": boom})

    with pytest.raises(DagRunError) as caught:
        async with asyncio.timeout(GUARD):
            await dag.ainvoke(None, {"max_concurrency": 3})

    report = caught.value.report
    assert isinstance(report, RunReport)
    assert report["stuck"].status is TaskStatus.CANCELLED
    assert not never.is_set()


async def test_fail_fast_stream_yields_done_then_raises() -> None:
    dag = DagRunnable(
        nodes={"first": lambda _: 1, "bad": DagNode(boom, depends_on="first")},
    )
    chunks = []

    with pytest.raises(DagRunError, match=r"^node 'bad' failed"):
        async for chunk in dag.astream(None):
            chunks.append(chunk)

    assert chunks == [{"first": 1}]


async def test_timeout_fails_node() -> None:
    never = asyncio.Event()

    async def stuck(_: Any) -> None:
        await never.wait()

    dag = DagRunnable(nodes={"stuck": DagNode(RunnableLambda(stuck), timeout=0.01)})

    with pytest.raises(DagRunError) as caught:
        await dag.ainvoke(None)

    assert isinstance(caught.value.__cause__, TaskTimeoutError)
    assert str(caught.value.__cause__) == "task 'stuck' (stuck) timed out after 0.01 s"


# Composition


def test_lcel_pipe_on_both_sides() -> None:
    prompt = PromptTemplate.from_template("say {word}")
    dag = DagRunnable(
        nodes={
            "text": lambda value: value.to_string(),
            "shout": DagNode(lambda d: d["text"].upper(), depends_on="text"),
        }
    )
    chain = prompt | dag | RunnableLambda(lambda out: out["shout"])

    assert chain.invoke({"word": "hi"}) == "SAY HI"
    assert list(chain.stream({"word": "hi"})) == ["SAY HI"]


async def test_with_retry_reruns_after_fail_fast() -> None:
    attempts = Counter[str]()

    def flaky(x: int) -> int:
        attempts.update(["flaky"])
        if attempts["flaky"] == 1:
            raise ValueError("first call fails")
        return x

    dag = DagRunnable(
        nodes={"flaky": flaky, "next": DagNode(lambda d: d["flaky"] + 1, depends_on="flaky")}
    )
    retrying = dag.with_retry(stop_after_attempt=2, wait_exponential_jitter=False)

    assert await retrying.ainvoke(5) == {"flaky": 5, "next": 6}
    assert attempts["flaky"] == 2


def test_with_config_sets_run_name() -> None:
    recorder = Recorder()

    diamond().with_config(run_name="named").invoke(3, {"callbacks": [recorder]})

    assert recorder.by_name("named")["parent"] is None


async def test_configurable_fields_change_policy() -> None:
    dag = failing_dag().configurable_fields(
        failure_policy=ConfigurableField(id="dag_failure_policy")
    )

    result = await dag.ainvoke(1, {"configurable": {"dag_failure_policy": "continue"}})

    assert result["after_ok"] == 20
    with pytest.raises(DagRunError):
        await dag.ainvoke(1)


async def test_abatch_and_batch_run_each_input() -> None:
    dag = diamond(outputs=["total"])

    assert await dag.abatch([1, 2]) == [{"total": 4}, {"total": 10}]
    assert await asyncio.to_thread(dag.batch, [1, 2]) == [{"total": 4}, {"total": 10}]
