"""The ``dragonscale`` command: run questions and plans, and the offline demo."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import SecretStr
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.rule import Rule

from .._errors import ConfigurationError, DragonscaleError
from .._parallelqa import is_correct, load_plans, load_questions
from ..compiler import DEFAULT_TASK_TIMEOUT, CompilerResult, LLMCompiler, PlanCache, report_tasks
from ..runtime import ErrorObservation, RunReport
from ..tools import builtin_tools, load_tools_config
from ._bench import bench_app
from ._bench_compiler import compiler as bench_compiler
from ._render import Progress, render_answer, render_plan, render_timeline

__all__ = ["app", "main"]

app = typer.Typer(
    help="Plan tool calls with a chat model and run them as a concurrent task graph.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app.command("compiler")(bench_compiler)
app.add_typer(bench_app, name="bench")
console = Console()
errors = Console(stderr=True)

DEFAULT_MODEL = "gpt-4o-mini"
EXIT_FAILED = 1
EXIT_USAGE = 2


@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    plan: Annotated[
        Path | None,
        typer.Option(
            help="Run the plan in this file instead of asking the planner model.", exists=False
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help=f"Chat model name (env DRAGONSCALE_MODEL; default {DEFAULT_MODEL}).",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL of an OpenAI-compatible API such as vLLM, llama.cpp or Ollama "
            "(env OPENAI_BASE_URL).",
            show_default=False,
        ),
    ] = None,
    direct_join: Annotated[
        bool,
        typer.Option(
            help="Answer with the last task's output instead of asking the model to join."
        ),
    ] = False,
    max_replans: Annotated[int, typer.Option(min=0, help="How many times to plan again.")] = 2,
    max_concurrency: Annotated[
        int, typer.Option(min=1, help="Most tool calls running at once.")
    ] = 16,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds before a tool call is cancelled.")
    ] = DEFAULT_TASK_TIMEOUT,
    tools_config: Annotated[
        Path | None,
        typer.Option(
            help="TOML file declaring more tools: MCP servers, WASM modules, Python functions.",
            show_default=False,
        ),
    ] = None,
    plan_cache: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file of cached plans: a question asked before skips the planner call.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Answer QUESTION with the configured chat model, or run a plan file with --plan."""
    _configure_logging()
    if not question.strip():
        _fail("the question is empty; pass the text to answer as QUESTION.", EXIT_USAGE)
    chat_model = _chat_model(model, base_url)
    if chat_model is None and plan is None:
        _fail(
            "no chat model is configured. Set OPENAI_API_KEY (and optionally --model), "
            "or pass --base-url for an OpenAI-compatible server, "
            "or run a plan file without a model with --plan FILE.",
            EXIT_USAGE,
        )
    plan_text = _read_plan(plan) if plan is not None else None
    try:
        compiler = LLMCompiler(
            tools=builtin_tools(),
            tools_config=load_tools_config(tools_config) if tools_config is not None else None,
            model=chat_model,
            plan=plan_text,
            direct_join=direct_join,
            max_replans=max_replans,
            max_concurrency=max_concurrency,
            task_timeout=timeout,
            plan_cache=_open_plan_cache(plan_cache) if plan_cache is not None else None,
        )
    except ConfigurationError as error:
        _fail(str(error), EXIT_USAGE)
    source = f"plan file {str(plan)!r}: " if plan is not None else ""
    result = _answer(
        compiler, question, plan_text, show=not as_json, source=source, as_json=as_json
    )
    if as_json:
        sys.stdout.write(json.dumps(_run_json(result), ensure_ascii=False) + "\n")
    else:
        console.print(render_timeline(result.report))
        console.print(render_answer(result))
    if isinstance(result.answer, ErrorObservation):
        # The answering task failed: the output above shows why, and scripts
        # get a non-zero exit status.
        raise typer.Exit(EXIT_FAILED)


@app.command()
def demo(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Answer the shipped ParallelQA country questions offline and score the answers."""
    _configure_logging()
    plans = load_plans()
    rows = []
    for question in load_questions():
        plan_text = plans[question.id]
        compiler = LLMCompiler(tools=builtin_tools(), plan=plan_text)
        if not as_json:
            console.print(Rule(f"question {question.id}"))
            console.print(question.question, style="bold")
            console.print(render_plan(plan_text))
        result = _answer(compiler, question.question, plan_text, show=not as_json)
        correct = is_correct(result.answer, question.answer)
        rows.append(
            {
                "id": question.id,
                "answer": result.answer,
                "expected": question.answer,
                "correct": correct,
            }
        )
        if not as_json:
            console.print(render_timeline(result.report))
            mark = "[green]correct[/]" if correct else "[bold red]wrong[/]"
            console.print(f"answer [bold]{result.answer}[/], expected {question.answer}: {mark}")
    score = sum(1 for row in rows if row["correct"])
    if as_json:
        sys.stdout.write(
            json.dumps({"correct": score, "total": len(rows), "questions": rows}) + "\n"
        )
    else:
        console.print(Rule())
        console.print(f"[bold]{score} of {len(rows)} answers correct[/]")
    if score != len(rows):
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Entry point of the ``dragonscale`` script."""
    app()


def _answer(
    compiler: LLMCompiler,
    question: str,
    plan_text: str | None,
    *,
    show: bool,
    source: str = "",
    as_json: bool = False,
) -> CompilerResult:
    progress = Progress()
    try:
        if not show:
            return asyncio.run(compiler.arun(question, plan=plan_text))
        with Live(Group(progress), console=console, refresh_per_second=12, transient=False):
            result = asyncio.run(compiler.arun(question, plan=plan_text, emit=progress.on_event))
        console.print()
        return result
    except DragonscaleError as error:
        if as_json:
            # Scripts still get one JSON object, with the results of the tasks
            # that ran before the failure.
            sys.stdout.write(json.dumps(_error_json(error), ensure_ascii=False) + "\n")
        _fail(f"{source}{error}", EXIT_FAILED)


def _chat_model(model: str | None, base_url: str | None) -> Any:
    model = model or os.environ.get("DRAGONSCALE_MODEL")
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = os.environ.get("OPENAI_API_KEY")
    if not (model or base_url or api_key):
        return None
    if not (api_key or base_url):
        _fail(
            f"model {model!r} needs OPENAI_API_KEY for the OpenAI API, or --base-url "
            "for an OpenAI-compatible server.",
            EXIT_USAGE,
        )
    # Imported here so that plan-only runs start without loading the OpenAI client.
    from langchain_openai import ChatOpenAI  # noqa: PLC0415

    return ChatOpenAI(
        model=model or DEFAULT_MODEL,
        base_url=base_url,
        # Local OpenAI-compatible servers usually ignore the key but the client requires one.
        api_key=SecretStr(api_key or "not-needed"),
        temperature=0,
        stream_usage=True,
    )


def _open_plan_cache(path: Path) -> PlanCache:
    try:
        return PlanCache(path)
    except sqlite3.Error as error:
        _fail(
            f"cannot open plan cache {str(path)!r}: {error}. "
            "Pass a writable path for a new or existing SQLite file.",
            EXIT_USAGE,
        )


def _read_plan(path: Path) -> str:
    try:
        # utf-8-sig drops the byte order mark some editors write first.
        return path.read_text(encoding="utf-8-sig")
    except OSError as error:
        _fail(f"cannot read plan file {str(path)!r}: {error.strerror or error}", EXIT_USAGE)
    except UnicodeDecodeError as error:
        _fail(
            f"cannot read plan file {str(path)!r}: it is not UTF-8 text "
            f"(invalid byte at offset {error.start})",
            EXIT_USAGE,
        )


def _run_json(result: CompilerResult) -> dict[str, Any]:
    summary = result.to_dict()
    return {
        # When the task that computes the answer failed: no answer, and its error.
        "answer": None if summary["error"] is not None else summary["answer"],
        "tasks": summary["tasks"],
        "replans": result.replans,
        "rounds": summary["rounds"],
        "usage": summary["usage"],
        "estimated_cost_usd": summary["estimated_cost_usd"],
        "error": summary["error"],
    }


def _error_json(error: DragonscaleError) -> dict[str, Any]:
    report = getattr(error, "report", None)
    tasks = report_tasks(report) if isinstance(report, RunReport) else []
    replans = getattr(error, "replans", None) or 0
    # The same keys as a finished run's object. Rounds and usage stay with
    # the session that failed, so they are null here.
    return {
        "answer": None,
        "tasks": tasks,
        "replans": replans,
        "rounds": None,
        "usage": None,
        "estimated_cost_usd": None,
        "error": str(error),
    }


def _fail(message: str, code: int) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
