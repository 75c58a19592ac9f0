"""Property-based checks of fixed-rate jobs on virtual time, with random periods and run times.

Periods and run times are multiples of 1/16 s, so the virtual clock's sums
are exact and "exactly nominal" can be checked with ``==``.
"""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dragonscale_lc.runtime import TimedScheduler

from .test_scheduler import Recorder
from .virtual_time import run_virtual

STEP = 1 / 16
RUNS = 20


def simulate(period: float, durations: list[float], misfire: str) -> Recorder:
    """Run a fixed-rate job until its run number ``RUNS`` starts; return its recorder."""

    async def main() -> Recorder:
        recorder = Recorder(durations=durations)
        reached = asyncio.Event()

        async def job() -> None:
            if len(recorder.firings) + 1 == RUNS:
                reached.set()
            await recorder()

        async with TimedScheduler() as scheduler:
            handle = scheduler.every(period, job, misfire=misfire)
            await reached.wait()
            handle.cancel()
        return recorder

    return run_virtual(main())


@st.composite
def schedules(draw: st.DrawFn, *, overruns: bool) -> tuple[float, list[float]]:
    steps = draw(st.integers(min_value=1, max_value=32))
    longest = 3 * steps if overruns else steps - 1
    duration_steps = st.integers(min_value=0, max_value=longest)
    durations = draw(st.lists(duration_steps, min_size=RUNS, max_size=RUNS))
    return steps * STEP, [d * STEP for d in durations]


@settings(max_examples=40, deadline=None)
@given(schedules(overruns=True), st.sampled_from(["coalesce", "catch_up"]))
def test_fixed_rate_never_early_never_overlaps(
    schedule: tuple[float, list[float]], misfire: str
) -> None:
    period, durations = schedule

    recorder = simulate(period, durations, misfire)

    firings = recorder.firings[:RUNS]
    assert len(firings) == RUNS
    for firing in firings:
        assert firing.start >= firing.nominal
        slot = (firing.nominal - period) / period
        assert slot == int(slot)  # nominal starts stay on t0 + k * period
    for earlier, later in itertools.pairwise(firings):
        assert later.nominal > earlier.nominal
    ends = recorder.ends
    for index in range(1, RUNS):
        assert firings[index].start >= ends[index - 1]


@settings(max_examples=40, deadline=None)
@given(schedules(overruns=False), st.sampled_from(["coalesce", "catch_up"]))
def test_fixed_rate_without_overrun_exactly_nominal(
    schedule: tuple[float, list[float]], misfire: str
) -> None:
    period, durations = schedule

    recorder = simulate(period, durations, misfire)

    starts = recorder.starts[:RUNS]
    assert starts == [period * (k + 1) for k in range(RUNS)]
    assert recorder.nominals[:RUNS] == starts
