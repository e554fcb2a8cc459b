"""Forwarded datagrams per second with no loss, on this machine.

Usage: python bench/forward.py [--count N] [--rates R1,R2,...] [--step-seconds S]

Starts the forwarder stage (``python -m alertik.forwarder``) aimed at a UDP
receiver on 127.0.0.1, then pushes SyslogEvents into its ZeroMQ input:

1. a burst: ``--count`` events as fast as the input takes them; the rate is the
   receiver's, from first to last datagram;
2. stepped rates: each rate for ``--step-seconds``, paced.

Every datagram is checked byte for byte and in order. A run counts only if
nothing was lost; the answer is the best such rate. A full run takes well
under a minute.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from typing import NamedTuple

import harness as h
import zmq

from alertik.common.schema import ENCODER, SyslogEvent
from tests.support import Proc, endpoint_of

# A RouterOS "syslog" format login failure, about the size of a typical line.
LINE = (
    b"<27>Oct  2 17:36:35 MikroTik login failure for user guest from "
    b"192.168.88.17 via ssh seq=%09d"
)
# How long the receiver waits after the last datagram before it calls a run over.
QUIET_SECONDS = 1.0
# Socket buffer asked for on the receiver, so that the receiving script (not the
# forwarder) is rarely what loses datagrams; the kernel caps it at rmem_max.
RECEIVE_BUFFER_BYTES = 8 << 20


def receive(conn: Connection) -> None:
    """The receiver process: bind, report the port, then serve one run per request.

    A request is (first seq, count); the answer is (how many arrived, whether
    each was byte-identical and in order, time of the first, time of the last).
    It runs in its own process so that the pushing never starves it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(QUIET_SECONDS)
    conn.send(sock.getsockname()[1])
    recv = sock.recv
    while True:
        request = conn.recv()
        if request is None:
            return
        start, count = request
        got = 0
        intact = True
        first = last = 0.0
        while got < count:
            try:
                data = recv(65536)
            except TimeoutError:
                break
            last = time.perf_counter()
            if not got:
                first = last
            intact = intact and data == LINE % (start + got)
            got += 1
        conn.send((got, intact, first, last))


def start_forwarder(port: int, workdir: str) -> tuple[Proc, str]:
    """The forwarder stage as a process; its input endpoint from its log line."""
    env = h.clean_env(
        workdir,
        ALERTIK_LOG_FILE="-",
        # INFO: the start-up line carries the endpoint to push to.
        ALERTIK_LOG_LEVEL="INFO",
        ALERTIK_FORWARDER_ADDR="tcp://127.0.0.1:*",
        ALERTIK_FORWARDER_TAP="tcp://127.0.0.1:*",
        FORWARD_HOST="127.0.0.1",
        FORWARD_PORT=str(port),
    )
    proc = Proc([sys.executable, "-m", "alertik.forwarder"], env)
    return proc, endpoint_of(proc, "forwarder", 30)


def encoded(start: int, count: int) -> list[bytes]:
    """count events numbered from start, encoded as ingest pushes them."""
    now = time.time()
    return [
        ENCODER.encode(
            SyslogEvent(
                raw=LINE % seq,
                received=now,
                sender="127.0.0.1",
                sender_port=1,
                node="bench",
                seq=seq,
            )
        )
        for seq in range(start, start + count)
    ]


class Result(NamedTuple):
    """One run as the receiver saw it."""

    sent: int
    got: int
    intact: bool  # every datagram byte-identical and in order
    rate: float  # datagrams per second, first to last

    @property
    def lossless(self) -> bool:
        return self.got == self.sent and self.intact

    def __str__(self) -> str:
        if self.got < self.sent:
            verdict = f"LOST {self.sent - self.got}"
        elif not self.intact:
            verdict = "CORRUPT or OUT OF ORDER"
        else:
            verdict = "ok"
        return f"{self.got}/{self.sent} at {self.rate:,.0f}/s {verdict}"


def run_once(
    push: zmq.Socket[bytes], receiver: Connection, start: int, count: int, rate: float
) -> Result:
    """Push count events (paced at rate per second, or flat out if 0)."""
    messages = encoded(start, count)
    receiver.send((start, count))
    began = time.perf_counter()
    if rate <= 0:
        for message in messages:
            push.send(message)
    else:
        # Pace in slices of 1 ms so that the sleeping costs little.
        per_slice = max(1, round(rate / 1000))
        for i in range(0, count, per_slice):
            for message in messages[i : i + per_slice]:
                push.send(message)
            delay = began + (i + per_slice) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    got, intact, first, last = receiver.recv()
    measured = (got - 1) / (last - first) if got > 1 and last > first else 0.0
    return Result(count, got, intact, measured)


def main() -> int:
    """Run the burst and the stepped rates; print one line per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--rates", default="25000,50000,100000,150000")
    parser.add_argument("--step-seconds", type=float, default=2.0)
    args = parser.parse_args()

    receiver, here = h.spawn_helper(receive)
    port = here.recv()
    runs = [("burst", args.count, 0.0)]
    for rate in (float(r) for r in args.rates.split(",")):
        runs.append((f"paced {rate:,.0f}/s", int(rate * args.step_seconds), rate))
    best = 0.0
    with tempfile.TemporaryDirectory() as workdir:
        proc, endpoint = start_forwarder(port, workdir)
        with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push:
            push.setsockopt(zmq.LINGER, 0)
            push.connect(endpoint)
            print(f"warm-up: {run_once(push, here, 0, 1000, 2000.0)}", flush=True)
            seq = 1000
            for name, count, rate in runs:
                result = run_once(push, here, seq, count, rate)
                seq += count
                print(f"{name}: {result}", flush=True)
                if result.lossless:
                    best = max(best, result.rate)
        proc.terminate(10)
    here.send(None)
    receiver.join(5)
    print(f"forwarded datagrams/s with no loss: {best:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
