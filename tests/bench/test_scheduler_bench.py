"""TimedScheduler benchmark logic on tiny inputs; no test asserts a wall-clock figure."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dragonscale_lc.bench import measure_scheduler_drift, measure_scheduler_idle, run_naive_loop
from dragonscale_lc.bench._scheduler import run_times
from dragonscale_lc.cli import app


async def test_idle_runs_no_job() -> None:
    result = await measure_scheduler_idle(10, 0.01)

    assert result.jobs == 10
    assert result.runs == 0
    assert result.seconds >= 0.01
    assert result.cpu_fraction == result.cpu_s / result.seconds
    assert set(result.to_dict()["goals"]) == {"cpu_fraction_le_0_01"}


async def test_drift_reports_every_field() -> None:
    result = await measure_scheduler_drift(0.01, 3, seed=1)

    summary = result.to_dict()
    assert summary["runs"] == 3
    assert summary["period_s"] == 0.01
    assert result.max_lateness_s >= 0
    assert result.max_lateness_s >= result.mean_lateness_s
    assert set(summary["goals"]) == {"drift_le_0_005"}


async def test_naive_loop_starts_in_order() -> None:
    starts = await run_naive_loop(0.001, [0.0, 0.001, 0.0])

    assert len(starts) == 3
    assert starts == sorted(starts)
    assert starts[2] - starts[0] >= 0.003  # two periods plus the 1 ms run


def test_run_times_seeded_and_bounded() -> None:
    times = run_times(50, 0.05, 3)

    assert times == run_times(50, 0.05, 3)
    assert all(0 <= duration < 0.4 * 0.05 for duration in times)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: measure_scheduler_idle(0, 1.0), "need at least 1 job"),
        (lambda: measure_scheduler_drift(0.01, 1), "need at least 2 runs"),
    ],
)
async def test_benchmarks_reject_bad_settings(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        await call()


@pytest.mark.parametrize(
    ("args", "keys"),
    [
        (["scheduler-idle", "--jobs", "5", "--seconds", "0.01"], {"cpu_fraction", "schedule_s"}),
        (
            ["scheduler-drift", "--period", "0.01", "--runs", "3"],
            {"drift_s", "max_lateness_s", "naive_drift_s"},
        ),
    ],
)
def test_cli_scheduler_json(args: list[str], keys: set[str]) -> None:
    result = CliRunner().invoke(app, ["bench", *args, "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert keys <= set(summary)
    assert "environment" in summary
