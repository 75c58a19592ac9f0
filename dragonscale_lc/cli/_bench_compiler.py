"""The ``dragonscale bench compiler`` command: LLMCompiler latency against two baselines."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from ..bench import CompilerBenchResult, measure_compiler
from ._bench import JsonFlag, _print_json, _print_table, _seconds, console

__all__ = ["compiler"]


def compiler(
    ttft: Annotated[
        float, typer.Option("--ttft", min=0, help="Seconds from a model call to its first token.")
    ] = 0.3,
    tokens_per_second: Annotated[
        float, typer.Option(min=0.001, help="Tokens the model streams per second.")
    ] = 50.0,
    tool_latency: Annotated[
        float, typer.Option(min=0, help="Seconds every tool call sleeps before it runs.")
    ] = 0.5,
    time_scale: Annotated[
        float,
        typer.Option(min=1e-6, help="Factor on every model and tool delay, for quicker runs."),
    ] = 1.0,
    repeat: Annotated[
        int,
        typer.Option(min=1, help="Timed runs of each strategy per question; the median counts."),
    ] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Time sequential ReAct, plan-then-execute, streaming LLMCompiler and a plan-cache hit."""
    result = asyncio.run(
        measure_compiler(
            time_to_first_token=ttft,
            tokens_per_second=tokens_per_second,
            tool_latency=tool_latency,
            time_scale=time_scale,
            repeat=repeat,
        )
    )
    summary = result.to_dict()
    if as_json:
        _print_json(summary)
        return
    _print_shapes(result)
    total = summary["total"]
    rows = [
        (
            "model",
            f"first token after {ttft:g} s, {tokens_per_second:g} tokens/s, "
            f"time scale {time_scale:g}",
        ),
        ("tools", f"{tool_latency:g} s each, times the time scale"),
        ("runs", f"median of {repeat}"),
        ("sequential (ReAct)", _seconds(total["sequential_s"])),
        ("plan then execute", _seconds(total["plan_then_execute_s"])),
        ("streaming (LLMCompiler)", _seconds(total["streaming_s"])),
        ("plan-cache hit", _seconds(total["plan_cache_hit_s"])),
        ("speedup: sequential / streaming", f"{total['speedup_vs_sequential']:.2f}x"),
        ("speedup: plan then execute / streaming", f"{total['speedup_vs_plan_then_execute']:.2f}x"),
        ("planner calls (plan then execute)", _seconds(total["planner_s"])),
        ("saved by the plan-cache hit", _seconds(total["plan_cache_hit_saved_s"])),
    ]
    _print_table("LLMCompiler latency, all questions", rows, summary["goals"])


def _print_shapes(result: CompilerBenchResult) -> None:
    table = Table(title="LLMCompiler latency per question, seconds", box=box.SIMPLE, pad_edge=False)
    table.add_column("question", no_wrap=True)
    for column in ("k", "calls", "seq", "p/e", "stream", "hit", "seq/str", "p/e/str"):
        table.add_column(column, justify="right", no_wrap=True)
    for shape in result.shapes:
        figures = shape.to_dict()
        table.add_row(
            escape(shape.shape.question.id),
            str(figures["branches"]),
            str(figures["plan_tool_calls"]),
            f"{figures['sequential_s']:.2f}",
            f"{figures['plan_then_execute_s']:.2f}",
            f"{figures['streaming_s']:.2f}",
            f"{figures['plan_cache_hit_s']:.2f}",
            f"{figures['speedup_vs_sequential']:.2f}",
            f"{figures['speedup_vs_plan_then_execute']:.2f}",
        )
    console.print(table)
    console.print(
        "k: parallel lookups. calls: tool calls in the plan. seq: sequential ReAct. "
        "p/e: plan then execute. stream: streaming LLMCompiler. hit: plan-cache hit. "
        "seq/str and p/e/str: speedups of streaming."
    )
