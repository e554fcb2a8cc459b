"""Heartbeats: each running stage tells the keeper, every second, that it is alive.

A stage's loop sends one datagram a second to ``<run dir>/keeper.sock``, the
socket of ``alertik run``'s keeper: its name, pid, when it started and its
counters. A stage that is frozen (SIGSTOP, a deadlock, a loop that never
returns) stops sending, so the age of its last heartbeat tells
``alertik health`` what supervisord's RUNNING cannot. Nothing is written to
disk: on a router the run directory may be flash.

A stage started without the keeper (``alertik ingest`` in a terminal) sends
into nothing; that costs one failed system call a second.

Datagram: ``<stage>\\n<JSON status>``. A query is a datagram starting with
``?`` from a socket bound to an address of its own; the keeper answers with
``{"stages": {name: {"age": seconds, "status": {...}}}, "expected": [...]}``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from typing import Any

log = logging.getLogger(__name__)

KEEPER_SOCKET = "keeper.sock"
QUERY = b"?"
# Heartbeats older than this mean the stage is not responding: five missed
# beats, so that a stage busy for a few seconds (a huge batch) is not flagged.
STALE_SECONDS = 5.0


def keeper_path(run_dir: str) -> str:
    return os.path.join(run_dir, KEEPER_SOCKET)


class Reporter:
    """Sends one stage's heartbeat; never blocks, never fails the stage."""

    def __init__(self, run_dir: str, stage: str) -> None:
        self.path = keeper_path(run_dir)
        self.stage = stage
        self.started = time.time()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._too_big = False

    def write(
        self, counters: dict[str, Any], metrics: dict[str, Any] | None = None
    ) -> None:
        """Send counters (and the metrics of ``common/metrics.py``)."""
        status = {
            "pid": os.getpid(),
            "started": self.started,
            "counters": counters,
        }
        if metrics:
            status["metrics"] = metrics
        payload = self.stage.encode() + b"\n" + json.dumps(status).encode()
        try:
            self._sock.sendto(payload, self.path)
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE and metrics:
                # Bounded labels keep this from happening; if it does, the
                # heartbeat itself must still get through.
                if not self._too_big:
                    log.error(
                        "metrics of %d bytes do not fit in a heartbeat; sent "
                        "without them",
                        len(payload),
                    )
                self._too_big = True
                self.write(counters)
            # else: no keeper (a stage run alone), or its queue is full

    def close(self) -> None:
        self._sock.close()


def query(run_dir: str, timeout: float = 2.0) -> dict[str, Any]:
    """Ask the keeper what it knows; OSError or TimeoutError if it does not say."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("")  # an address of our own (Linux picks one) for the answer
        sock.settimeout(timeout)
        sock.sendto(QUERY, keeper_path(run_dir))
        answer: dict[str, Any] = json.loads(sock.recv(1 << 20))
        return answer
