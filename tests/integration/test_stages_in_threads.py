"""Every stage run by serve() in a thread, with real sockets and a stop flag.

The stage skeleton (common/lifecycle.py) is the same for all four stages; here
each one is driven in-process as a test would drive uvicorn: the test owns the
sockets around the stage, sets the flag, and looks at what came out.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from alertik.common import config, status
from alertik.common.config import ConfigError
from alertik.common.lifecycle import Stage, StopFlag, serve
from alertik.common.schema import (
    ALERT_DECODER,
    ENCODER,
    EVENT_DECODER,
    Alert,
    SyslogEvent,
)
from alertik.forwarder.stage import Forwarder
from alertik.ingest.stage import Ingest
from alertik.matcher.stage import Matcher
from alertik.notify.stage import Notify
from tests.support import WebhookServer, base_env, events_env, wait_for

LOGIN = b"system,error,critical login failure for user admin from 192.0.2.7 via ssh"


class Keeper:
    """Stands in for alertik run's keeper: collects the heartbeats of stages."""

    def __init__(self, run_dir: str) -> None:
        os.makedirs(run_dir, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(status.keeper_path(run_dir))
        self.sock.settimeout(0.05)
        self.beats: list[tuple[str, dict[str, Any]]] = []

    def heard(self) -> list[tuple[str, dict[str, Any]]]:
        """Every heartbeat so far: (stage, status)."""
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                return self.beats
            stage, _, body = data.partition(b"\n")
            self.beats.append((stage.decode(), json.loads(body)))

    def close(self) -> None:
        self.sock.close()


class Running:
    """A stage served in a thread; stop() sets the flag and waits for the end."""

    def __init__(self, stage: Stage, cfg: config.Config) -> None:
        self.stage = stage
        self.cfg = cfg
        self.keeper = Keeper(cfg.run_dir)
        self.flag = StopFlag()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, args=(cfg,), daemon=True)
        self.thread.start()

    def _serve(self, cfg: config.Config) -> None:
        try:
            serve(self.stage, cfg, self.flag)
        except BaseException as exc:
            self.error = exc

    def opened(self) -> None:
        """Wait until the stage is open and serving (its first heartbeat)."""
        wait_for(
            lambda: self.keeper.heard() or self.error,
            what=f"{self.stage.name} to open",
        )
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = 15.0) -> float:
        """Set the flag; how long the stage took to return."""
        started = time.monotonic()
        self.flag.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.stage.name} did not stop"
        self.keeper.close()
        if self.error is not None:
            raise self.error
        return time.monotonic() - started


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    with zmq.Context() as context:
        yield context


def bind(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    """The test's own PULL standing in for the next stage."""
    Path(endpoint.removeprefix("ipc://")).parent.mkdir(parents=True, exist_ok=True)
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(endpoint)
    return sock


def push(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    """The test's own PUSH standing in for the stage in front."""
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def receive(
    sock: zmq.Socket[bytes], count: int, timeout_ms: int = 10_000
) -> list[bytes]:
    frames: list[bytes] = []
    while len(frames) < count:
        assert sock.poll(timeout_ms), f"only {len(frames)} of {count} arrived"
        frames.append(sock.recv())
    return frames


def event(raw: bytes, seq: int = 1) -> SyslogEvent:
    return SyslogEvent(
        raw=raw, received=time.time(), sender="192.0.2.1", sender_port=5140,
        node="test-node", seq=seq, pid=1,
    )  # fmt: skip


def load(tmp_path: Path, **extra: str) -> config.Config:
    return config.load(base_env(tmp_path, **extra))


def test_ingest_in_a_thread_pushes_each_datagram_and_stops_on_the_flag(
    tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    cfg = load(tmp_path)
    matcher = bind(ctx, cfg.endpoints.matcher)
    running = Running(Ingest(cfg), cfg)
    running.opened()
    port = running.stage.udp.getsockname()[1]  # type: ignore[attr-defined]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(3):
            s.sendto(LOGIN + b" %d" % i, ("127.0.0.1", port))
    got = [EVENT_DECODER.decode(f) for f in receive(matcher, 3)]
    assert [e.raw for e in got] == [LOGIN + b" %d" % i for i in range(3)]
    assert [e.seq for e in got] == [1, 2, 3]
    running.stop()
    assert running.stage.counters() == {
        "received": 3, "dropped": 0, "truncated": 0, "refused": 0,
    }  # fmt: skip
    matcher.close()


def test_the_matcher_in_a_thread_archives_matches_and_pushes_the_alert(
    tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    rule = ("Generic1", "regex", "user ([a-z]+) from", "@1 failed")
    cfg = load(
        tmp_path, GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/x", **events_env(rule)
    )
    notify = bind(ctx, cfg.endpoints.notify)
    running = Running(Matcher(cfg), cfg)
    running.opened()
    sender = push(ctx, cfg.endpoints.matcher)
    sender.send(ENCODER.encode(event(LOGIN)))
    sender.send(ENCODER.encode(event(b"nothing to see", seq=2)))
    alert = ALERT_DECODER.decode(receive(notify, 1)[0])
    assert alert.text.startswith("admin failed, at: ")
    assert alert.rule == "EVENT0"
    running.stop()
    counters = running.stage.counters()
    assert {k: counters[k] for k in list(counters)[:5]} == {
        "handled": 2,
        "alerts": 1,
        "malformed": 0,
        "spooled": 0,
        "spool_dropped": 0,
    }
    archive = (tmp_path / "log.txt").read_text()
    assert "login failure for user admin" in archive
    assert "nothing to see" in archive
    sender.close()
    notify.close()


def test_notify_in_a_thread_delivers_to_a_local_webhook(
    tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]], webhook: WebhookServer
) -> None:
    cfg = load(tmp_path, GENERIC1_WEBHOOK_URL=webhook.url, ENV_EVENTS="1",
               EVENT0_NOTIFIER="Generic1", EVENT0_MATCH_TYPE="substr",
               EVENT0_MATCH_STR="x", EVENT0_MASK_MSG="x")  # fmt: skip
    running = Running(Notify(cfg), cfg)
    running.opened()
    sender = push(ctx, cfg.endpoints.notify)
    alert = Alert(
        id="n/1/1/0/EVENT0", notifier="Generic1", text="hello from a thread",
        rule="EVENT0", received=time.time(), sender="192.0.2.1", node="n",
    )  # fmt: skip
    sender.send(ENCODER.encode(alert))
    (request,) = webhook.wait(1)
    assert request.json() == {"text": "hello from a thread"}
    wait_for(lambda: running.stage.counters()["delivered"] == 1, what="delivered")
    running.stop()
    assert running.stage.counters()["pending"] == 0
    sender.close()


def test_the_forwarder_in_a_thread_relays_raw_bytes(
    tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as target:
        target.bind(("127.0.0.1", 0))
        target.settimeout(10)
        port = target.getsockname()[1]
        cfg = load(tmp_path, FORWARD_HOST="127.0.0.1", FORWARD_PORT=str(port))
        running = Running(Forwarder(cfg), cfg)
        running.opened()
        sender = push(ctx, cfg.endpoints.forwarder)
        raw = b"<30>\x00\xffbinary and all"
        sender.send(ENCODER.encode(event(raw)))
        assert target.recv(65535) == raw
        running.stop()
        assert running.stage.counters()["forwarded"] == 1
        sender.close()


def test_a_running_stage_sends_a_heartbeat_with_its_counters_every_second(
    tmp_path: Path,
) -> None:
    cfg = load(tmp_path)
    running = Running(Matcher(cfg), cfg)
    wait_for(lambda: len(running.keeper.heard()) >= 3, what="three heartbeats")
    (stage, first), *_, (_, third) = running.keeper.heard()
    assert stage == "matcher"
    assert first["pid"] == os.getpid()
    assert first["counters"]["handled"] == 0
    assert third["started"] == first["started"]
    running.stop()


def test_a_configuration_error_while_opening_closes_what_was_opened(
    tmp_path: Path,
) -> None:
    """1. hold a UDP port; 2. serve an ingest configured for it.
    Result: serve raises the error naming ALERTIK_UDP_PORT, and returns (the
    sockets opened before the UDP one were closed, or the context would hang)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        cfg = load(tmp_path, ALERTIK_UDP_PORT=str(taken.getsockname()[1]))
        running = Running(Ingest(cfg), cfg)
        running.thread.join(10)
        running.keeper.close()
        assert not running.thread.is_alive()
        assert isinstance(running.error, ConfigError)
        assert running.error.variable == "ALERTIK_UDP_PORT"


FLOOD = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
line = sys.argv[2].encode()
while True:
    s.sendto(line, ("127.0.0.1", int(sys.argv[1])))
"""


COUNTER = """
import select, sys, zmq
sock = zmq.Context().socket(zmq.PULL)
sock.bind(sys.argv[1])
print("ready", flush=True)
count = 0
while True:
    if sock.poll(200):
        while True:
            try:
                sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            count += 1
    elif select.select([sys.stdin], [], [], 0)[0]:
        print(count, flush=True)
        break
"""


@pytest.fixture
def flood_udp() -> Iterator[Callable[[int], Callable[[], None]]]:
    """Start two processes sending datagrams to a port as fast as they can;
    calling what start returns (or the end of the test) kills them."""
    procs: list[subprocess.Popen[bytes]] = []

    def end() -> None:
        for proc in procs:
            proc.kill()
            proc.wait()

    def start(port: int) -> Callable[[], None]:
        for _ in range(2):
            args = [sys.executable, "-c", FLOOD, str(port), LOGIN.decode()]
            procs.append(subprocess.Popen(args))
        return end

    yield start
    end()


def test_ingest_stops_within_the_drain_time_under_a_flood_and_flushes_what_it_took(
    tmp_path: Path, flood_udp: Callable[[int], Callable[[], None]]
) -> None:
    """1. ingest with ALERTIK_DRAIN_SECONDS=1; 2. two threads flood its UDP
    port; 3. set the stop flag while the flood goes on.
    Result: serve returns within the drain time and the linger, and every
    event it counted as received and not dropped reached the matcher's side."""
    cfg = load(tmp_path, ALERTIK_DRAIN_SECONDS="1")
    # The matcher's side in its own process, as in production: a reader in
    # this one would compete with the stage for the interpreter.
    Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-c", COUNTER, cfg.endpoints.matcher]
    with subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as counter:
        assert counter.stdout is not None and counter.stdin is not None
        try:
            assert counter.stdout.readline() == b"ready\n"
            running = Running(Ingest(cfg), cfg)
            running.opened()
            port = running.stage.udp.getsockname()[1]  # type: ignore[attr-defined]
            end_flood = flood_udp(port)
            wait_for(lambda: running.stage.counters()["received"] > 1000, what="flood")
            took = running.stop()
            end_flood()
            counter.stdin.write(b"count\n")
            counter.stdin.flush()
            received = int(counter.stdout.readline())
        finally:
            counter.kill()
    counters = running.stage.counters()
    assert took < 1 + 2 + 2, f"stopping took {took:.1f} s"
    assert received == counters["received"] - counters["dropped"]


def test_the_matcher_stops_within_the_drain_time_under_a_flood(
    tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    cfg = load(tmp_path, ALERTIK_DRAIN_SECONDS="1")
    running = Running(Matcher(cfg), cfg)
    running.opened()
    sender = push(ctx, cfg.endpoints.matcher)
    sender.setsockopt(zmq.SNDHWM, 0)
    stop_sending = threading.Event()
    frame = ENCODER.encode(event(LOGIN))

    def flood() -> None:
        while not stop_sending.is_set():
            for _ in range(100):
                sender.send(frame)

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    wait_for(lambda: running.stage.counters()["handled"] > 1000, what="the flood")
    took = running.stop()
    stop_sending.set()
    flooder.join()
    assert took < 1 + 2 + 2, f"stopping took {took:.1f} s"
    sender.close()


def test_the_stop_flag_records_the_signal_and_a_second_one_forces() -> None:
    flag = StopFlag()
    flag.handle(15, None)
    assert flag.is_set() and not flag.force and flag.signal_name == "SIGTERM"
    flag.handle(2, None)
    assert flag.force and flag.signal_name == "SIGINT"


def test_a_reload_request_reaches_the_stage_and_it_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load(tmp_path)
    running = Running(Matcher(cfg), cfg)
    running.opened()
    with caplog.at_level("INFO"):
        running.flag.handle_reload(1, None)
        wait_for(lambda: "no ALERTIK_RULES_FILE to reload (SIGHUP)" in caplog.messages)
    assert "reloading (SIGHUP)" in caplog.messages
    assert not running.flag.is_set()
    running.stop()
