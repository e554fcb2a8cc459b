"""kill -9 of the processes around the stages: alertik run's keeper,
supervisord, and ingest under a steady load.

* A dead supervisord (or keeper) used to leave the stages running with their
  output going nowhere, holding the port and the state directory, so a new
  `alertik run` could not start.
* kill -9 of ingest lost what the kernel had queued for it and everything
  sent until supervisord restarted it (53 of 2,500 alerts at 50 alerts/s).

Run with ``pytest -s -m fault`` for the figures.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fault.test_kill import kill_stages
from tests.support import (
    Proc,
    WebhookServer,
    base_env,
    children_of,
    events_env,
    send_udp,
    stage_pids,
    supervisord_pid,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.fault

RULE = ("Generic1", "regex", r"login failure for user u([0-9]+) ", "alert @1")


def line(seq: int) -> bytes:
    return b"login failure for user u%d from 192.0.2.1 via ssh" % seq


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if os.path.exists(f"/proc/{p}")]


@pytest.mark.parametrize("victim", ["supervisord", "keeper"])
def test_when_supervisord_or_alertik_run_dies_the_stages_stop_and_a_new_run_starts(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    webhook: WebhookServer,
    victim: str,
) -> None:
    """1. `alertik run` on a fixed port; 2. kill -9 supervisord (or the
    keeper, as a closed terminal would); 3. start `alertik run` again with
    the same port and state directory.
    Result: every stage exits within a few seconds, and the new run starts
    and delivers."""
    env = base_env(tmp_path, GENERIC1_WEBHOOK_URL=webhook.url, **events_env(RULE))
    first = spawn("run", env=env)
    port = udp_port_of(first)
    first.wait_line("success: ingest entered RUNNING state")
    stages = list(stage_pids(first.popen.pid).values())
    assert len(stages) == 3
    target = supervisord_pid(first.popen.pid) if victim == "supervisord" else None
    try:
        os.kill(target or first.popen.pid, signal.SIGKILL)
        wait_for(lambda: not alive(stages), 15, "the stages to stop")
        if victim == "supervisord":
            assert first.popen.wait(15) == 1
            assert "stopping alertik: supervisord ended on its own" in first.output
    finally:
        kill_stages(first)
    again = spawn("run", env={**env, "ALERTIK_UDP_PORT": str(port)})
    again.wait_line("success: ingest entered RUNNING state")
    send_udp(port, line(1))
    (request,) = webhook.wait(1)
    assert request.json()["text"].startswith("alert 1, at: ")
    assert again.terminate() == 0


# Alerts per second, and for how long before and after the kill.
RATE = 50
SECONDS = 3.0


@pytest.mark.timeout(120)
def test_kill_9_of_ingest_at_50_alerts_a_second_loses_nothing(
    tmp_path: Path, spawn: Callable[..., Proc], webhook: WebhookServer
) -> None:
    """1. `alertik run`; 2. send an alert line every 20 ms; 3. after 3 s,
    kill -9 ingest between two datagrams; supervisord restarts it; 4. go on
    for 3 s more.
    Result: every alert is delivered: while ingest was down the datagrams
    waited in the socket that alertik run holds.

    The kill comes once every datagram sent so far has been delivered: a
    datagram ingest has read and not yet passed on dies with it, in a window
    of microseconds (far longer on a loaded machine), and that window is not
    what this test is about."""
    env = base_env(tmp_path, GENERIC1_WEBHOOK_URL=webhook.url, **events_env(RULE))
    run = spawn("run", env=env)
    port = udp_port_of(run)
    run.wait_line("success: ingest entered RUNNING state")
    sent: list[int] = []
    halt = threading.Event()
    pause = threading.Event()
    paused = threading.Event()

    def load() -> None:
        began = time.monotonic()
        while not halt.is_set():
            if pause.is_set():
                paused.set()
            else:
                due = int((time.monotonic() - began) * RATE)
                while len(sent) < due:
                    send_udp(port, line(len(sent)))
                    sent.append(len(sent))
            time.sleep(0.005)

    def delivered() -> set[int]:
        with webhook._lock:
            texts = [r.json()["text"] for r in webhook.requests]
        return {int(t.split(",")[0].split()[1]) for t in texts}

    sender = threading.Thread(target=load, daemon=True)
    sender.start()
    try:
        time.sleep(SECONDS)
        pause.set()
        assert paused.wait(5)
        wait_for(lambda: delivered() == set(sent), 15, "the alerts sent so far")
        ingest = stage_pids(run.popen.pid)["ingest"]
        os.kill(ingest, signal.SIGKILL)
        killed_at = len(sent)
        pause.clear()  # the sender catches up at once, while ingest is down
        wait_for(lambda: stage_pids(run.popen.pid).get("ingest") not in (None, ingest),
                 20, "a new ingest")  # fmt: skip
        time.sleep(SECONDS)
    finally:
        halt.set()
        sender.join(5)

    wait_for(lambda: len(delivered()) >= len(sent), 30, "every alert")
    print(
        f"\n{len(sent)} alerts sent at {RATE}/s, ingest killed after {killed_at}; "
        f"{len(delivered())} delivered, {len(set(sent) - delivered())} lost"
    )
    assert delivered() == set(sent)
    assert run.terminate() == 0
    assert not alive(children_of(run.popen.pid))
