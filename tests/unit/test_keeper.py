"""The keeper's reading of supervisord's log: when a stage has failed for good."""

from __future__ import annotations

import time

import pytest

from alertik import keeper


class Watched(keeper.Keeper):
    """A keeper fed log lines by hand, whose clock the test sets."""

    def __init__(self) -> None:
        super().__init__([], "/nonexistent", None)
        self.stopped = 0

    def _stop_supervisord(self) -> None:
        self.stopped += 1
        self.stopping = True


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    # keeper reads time.monotonic() from the time module.
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def crash(k: Watched, clock: list[float], pid: int, lived: float) -> None:
    k._watch(f"2026-11-30 10:00:00,000 INFO spawned: 'matcher' with pid {pid}")
    clock[0] += lived
    k._watch(f"2026-11-30 10:00:00,000 x.y[{pid}] ERROR boom number {pid}")
    k._watch(
        "2026-11-30 10:00:00,000 WARN exited: matcher (exit status 1; not expected)"
    )


def test_a_stage_crashing_for_more_than_a_minute_stops_everything(
    clock: list[float], capfd: pytest.CaptureFixture[str]
) -> None:
    k = Watched()
    for pid in range(100, 130):  # each run 5 s
        crash(k, clock, pid, 5.0)
        if k.stopped:
            break
    assert k.stopped == 1
    assert clock[0] - 1000.0 > keeper.CRASH_LOOP_SECONDS
    assert k.failure == "matcher keeps crashing (exit status 1): boom number 113"
    assert "stopping alertik: matcher keeps crashing" in capfd.readouterr().out


def test_crashes_an_hour_apart_are_not_a_loop(clock: list[float]) -> None:
    k = Watched()
    for pid in range(100, 110):
        crash(k, clock, pid, 3600.0)
    assert not k.stopped and not k.failure


def test_three_configuration_errors_in_a_row_mean_the_stage_cannot_start(
    clock: list[float],
) -> None:
    k = Watched()
    for pid in (1, 2, 3):
        k._watch(f"INFO spawned: 'ingest' with pid {pid}")
        clock[0] += 2.0  # longer than startsecs: supervisord never says FATAL
        k._watch(f"t ingest.x[{pid}] ERROR ingest: configuration error: ALERTIK_X: bad")
        k._watch("WARN exited: ingest (exit status 2; not expected)")
        assert bool(k.stopped) == (pid == 3)
    assert (
        k.failure == "ingest cannot start: ingest: configuration error: ALERTIK_X: bad"
    )


def test_supervisord_giving_up_on_a_stage_stops_everything(clock: list[float]) -> None:
    k = Watched()
    k._watch("INFO spawned: 'notify' with pid 7")
    k._watch("t alertik.notify.stage[7] ERROR notify crashed")
    k._watch("WARN exited: notify (exit status 1; not expected)")
    k._watch(
        "INFO gave up: notify entered FATAL state, too many start retries too quickly"
    )
    assert k.stopped == 1
    assert k.failure == "notify cannot start: notify crashed"
