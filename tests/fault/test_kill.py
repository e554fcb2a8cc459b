"""Each stage killed with SIGKILL under load, restarted by supervisord.

Under ``alertik run`` with a webhook and a forwarder target, a sender thread
sends numbered datagrams (one in ten an alert line) while one stage is killed.
Afterwards every datagram is looked for in the log archive, at the webhook and
at the forwarder's target. What may be lost is only what sat inside the killed
process:

* ingest: the datagrams sent while nothing listened (the kernel refuses them)
  and what ingest held in memory;
* matcher: the events in its queue, the archive lines not yet written (at
  most one batch) and the alerts its socket had not yet passed to notify;
* notify: nothing: every alert it accepted is in its outbox, and the matcher
  holds the rest for it while it restarts;
* forwarder: what it held in memory; alerting and the archive lose nothing.

Each test prints what was lost, so ``pytest -s -m fault`` gives the figures.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import (
    Proc,
    WebhookServer,
    base_env,
    children_of,
    events_env,
    stage_pids,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.fault

# Datagrams per second during the test, and one alert line in ALERT_EVERY.
RATE = 1000
ALERT_EVERY = 10
# Load before the kill, and after the stage is back, in seconds.
BEFORE_S = 1.0
AFTER_S = 1.5
# Loss allowed inside a killed process: its queue and unwritten archive
# lines, at most about half a second of traffic at RATE (they are flushed
# every batch, which here holds a few messages).
IN_PROCESS = RATE // 2
SEQ = re.compile(rb" seq=(\d+)")
ALERT = re.compile(rb"alert (\d+), at: ")


def line(seq: int) -> bytes:
    if seq % ALERT_EVERY == 0:
        return b"login failure for user u%d from 192.0.2.1 via ssh seq=%d" % (seq, seq)
    return b"firewall,info forward: in:bridge out:ether1 seq=%d" % seq


class Load(threading.Thread):
    """Sends numbered datagrams at RATE to a port that may change under it."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sent: list[tuple[int, float]] = []  # (seq, monotonic time)
        self.halt = threading.Event()

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            began = time.monotonic()
            seq = 0
            while not self.halt.is_set():
                now = time.monotonic()
                due = int((now - began) * RATE)
                while seq < due:
                    # ECONNREFUSED echoes while ingest is down.
                    with contextlib.suppress(OSError):
                        s.sendto(line(seq), ("127.0.0.1", self.port))
                    self.sent.append((seq, now))
                    seq += 1
                time.sleep(0.002)

    def stop(self) -> list[tuple[int, float]]:
        self.halt.set()
        self.join(5)
        return self.sent


class Target(threading.Thread):
    """The forwarder's destination: a UDP socket noting each seq it receives."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seqs: set[int] = set()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            found = SEQ.search(data)
            if found:
                self.seqs.add(int(found.group(1)))

    def close(self) -> None:
        self.halt.set()
        self.join(5)
        self.sock.close()


def stage_pid(run: Proc, stage: str) -> int:
    """The pid of one stage under the supervisord that run started."""
    pid = stage_pids(run.popen.pid).get(stage)
    if pid is None:
        pytest.fail(f"no {stage} process under supervisord:\n{run.output}")
    return pid


def kill_stages(run: Proc) -> None:
    """SIGKILL alertik run's keeper and supervisord, then every stage they
    left: supervisord gives each its own process group, so killing its group
    (the spawn fixture) orphans them."""
    stages = children_of(run.popen.pid)
    for pid in [run.popen.pid, *stages]:  # the keeper first: no respawn
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def distinct(run: Proc, needle: str) -> int:
    """Distinct output lines holding needle (supervisord prints each twice,
    on stdout and stderr)."""
    return len({line for line in run.output.splitlines() if needle in line})


def alert_seqs(webhook: WebhookServer) -> list[int]:
    """The seq of every alert the webhook received, repeats included."""
    with webhook._lock:
        bodies = [r.body for r in webhook.requests]
    return [int(m.group(1)) for b in bodies for m in ALERT.finditer(b)]


def archived_seqs(log: Path) -> list[int]:
    return [int(s) for s in SEQ.findall(log.read_bytes())] if log.exists() else []


@pytest.mark.parametrize("stage", ["ingest", "matcher", "notify", "forwarder"])
def test_a_stage_killed_under_load_loses_only_what_it_held(
    tmp_path: Path, spawn: Callable[..., Proc], webhook: WebhookServer, stage: str
) -> None:
    """1. `alertik run` with an alert rule, a webhook and a forwarder target;
    2. send 1,000 datagrams/s; after a second, SIGKILL one stage;
    3. go on until supervisord has restarted it and 1.5 s more, then stop.
    Result: supervisord restarted the stage once; the log archive, the
    webhook and the forwarder's target each lost nothing, except what sat
    inside the killed stage (bounded above); nothing is archived twice."""
    target = Target()
    target.start()
    env = base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook",
        FORWARD_HOST="127.0.0.1",
        FORWARD_PORT=str(target.port),
        ALERTIK_LOG_MAX_BYTES="0",
        **events_env(
            ("Generic1", "regex", r"login failure for user u([0-9]+) ", "alert @1")
        ),
    )
    run = spawn("run", env=env)
    try:
        load = Load(udp_port_of(run))
        for name in ("notify", "forwarder", "matcher", "ingest"):
            run.wait_line(f"success: {name} entered RUNNING state")
        load.start()
        time.sleep(BEFORE_S)
        killed_at = time.monotonic()
        os.kill(stage_pid(run, stage), signal.SIGKILL)
        running = f"success: {stage} entered RUNNING state"
        wait_for(lambda: distinct(run, running) >= 2, 20, f"{stage} restarted")
        back_at = time.monotonic()
        if stage == "ingest":
            # The new ingest gets the same UDP socket from alertik run's
            # keeper, so the port it reports is the one already in use;
            # follow what it reports all the same.
            ports = re.findall(r"listening on udp \S*:(\d+)", run.output)
            assert len(ports) == 2
            load.port = int(ports[1])
            back_at = time.monotonic()
        time.sleep(AFTER_S)
        sent = load.stop()
        total = len(sent)
        log = tmp_path / "log.txt"
        alerts = {seq for seq, _ in sent if seq % ALERT_EVERY == 0}

        must = [seq for seq, at in sent if at >= back_at + 0.2]
        must_alert = {seq for seq in must if seq % ALERT_EVERY == 0}

        def settled() -> bool:
            """Everything sent after the restart arrived where it must."""
            if not set(must) <= set(archived_seqs(log)):
                return False
            return must_alert <= set(alert_seqs(webhook))

        wait_for(settled, 20, "the pipeline to catch up")
        # Nothing announces that nothing more will come: what sent before the
        # kill and is still on its way gets a second to arrive.
        time.sleep(1.0)
        assert run.terminate() == 0
    finally:
        kill_stages(run)
        target.close()

    archived = archived_seqs(log)
    assert len(archived) == len(set(archived)), "a line was archived twice"
    delivered = alert_seqs(webhook)
    lost_log = {seq for seq, _ in sent} - set(archived)
    lost_alerts = alerts - set(delivered)
    lost_forwarded = {seq for seq, _ in sent} - target.seqs
    down = [seq for seq, at in sent if killed_at <= at < back_at]
    print(
        f"\n{stage} killed: {total} sent, {len(down)} while it was down; lost "
        f"{len(lost_log)} from the log, {len(lost_alerts)} alerts, "
        f"{len(lost_forwarded)} forwarded; {len(delivered) - len(set(delivered))} "
        "alerts delivered twice"
    )
    assert distinct(run, f"exited: {stage} (terminated by SIGKILL") == 1
    for lost in (lost_log, lost_forwarded):
        assert not lost & set(must), "lost a datagram sent after the restart"
    if stage == "ingest":
        # Refused while down, plus what ingest held: lost from every output.
        assert len(lost_log) <= len(down) + IN_PROCESS
        assert lost_alerts <= lost_log
    elif stage == "matcher":
        # Its queue, its unwritten archive lines, the alerts in its socket.
        assert len(lost_log) <= IN_PROCESS
        assert len(lost_alerts) <= IN_PROCESS // ALERT_EVERY
        assert not lost_forwarded
    elif stage == "notify":
        assert not lost_log and not lost_forwarded
        assert not lost_alerts, "notify lost alerts"
    else:
        assert not lost_log and not lost_alerts
        assert len(lost_forwarded) <= IN_PROCESS
