"""TimedScheduler on virtual time: start times, misfires, jitter, cancellation, errors, targets.

Every test runs on :class:`VirtualTimeLoop`, whose clock jumps to the next
timer whenever every task waits, so times are exact and nothing really sleeps.
Durations and periods are multiples of powers of two, so sums of them are exact
in floating point and start times can be compared with ``==``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from dragonscale_lc import RunError, UsageError
from dragonscale_lc.runtime import (
    DagExecutor,
    Event,
    EventBus,
    Firing,
    JobState,
    Task,
    TimedScheduler,
    current_firing,
    executor_job,
)

from .virtual_time import run_virtual


@dataclass
class Recorder:
    """An async job that records each run's firing and end, and sleeps a set time per run."""

    durations: Sequence[float] = (0.0,)
    firings: list[Firing] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    cancelled: int = 0

    async def __call__(self) -> int:
        firing = current_firing()
        assert firing is not None
        self.firings.append(firing)
        duration = self.durations[min(len(self.firings), len(self.durations)) - 1]
        try:
            await asyncio.sleep(duration)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.ends.append(asyncio.get_running_loop().time())
        return len(self.firings)

    @property
    def starts(self) -> list[float]:
        return [firing.start for firing in self.firings]

    @property
    def nominals(self) -> list[float]:
        return [firing.nominal for firing in self.firings]


def recorded_events(bus: EventBus, pattern: str = "schedule.*") -> list[Event]:
    events: list[Event] = []
    bus.subscribe(pattern, events.append)
    return events


# One-time jobs


def test_after_runs_once_at_time() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with TimedScheduler() as scheduler:
            job = scheduler.after(2.5, recorder)
            assert job.next_due == 2.5
            await job.wait()

        assert recorder.starts == [2.5]
        assert job.state is JobState.FINISHED
        assert job.runs == 1
        assert job.last_result == 1
        assert job.next_due is None

    run_virtual(main())


def test_at_past_time_runs_late() -> None:
    async def main() -> None:
        await asyncio.sleep(10)
        bus = EventBus()
        events = recorded_events(bus)
        recorder = Recorder()
        async with TimedScheduler(events=bus) as scheduler:
            job = scheduler.at(4.0, recorder)
            await job.wait()

        assert recorder.starts == [10.0]
        assert [event.topic for event in events] == ["schedule.fired"]
        assert events[0].data["nominal"] == 4.0
        assert events[0].data["start"] == 10.0
        assert events[0].data["lateness"] == 6.0

    run_virtual(main())


def test_at_past_grace_is_missed() -> None:
    async def main() -> None:
        await asyncio.sleep(10)
        bus = EventBus()
        events = recorded_events(bus)
        recorder = Recorder()
        async with TimedScheduler(events=bus) as scheduler:
            job = scheduler.at(4.0, recorder, misfire_grace=5.0)
            await job.wait()

        assert recorder.starts == []
        assert job.state is JobState.FINISHED
        assert job.misses == 1
        assert [event.topic for event in events] == ["schedule.missed"]
        assert events[0].data["nominal"] == 4.0
        assert events[0].data["lateness"] == 6.0

    run_virtual(main())


def test_same_due_higher_priority_first() -> None:
    async def main() -> None:
        order: list[str] = []

        async def record(name: str) -> None:
            order.append(name)

        async with TimedScheduler() as scheduler:
            scheduler.at(1.0, record, "low", priority=0)
            scheduler.at(1.0, record, "high", priority=5)
            scheduler.at(1.0, record, "low-later", priority=0)
            await asyncio.sleep(2)

        assert order == ["high", "low", "low-later"]

    run_virtual(main())


# Fixed rate


def test_every_starts_exactly_nominal() -> None:
    async def main() -> None:
        recorder = Recorder(durations=(0.25, 0.75, 0.5))
        async with TimedScheduler() as scheduler:
            job = scheduler.every(1.0, recorder)
            await asyncio.sleep(5.5)
            job.cancel()

        assert recorder.starts == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert recorder.nominals == recorder.starts
        assert job.runs == 5

    run_virtual(main())


def test_every_start_in_sets_t0() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with TimedScheduler() as scheduler:
            job = scheduler.every(2.0, recorder, start_in=0.5)
            await asyncio.sleep(5)
            job.cancel()

        assert recorder.starts == [0.5, 2.5, 4.5]

    run_virtual(main())


def test_overrun_coalesce_runs_once() -> None:
    async def main() -> None:
        bus = EventBus()
        fired = recorded_events(bus, "schedule.fired")
        recorder = Recorder(durations=(2.5, 0.125))
        async with TimedScheduler(events=bus) as scheduler:
            job = scheduler.every(1.0, recorder, misfire="coalesce")
            await asyncio.sleep(5.5)
            job.cancel()

        # The first run ends at 3.5 after the slots at 2 and 3 passed, so one
        # run at 3.5 replaces both, as the slot at 3.
        assert recorder.starts == [1.0, 3.5, 4.0, 5.0]
        assert recorder.nominals == [1.0, 3.0, 4.0, 5.0]
        assert [firing.coalesced for firing in recorder.firings] == [0, 1, 0, 0]
        assert job.coalesced == 1
        assert job.misses == 0
        assert fired[1].data["lateness"] == 0.5
        assert fired[1].data["coalesced"] == 1

    run_virtual(main())


def test_overrun_catch_up_back_to_back() -> None:
    async def main() -> None:
        recorder = Recorder(durations=(2.5, 0.125))
        async with TimedScheduler() as scheduler:
            job = scheduler.every(1.0, recorder, misfire="catch_up")
            await asyncio.sleep(5.5)
            job.cancel()

        assert recorder.starts == [1.0, 3.5, 3.625, 4.0, 5.0]
        assert recorder.nominals == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert job.coalesced == 0

    run_virtual(main())


def test_catch_up_beyond_grace_missed() -> None:
    async def main() -> None:
        bus = EventBus()
        missed = recorded_events(bus, "schedule.missed")
        recorder = Recorder(durations=(2.5, 0.125))
        async with TimedScheduler(events=bus) as scheduler:
            job = scheduler.every(1.0, recorder, misfire="catch_up", misfire_grace=1.0)
            await asyncio.sleep(4.5)
            job.cancel()

        # The slot at 2 would start 1.5 s late, the slot at 3 only 0.5 s.
        assert recorder.nominals == [1.0, 3.0, 4.0]
        assert recorder.starts == [1.0, 3.5, 4.0]
        assert job.misses == 1
        assert [event.data["nominal"] for event in missed] == [2.0]
        assert missed[0].data["lateness"] == 1.5
        assert missed[0].data["slots"] == 1

    run_virtual(main())


def test_coalesce_beyond_grace_missed() -> None:
    async def main() -> None:
        bus = EventBus()
        missed = recorded_events(bus, "schedule.missed")
        recorder = Recorder(durations=(2.5, 0.125))
        async with TimedScheduler(events=bus) as scheduler:
            job = scheduler.every(1.0, recorder, misfire_grace=0.25)
            await asyncio.sleep(4.5)
            job.cancel()

        assert recorder.starts == [1.0, 4.0]
        assert job.misses == 2
        assert len(missed) == 1
        assert missed[0].data["nominal"] == 3.0
        assert missed[0].data["lateness"] == 0.5
        assert missed[0].data["slots"] == 2

    run_virtual(main())


def test_restart_coalesces_passed_slots() -> None:
    # Starts can also pass while the scheduler is stopped, not only while the job runs.
    async def main() -> None:
        recorder = Recorder()
        loop = asyncio.get_running_loop()
        async with TimedScheduler(clock=loop.time) as scheduler:
            job = scheduler.every(1.0, recorder)
            await asyncio.sleep(1.5)
            await scheduler.stop()
            await asyncio.sleep(3)
            scheduler.start()
            await asyncio.sleep(0.25)
            job.cancel()

        assert recorder.starts == [1.0, 4.5]
        assert recorder.nominals == [1.0, 4.0]
        assert job.coalesced == 2

    run_virtual(main())


# Fixed delay


def test_fixed_delay_counts_from_end() -> None:
    async def main() -> None:
        recorder = Recorder(durations=(0.5, 1.25, 0.0))
        async with TimedScheduler() as scheduler:
            job = scheduler.with_fixed_delay(1.0, recorder)
            await asyncio.sleep(6)
            job.cancel()

        assert recorder.starts == [1.0, 2.5, 4.75, 5.75]
        assert recorder.ends == [1.5, 3.75, 4.75, 5.75]

    run_virtual(main())


# Jitter


def test_jitter_stays_within_slot() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with TimedScheduler(rng=random.Random(7)) as scheduler:
            job = scheduler.every(1.0, recorder, jitter=0.5)
            await asyncio.sleep(100.75)
            job.cancel()

        assert len(recorder.firings) == 100
        for index, firing in enumerate(recorder.firings):
            assert firing.nominal == 1.0 + index
            assert firing.nominal <= firing.start < firing.nominal + 0.5
            assert firing.start == firing.due
        offsets = {firing.start - firing.nominal for firing in recorder.firings}
        assert len(offsets) > 90  # drawn per start, not once

    run_virtual(main())


def test_jitter_same_seed_same_starts() -> None:
    def starts(seed: int) -> list[float]:
        async def main() -> list[float]:
            recorder = Recorder()
            async with TimedScheduler(rng=random.Random(seed)) as scheduler:
                scheduler.every(1.0, recorder, jitter=0.25)
                await asyncio.sleep(10)
            return recorder.starts

        return run_virtual(main())

    assert starts(3) == starts(3)
    assert starts(3) != starts(4)


def test_jitter_reaching_period_rejected() -> None:
    async def main() -> None:
        scheduler = TimedScheduler()
        message = r"jitter must be less than the period, .* got jitter=1 s with period=1 s"
        with pytest.raises(UsageError, match=message):
            scheduler.every(1.0, Recorder(), jitter=1.0)
        with pytest.raises(UsageError, match=r"jitter must be less than the delay"):
            scheduler.with_fixed_delay(0.5, Recorder(), jitter=0.75)

    run_virtual(main())


# Cancellation, stop and wake-ups


def test_cancel_pending_job_never_runs() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with TimedScheduler() as scheduler:
            job = scheduler.every(1.0, recorder)
            await asyncio.sleep(2.5)
            assert job.cancel() is True
            assert job.cancel() is False
            await job.wait()
            await asyncio.sleep(5)

        assert recorder.starts == [1.0, 2.0]
        assert job.state is JobState.CANCELLED
        assert job.next_due is None

    run_virtual(main())


def test_cancel_running_job_cancels_run() -> None:
    async def main() -> None:
        recorder = Recorder(durations=(10.0,))
        async with TimedScheduler() as scheduler:
            job = scheduler.every(1.0, recorder)
            await asyncio.sleep(1.5)
            assert job.state is JobState.RUNNING
            job.cancel()
            await asyncio.sleep(20)

        assert recorder.starts == [1.0]
        assert recorder.cancelled == 1
        assert recorder.ends == []
        assert job.state is JobState.CANCELLED
        assert job.failures == 0

    run_virtual(main())


def test_stop_waits_for_running_job() -> None:
    async def main() -> None:
        recorder = Recorder(durations=(3.0,))
        scheduler = TimedScheduler()
        scheduler.start()
        job = scheduler.every(1.0, recorder)
        await asyncio.sleep(1.5)
        await scheduler.stop()

        assert asyncio.get_running_loop().time() == 4.0
        assert recorder.ends == [4.0]
        assert recorder.cancelled == 0
        assert job.state is JobState.SCHEDULED  # kept for a later start()
        assert not scheduler.running

    run_virtual(main())


def test_stop_no_wait_cancels_running_job() -> None:
    async def main() -> None:
        recorder = Recorder(durations=(3.0,))
        scheduler = TimedScheduler()
        scheduler.start()
        scheduler.every(1.0, recorder)
        await asyncio.sleep(1.5)
        await scheduler.stop(wait=False)

        assert asyncio.get_running_loop().time() == 1.5
        assert recorder.cancelled == 1
        assert recorder.ends == []

    run_virtual(main())


def test_error_in_block_cancels_runs() -> None:
    async def main() -> None:
        recorder = Recorder(durations=(3.0,))
        with pytest.raises(KeyError):
            async with TimedScheduler() as scheduler:
                scheduler.after(1.0, recorder)
                await asyncio.sleep(1.5)
                raise KeyError("boom")

        assert recorder.cancelled == 1

    run_virtual(main())


def test_earlier_job_wakes_loop() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with TimedScheduler() as scheduler:
            scheduler.at(100.0, recorder, name="late")
            await asyncio.sleep(1)
            scheduler.after(1.0, recorder, name="early")
            await asyncio.sleep(2)
            assert recorder.starts == [2.0]
            await asyncio.sleep(100)

        assert recorder.starts == [2.0, 100.0]
        assert [firing.job for firing in recorder.firings] == ["early", "late"]

    run_virtual(main())


def test_idle_scheduler_sleeps_once() -> None:
    # No polling: a thousand waiting jobs cost one sleep until the first is due.
    async def main() -> None:
        delays: list[float] = []

        async def sleep(delay: float) -> None:
            delays.append(delay)
            await asyncio.sleep(delay)

        recorder = Recorder()
        async with TimedScheduler(sleep=sleep) as scheduler:
            jobs = [scheduler.at(1000.0 + index, recorder) for index in range(1000)]
            await asyncio.sleep(999)
            assert delays == [1000.0]
            for job in jobs:
                job.cancel()

    run_virtual(main())


def test_cancelling_many_jobs_keeps_others() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with TimedScheduler() as scheduler:
            jobs = [scheduler.at(10.0 + index, recorder, name=str(index)) for index in range(300)]
            for job in jobs[:-2]:
                job.cancel()
            await asyncio.sleep(400)

        assert [firing.job for firing in recorder.firings] == ["298", "299"]
        assert len(scheduler._heap) == 0

    run_virtual(main())


# Errors


async def fail_every_time() -> None:
    raise ValueError("sensor offline")


@pytest.mark.parametrize(
    ("on_error", "runs", "state"),
    [("keep", 3, JobState.SCHEDULED), ("cancel", 1, JobState.CANCELLED)],
)
def test_raising_job_on_error(
    on_error: str, runs: int, state: JobState, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        bus = EventBus()
        failed = recorded_events(bus, "schedule.failed")
        async with TimedScheduler(events=bus) as scheduler:
            job = scheduler.every(1.0, fail_every_time, name="poll", on_error=on_error)
            await asyncio.sleep(3.5)
            assert job.state is state
            job.cancel()

        assert job.runs == runs
        assert job.failures == runs
        assert isinstance(job.last_error, ValueError)
        assert [event.data["run"] for event in failed] == list(range(1, runs + 1))
        assert failed[0].data["job"] == "poll"
        assert failed[0].data["nominal"] == 1.0
        assert failed[-1].data["error"] is job.last_error

    with caplog.at_level(logging.ERROR, logger="dragonscale_lc"):
        run_virtual(main())

    records = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(records) == runs
    assert "scheduled job 'poll' failed in run 1" in records[0].getMessage()
    assert "ValueError('sensor offline')" in records[0].getMessage()
    assert records[0].exc_info is None


# Targets


def test_sync_job_runs_in_thread() -> None:
    async def main() -> None:
        seen: list[tuple[int, Firing | None]] = []

        def work(label: str) -> str:
            seen.append((threading.get_ident(), current_firing()))
            return label.upper()

        async with TimedScheduler() as scheduler:
            job = scheduler.after(1.0, work, "done")
            await job.wait()

        assert job.last_result == "DONE"
        assert seen[0][0] != threading.get_ident()
        firing = seen[0][1]
        assert firing is not None
        assert firing.job == "work"
        assert firing.start == 1.0

    run_virtual(main())


def test_ainvoke_object_runs_as_job() -> None:
    class Agent:
        def __init__(self) -> None:
            self.questions: list[str] = []

        async def ainvoke(self, question: str) -> str:
            self.questions.append(question)
            return f"answer {len(self.questions)}"

    async def main() -> None:
        agent = Agent()
        async with TimedScheduler() as scheduler:
            job = scheduler.every(60.0, agent, "How many?")
            await asyncio.sleep(150)
            job.cancel()

        assert agent.questions == ["How many?", "How many?"]
        assert job.last_result == "answer 2"
        assert job.name == "Agent"

    run_virtual(main())


def test_executor_job_adds_priority() -> None:
    async def main() -> None:
        priorities: list[int] = []

        def key(priority: int, rank: float) -> tuple[int, float]:
            priorities.append(priority)
            return (-priority, -rank)

        def make_tasks() -> list[Task]:
            return [Task(id="a", fn=lambda: 1, priority=1), Task(id="b", fn=lambda: 2)]

        executor = DagExecutor(strategy=key)
        async with TimedScheduler() as scheduler:
            job = scheduler.every(1.0, executor_job(executor, make_tasks), priority=10)
            await asyncio.sleep(2.5)
            job.cancel()

        assert job.runs == 2
        assert job.last_result.ok
        assert sorted(priorities) == [10, 10, 11, 11]  # added again per run, not summed

    run_virtual(main())


def test_executor_job_failed_task_fails_job() -> None:
    async def main() -> None:
        def make_tasks() -> list[Task]:
            return [Task(id="a", fn=fail_every_time)]

        async with TimedScheduler() as scheduler:
            job = scheduler.after(1.0, executor_job(DagExecutor(), make_tasks), name="etl")
            await job.wait()

        assert isinstance(job.last_error, RunError)
        assert "the DAG run of job 'etl' did not finish every task: 'a' (failed)" in str(
            job.last_error
        )
        assert job.last_error.report is not None

    logging.getLogger("dragonscale_lc").disabled = True
    try:
        run_virtual(main())
    finally:
        logging.getLogger("dragonscale_lc").disabled = False


# Usage errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.every(0, print), r"period must be greater than 0 seconds, got 0"),
        (lambda s: s.every(float("nan"), print), r"period must be a finite number of seconds"),
        (lambda s: s.after(-1, print), r"delay must be 0 or more seconds, got -1"),
        (lambda s: s.every(1, print, misfire="skip"), r"misfire must be one of 'coalesce', "),
        (lambda s: s.every(1, print, on_error="retry"), r"on_error must be one of 'keep', "),
        (lambda s: s.every(1, print, misfire_grace=-1), r"misfire_grace must be 0 or more"),
        (lambda s: s.every(1, print, start_in=-1), r"start_in must be 0 or more seconds"),
        (lambda s: s.after(1, 42), r"job target 42 is neither callable nor has an ainvoke"),
        (lambda s: s.after(1, print, priority=1.5), r"priority must be an int, got 1.5"),
    ],
)
def test_invalid_arguments_rejected(call: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call(TimedScheduler(clock=lambda: 0.0))


def test_start_needs_running_loop() -> None:
    with pytest.raises(UsageError, match=r"start\(\) needs a running event loop"):
        TimedScheduler().start()


def test_start_twice_rejected() -> None:
    async def main() -> None:
        async with TimedScheduler() as scheduler:
            with pytest.raises(UsageError, match=r"runs already; stop\(\) it before start"):
                scheduler.start()

    run_virtual(main())


def test_stop_from_own_run_rejected() -> None:
    async def main() -> None:
        async with TimedScheduler() as scheduler:

            async def stop_scheduler() -> None:
                await scheduler.stop()

            job = scheduler.after(1.0, stop_scheduler)
            await job.wait()

        assert isinstance(job.last_error, UsageError)
        assert "called from a scheduled run" in str(job.last_error)

    logging.getLogger("dragonscale_lc").disabled = True
    try:
        run_virtual(main())
    finally:
        logging.getLogger("dragonscale_lc").disabled = False
