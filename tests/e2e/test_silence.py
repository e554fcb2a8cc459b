"""``ALERTIK_SILENCE_AFTER``: a sender that stops is reported once, and once
when it is back, through the normal notify path."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import Proc, WebhookServer, base_env, udp_port_of, wait_for

pytestmark = pytest.mark.e2e

WINDOW = 3.0
LINE = b"system,info,account user admin logged in from 10.0.0.9 via winbox"


class Sender:
    """A router that sends a line every 0.2 s while it is on."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.on = threading.Event()
        self.done = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not self.done.is_set():
                if self.on.wait(0.05) and not self.done.is_set():
                    s.sendto(LINE, ("127.0.0.1", self.port))
                    self.sent += 1
                    self.done.wait(0.2)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(5)


def test_stopping_the_sender_for_the_window_gives_one_silent_and_one_back_alert(
    tmp_path: Path, spawn: Callable[..., Proc], webhook: WebhookServer
) -> None:
    """1. `alertik run` with a 3 s silence window to a local webhook, no rules;
    2. a router sends five lines a second, stops for two windows, sends again
    for two windows.
    Result: exactly one "silent" alert, about a window after it stopped, and
    one "back" alert when it resumed, each delivered once; all lines are in
    the archive."""
    env = base_env(
        tmp_path,
        ALERTIK_SILENCE_AFTER=f"{WINDOW:g}s",
        ALERTIK_SILENCE_NOTIFY="Generic1",
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook",
        ALERTIK_TIME_SUFFIX="",
    )
    run = spawn("run", env=env)
    sender = Sender(udp_port_of(run))
    try:
        sender.on.set()  # the port is bound before any stage starts
        run.wait_line("success: ingest entered RUNNING state")
        wait_for(lambda: sender.sent >= 8, 10, "a few lines")
        sender.on.clear()
        stopped = time.monotonic()
        silent = webhook.wait(1, timeout=WINDOW + 10)[0]
        reported_after = silent.at - stopped
        assert "no router has sent anything for 3s" in silent.json()["text"]
        assert "127.0.0.1" in silent.json()["text"]
        # Quiet for a second window: no second "silent" alert.
        time.sleep(max(0.0, stopped + 2 * WINDOW - time.monotonic()))
        assert len(webhook.requests) == 1
        sender.on.set()
        back = webhook.wait(2, timeout=10)[1]
        assert "receiving again after" in back.json()["text"]
        assert "first from 127.0.0.1" in back.json()["text"]
        resumed = time.monotonic()
        # Sending for two more windows: nothing more is said.
        time.sleep(max(0.0, resumed + 2 * WINDOW - time.monotonic()))
    finally:
        sender.stop()
    assert len(webhook.requests) == 2, [r.json() for r in webhook.requests]
    assert WINDOW - 0.5 <= reported_after <= WINDOW + 2.5
    assert run.terminate() == 0
    archived = (tmp_path / "log.txt").read_text()
    assert archived.count("logged in from 10.0.0.9") == sender.sent
    assert archived.count("SILENCE, sending to Generic1") == 2
