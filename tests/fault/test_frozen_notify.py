"""A frozen notify must not stop the archive or matching (issue: a SIGSTOPped
notify under a flood made the matcher block once notify's queue was full, and
the log archive stopped at about 100,000 lines).

Run with ``pytest -s -m fault`` to see the figures.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fault.test_kill import kill_stages, stage_pid
from tests.support import (
    Proc,
    WebhookServer,
    base_env,
    events_env,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.fault

# More alerts than notify's socket, the matcher's queue for it and the old
# 100,000-alert send queue could hold together.
LINES = 120_000
# Datagrams per second: well within what ingest and the matcher take.
RATE = 20_000
ALERT = re.compile(r"^alert (\d+)$", re.MULTILINE)


def send_paced(port: int, count: int, rate: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        began = time.monotonic()
        for seq in range(count):
            if seq % 500 == 0:
                ahead = seq / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
            s.sendto(b"login failure for user u%d from 192.0.2.1 via ssh" % seq,
                     ("127.0.0.1", port))  # fmt: skip


def delivered(webhook: WebhookServer) -> set[int]:
    with webhook._lock:
        texts = [r.json()["text"] for r in webhook.requests]
    return {int(m.group(1)) for text in texts for m in ALERT.finditer(text)}


@pytest.mark.timeout(180)
def test_a_frozen_notify_stops_neither_the_archive_nor_matching_and_loses_nothing(
    tmp_path: Path, spawn: Callable[..., Proc], webhook: WebhookServer
) -> None:
    """1. `alertik run` with a rule every line matches; 2. freeze notify
    (SIGSTOP); 3. send 120,000 matching lines at 20,000/s.
    Result: all 120,000 lines reach the archive while notify is frozen (the
    alerts wait in the matcher's spool); after SIGCONT every alert is
    delivered."""
    env = base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook",
        ALERTIK_GENERIC_DIGEST="yes",
        ALERTIK_OUTBOX_MAX=str(2 * LINES),
        ALERTIK_SPOOL_MAX=str(2 * LINES),
        ALERTIK_LOG_MAX_BYTES="0",
        ALERTIK_TIME_SUFFIX="",
        **events_env(("Generic1", "regex", r"for user u([0-9]+) ", "alert @1")),
    )
    run = spawn("run", env=env)
    log = tmp_path / "log.txt"
    try:
        port = udp_port_of(run)
        for name in ("notify", "matcher", "ingest"):
            run.wait_line(f"success: {name} entered RUNNING state")
        notify = stage_pid(run, "notify")
        os.kill(notify, signal.SIGSTOP)
        try:
            send_paced(port, LINES, RATE)

            def archived() -> int:
                return log.read_bytes().count(b"login failure for user")

            try:
                wait_for(lambda: archived() >= LINES, 60, "every line archived")
            except BaseException:
                print(f"\n{archived()} archived; the run said:\n{run.output[-3000:]}")
                raise
            print(f"{archived()} of {LINES} lines archived while notify was frozen")
        finally:
            os.kill(notify, signal.SIGCONT)
        wait_for(lambda: len(delivered(webhook)) >= LINES, 60, "every alert")
        assert delivered(webhook) == set(range(LINES))
        assert run.terminate() == 0
    finally:
        kill_stages(run)
    print(f"{len(delivered(webhook))} of {LINES} alerts delivered after SIGCONT")
