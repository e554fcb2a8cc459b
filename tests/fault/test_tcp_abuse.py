"""TCP ingest against a connection hog, a slow trickle and messages split by
pauses, with real ingest and matcher processes on loopback.

* Lock-out: thousands of idle connections, from one address or spread over
  many, never keep a router out: connections per source are bounded, and at
  the cap a new connection replaces the idlest of the sender holding the most.
* Bytes that never complete a message do not keep a connection open.
* A pause inside a message (a lost TCP segment is sent again a second or more
  later) does not cut it in two on a connection that delimits or counts its
  messages, or on a new one; an undelimited RouterOS stream is still cut at
  its record boundaries.

Loopback has the whole 127.0.0.0/8, so each "host" here is its own address.
Each test prints what was sent and what arrived (``pytest -s -m fault``).
"""

from __future__ import annotations

import re
import select
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq

from tests.support import (
    Proc,
    base_env,
    endpoint_of,
    events_env,
    receive_alerts,
    wait_for,
)

pytestmark = pytest.mark.fault

RULE = ("Generic1", "regex", r"login failure for user ([a-z0-9]+) ", "alert @1")
SEQ = re.compile(rb" seq=(\d+)")
# An archive line for a received message: [date time] sender text.
RECEIVED = re.compile(rb"(?m)^\[[^]]*\] [0-9.]+ (.*)$")
ROUTER = "127.0.0.2"


@dataclass
class Pipeline:
    ingest: Proc
    matcher: Proc
    tcp_port: int
    log: Path
    alerts: zmq.Socket[bytes]

    def connect(self, source: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((source, 0))
        sock.settimeout(5.0)
        sock.connect(("127.0.0.1", self.tcp_port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def archived(self) -> list[bytes]:
        """The text of every message in the archive (not the "matched" notes)."""
        if not self.log.exists():
            return []
        return [m.group(1) for m in RECEIVED.finditer(self.log.read_bytes())]


@pytest.fixture
def pipeline(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    sink: tuple[zmq.Socket[bytes], str],
) -> Iterator[Callable[..., Pipeline]]:
    limited: list[Proc] = []

    def start(nofile: int = 0, **extra: str) -> Pipeline:
        """matcher and ingest; ingest under ulimit -n nofile if given."""
        sock, notify_addr = sink
        env = base_env(
            tmp_path,
            ALERTIK_NOTIFY_ADDR=notify_addr,
            ALERTIK_TCP_PORT="0",
            ALERTIK_LOG_MAX_BYTES="0",
            GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/unused",
            **events_env(RULE),
            **extra,
        )
        matcher = spawn(
            "matcher", env={**env, "ALERTIK_MATCHER_ADDR": "tcp://127.0.0.1:*"}
        )
        endpoint = endpoint_of(matcher, "matcher")
        ingest_env = {**env, "ALERTIK_MATCHER_ADDR": endpoint}
        if nofile:
            args = [f"--nofile={nofile}:{nofile}", sys.executable, "-m", "alertik"]
            ingest = Proc(["prlimit", *args, "ingest"], ingest_env, tmp_path)
            limited.append(ingest)
        else:
            ingest = spawn("ingest", env=ingest_env)
        m = re.search(r"tcp listening on \S*:(\d+)", ingest.wait_line("tcp listening"))
        assert m
        return Pipeline(ingest, matcher, int(m.group(1)), tmp_path / "log.txt", sock)

    yield start
    for proc in limited:
        proc.kill()


def login(user: str, seq: int) -> bytes:
    return (
        b"system,error,critical login failure for user %s from 192.0.2.7 "
        % (user.encode())
        + b"via ssh seq=%d" % seq
    )


def still_open(socks: list[socket.socket]) -> int:
    """How many of socks the server has not closed (no EOF or reset waiting)."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    closed = 0
    for fd, _ in poller.poll(500):
        try:
            closed += by_fd[fd].recv(1, socket.MSG_DONTWAIT) == b""
        except (ConnectionResetError, BlockingIOError):
            closed += 1
    return len(socks) - closed


def hog(p: Pipeline, sources: list[str], count: int) -> list[socket.socket]:
    """count idle connections, spread over sources in turn."""
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((sources[i % len(sources)], 0))
        s.connect(("127.0.0.1", p.tcp_port))
        socks.append(s)
    return socks


def test_thousands_of_idle_connections_never_lock_a_router_out(
    pipeline: Callable[..., Pipeline],
) -> None:
    """1. ingest with the default limits (1,024 connections, 32 per source);
    2. an attacker opens 2,000 idle connections from one address;
    3. a router connects and sends 20 login failures;
    4. the attacker opens 2,000 more from 64 addresses (31 or 32 each);
    5. a second router connects; both routers send 20 more.
    Result: every router line is archived and alerted; the first attacker
    address keeps at most 32 connections; the first router's connection,
    which sends messages, is never the one closed."""
    p = pipeline()
    one = hog(p, ["127.0.0.66"], 2000)
    router = p.connect(ROUTER)
    router.sendall(b"".join(login(f"u{n}", n) + b"\r\n" for n in range(20)))
    alerts = receive_alerts(p.alerts, 20)
    kept_one = still_open(one)
    many = hog(p, [f"127.0.1.{i}" for i in range(64)], 2000)
    second = p.connect("127.0.0.3")
    second.sendall(b"".join(login(f"u{n}", n) + b"\n" for n in range(20, 40)))
    router.sendall(b"".join(login(f"u{n}", n) + b"\r\n" for n in range(40, 60)))
    alerts += receive_alerts(p.alerts, 40)
    kept_many = still_open(many)
    wanted = set(range(60))
    wait_for(
        lambda: wanted <= {int(m) for m in SEQ.findall(b"\n".join(p.archived()))},
        10,
        "every router line in the archive",
    )
    assert p.ingest.terminate() == 0
    assert sorted(int(a.text.split(",")[0][len("alert u") :]) for a in alerts) == (
        sorted(wanted)
    )
    print(
        f"\nlock-out: 2000 idle from one address ({kept_one} left open), then "
        f"2000 from 64 addresses ({kept_many} left open); routers sent 60 lines, "
        f"{len(wanted)} archived, {len(alerts)} alerts"
    )
    assert kept_one <= 32
    assert "tcp sender over 32 connections" in p.ingest.output
    assert "tcp at the cap of 1024 connections" in p.ingest.output
    for s in [*one, *many, router, second]:
        s.close()


def test_a_low_descriptor_limit_lowers_the_cap_and_still_lets_a_router_in(
    pipeline: Callable[..., Pipeline],
) -> None:
    """1. ingest runs under ulimit -n 300 with the default cap of 1,024;
    2. an attacker opens 600 idle connections from 30 addresses;
    3. a router connects and sends 10 login failures.
    Result: ingest lowers its cap to fit (saying so) instead of running out
    of descriptors and pausing accepts; every router line arrives."""
    p = pipeline(nofile=300)
    p.ingest.wait_line("ALERTIK_TCP_MAX_CONNECTIONS=1024 is lowered")
    socks = hog(p, [f"127.0.2.{i}" for i in range(30)], 600)
    router = p.connect(ROUTER)
    router.sendall(b"".join(login(f"u{n}", n) + b"\n" for n in range(10)))
    alerts = receive_alerts(p.alerts, 10)
    kept = still_open(socks)
    print(
        f"\nulimit -n 300: 600 idle connections ({kept} left open); the router "
        f"sent 10 lines, {len(alerts)} alerts"
    )
    assert kept <= 300
    assert p.ingest.terminate() == 0
    for s in [*socks, router]:
        s.close()


def test_a_trickle_of_bytes_that_never_ends_a_message_is_closed_when_idle(
    pipeline: Callable[..., Pipeline],
) -> None:
    """1. ALERTIK_TCP_IDLE_TIMEOUT=1; a client sends one byte every 0.2 s,
       never a delimiter;
    Result: ingest closes it about 1 s after it connected, bytes or not."""
    p = pipeline(ALERTIK_TCP_IDLE_TIMEOUT="1")
    drip = p.connect("127.0.0.9")
    began = time.monotonic()
    closed_after = None
    while time.monotonic() - began < 4.0:
        try:
            drip.send(b"x")
        except OSError:
            closed_after = time.monotonic() - began
            break
        if still_open([drip]) == 0:
            closed_after = time.monotonic() - began
            break
        time.sleep(0.2)
    drip.close()
    shown = "never" if closed_after is None else f"after {closed_after:.1f} s"
    print(f"\ntrickle: a byte every 0.2 s, never a message; closed {shown}")
    assert closed_after is not None, "the trickle kept the connection open for 4 s"
    assert p.ingest.terminate() == 0


PAUSE_S = 1.5
SYSLOG = b"<27>Oct  2 17:36:35 MikroTik login failure for user %s from 192.0.2.7 "


def test_a_pause_inside_a_message_does_not_cut_it_and_records_still_split(
    pipeline: Callable[..., Pipeline],
) -> None:
    """1. three connections each send the first part of a login failure: a
       new connection (CRLF), one that has sent a line before (LF), and an
       octet-counted one (its count cut after the first digit); a fourth, a
       RouterOS syslog stream without delimiters, sends two records at once;
    2. 1.5 s later each sends the rest (the stream a third record).
    Result: every message is archived whole and alerted once; the undelimited
    stream is cut at its record boundaries."""
    p = pipeline()
    whole = {
        "new": login("new", 1),
        "delimited": login("delimited", 2),
        "counted": login("counted", 3),
    }
    records = [SYSLOG % b"rec%d" % n + b"seq=%d" % n for n in (4, 5, 6)]
    count = b"%d " % len(whole["counted"])
    first = {
        "new": whole["new"][:40],
        "delimited": b"system,info before seq=0\n" + whole["delimited"][:40],
        "counted": count[:1],
        "stream": records[0] + records[1],
    }
    rest = {
        "new": whole["new"][40:] + b"\r\n",
        "delimited": whole["delimited"][40:] + b"\n",
        "counted": count[1:] + whole["counted"],
        "stream": records[2],
    }
    conns = {name: p.connect(f"127.0.0.{20 + i}") for i, name in enumerate(first)}
    for name, sock in conns.items():
        sock.sendall(first[name])
    time.sleep(PAUSE_S)  # the pause itself is what is tested
    for name, sock in conns.items():
        sock.sendall(rest[name])
    expected = sorted([b"system,info before seq=0", *whole.values(), *records])
    wait_for(lambda: len(p.archived()) >= len(expected), 10, "every message")
    alerts = receive_alerts(p.alerts, 6)
    time.sleep(0.5)  # a fragment, if any, would be archived by now
    archived = p.archived()
    users = sorted(a.text.split(",")[0] for a in alerts)
    print(
        f"\npauses: {len(expected)} messages sent ({PAUSE_S} s pause inside 3), "
        f"{len(archived)} archive lines, {len(alerts)} alerts"
    )
    assert sorted(archived) == expected
    assert users == sorted(
        ["alert new", "alert delimited", "alert counted"]
        + [f"alert rec{n}" for n in (4, 5, 6)]
    )
    for sock in conns.values():
        sock.close()
    assert p.ingest.terminate() == 0
