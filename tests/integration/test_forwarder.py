"""The forwarder against real UDP and TCP receivers on 127.0.0.1 and ::1.

Most tests run the stage as a process (``python -m alertik.forwarder``) and push
SyslogEvents into its ZeroMQ input, as ingest does. The re-resolution tests
drive the senders in-process with an injected lookup function, because a real
change of a resolver's answer would need /etc/hosts or a DNS server.
"""

from __future__ import annotations

import importlib.util
import random
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
import zmq

from alertik.common.schema import ENCODER, SyslogEvent
from alertik.forwarder.resolve import Address, Target
from alertik.forwarder.tcp import TcpSender
from alertik.forwarder.udp import UdpSender
from tests.support import Proc, base_env, wait_for

# Asked of every receiving socket, so that a burst waits in the kernel while the
# receiving thread catches up (the kernel caps it at net.core.rmem_max).
RECEIVE_BUFFER_BYTES = 4 << 20
STOPPED = re.compile(
    r"stopped: forwarded=(\d+) dropped=(\d+) skipped=(\d+) refused=(\d+)"
)


def event(raw: bytes, seq: int) -> bytes:
    """The encoding of a SyslogEvent as ingest pushes it."""
    return ENCODER.encode(
        SyslogEvent(
            raw=raw,
            received=time.time(),
            sender="127.0.0.1",
            sender_port=1,
            node="t",
            seq=seq,
        )
    )


def mixed_datagrams(count: int) -> list[bytes]:
    """RouterOS lines, binary, non-UTF-8, NULs, empty and 2 KB+ datagrams."""
    rng = random.Random(5)
    shapes: list[Callable[[int], bytes]] = [
        lambda i: b"system,error,critical login failure for user u%d via ssh" % i,
        lambda i: b"<27>Oct  2 17:36:35 MikroTik seq %d\n" % i,
        lambda i: rng.randbytes(rng.randint(1, 300)),
        lambda i: "caf\u00e9 %d".encode("latin-1") + b"\xff\xfe\x80",
        lambda i: b"\x00nul\x00%d\x00" % i,
        lambda i: b"",
        lambda i: b"%d " % i + rng.randbytes(2048 + i),
        lambda i: b"CEF:0|MikroTik|hAP|7.18|10|x|High|msg=a\\=b %d\r\n" % i,
        lambda i: b"%06d" % i + b"x" * rng.choice((2047, 4000, 9000)),
    ]
    return [shapes[i % len(shapes)](i) for i in range(count)]


class UdpReceiver:
    """A UDP socket that records every datagram on a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        self.sock.bind((host, port))
        self.port: int = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while not self._closed.is_set():
            if poller.poll(50):
                self.datagrams.append(self.sock.recv(65536))

    def wait(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """Wait until count datagrams arrived; return them all."""
        wait_for(lambda: len(self.datagrams) >= count, timeout, f"{count} datagrams")
        return list(self.datagrams)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self.sock.close()


class TcpReceiver:
    """An RFC 6587 octet-counting receiver on 127.0.0.1 that can restart.

    ``break_after``: once that many frames arrived, it drops the connection and
    its listening socket at once, then listens again on the same port.
    """

    def __init__(self, listen: bool = True, break_after: int = 0) -> None:
        self.frames: list[bytes] = []
        self.partials = 0  # connections that ended inside a frame
        self.connections = 0
        self.break_after = break_after
        self._listener = self._bind(0)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if listen:
            self.start()

    @staticmethod
    def _bind(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # The old connection's TIME_WAIT must not keep a restart off the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        sock.bind(("127.0.0.1", port))
        return sock

    def start(self) -> None:
        """Listen (again, on the same port) and serve on a thread."""
        if self._listener.fileno() < 0:
            self._listener = self._bind(self.port)
        self._listener.listen(4)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the connection and the listening socket (refuse from now on)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.05)
            if not ready:
                continue
            conn, _ = self._listener.accept()
            self.connections += 1
            with conn:
                if self._read(conn):
                    # Break mid-stream: both sockets gone, then a new listener.
                    self.break_after = 0
                    conn.close()
                    self._listener.close()
                    self._listener = self._bind(self.port)
                    self._listener.listen(4)

    def _read(self, conn: socket.socket) -> bool:
        """Parse frames until EOF or stop; True when it is time to break."""
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([conn], [], [], 0.05)
            if not ready:
                continue
            try:
                data = conn.recv(1 << 16)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            buffer += data
            while True:
                space = buffer.find(b" ")
                if space < 0:
                    break
                assert buffer[:space].isdigit() and buffer[:1] != b"0", buffer[:20]
                end = space + 1 + int(buffer[:space])
                if len(buffer) < end:
                    break
                self.frames.append(buffer[space + 1 : end])
                buffer = buffer[end:]
            if self.break_after and len(self.frames) >= self.break_after:
                return True
        if buffer:
            self.partials += 1
        return False

    def wait(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """Wait until count frames arrived; return them all."""
        wait_for(lambda: len(self.frames) >= count, timeout, f"{count} frames")
        return list(self.frames)


@pytest.fixture
def udp_receiver() -> Iterator[UdpReceiver]:
    receiver = UdpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def pusher() -> Iterator[Callable[[str], zmq.Socket[bytes]]]:
    """Connect PUSH sockets, as ingest does, to a forwarder's input."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sockets: list[zmq.Socket[bytes]] = []

    def connect(endpoint: str) -> zmq.Socket[bytes]:
        sock = ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        sockets.append(sock)
        return sock

    yield connect
    for sock in sockets:
        sock.close()
    ctx.term()


@pytest.fixture
def start_forwarder(
    tmp_path: Path,
) -> Iterator[Callable[..., tuple[Proc, str]]]:
    """Run ``python -m alertik.forwarder``; its process and input endpoint."""
    procs: list[Proc] = []

    def start(**env: str) -> tuple[Proc, str]:
        full = base_env(
            tmp_path,
            ALERTIK_FORWARDER_ADDR="tcp://127.0.0.1:*",
            ALERTIK_FORWARDER_TAP="tcp://127.0.0.1:*",
            **env,
        )
        proc = Proc([sys.executable, "-m", "alertik.forwarder"], full, tmp_path)
        procs.append(proc)
        line = proc.wait_line("forwarder listening on")
        return proc, line.split("forwarder listening on ", 1)[1].split()[0]

    yield start
    for proc in procs:
        proc.kill()


def stop(proc: Proc) -> tuple[int, int, int, int]:
    """SIGTERM; assert a clean exit; the counters of the stopped line."""
    assert proc.terminate() == 0, proc.output
    found = STOPPED.search(proc.output)
    assert found, proc.output
    forwarded, dropped, skipped, refused = (int(g) for g in found.groups())
    return forwarded, dropped, skipped, refused


def push_and_mark(push: zmq.Socket[bytes], proc: Proc, messages: list[bytes]) -> None:
    """Push messages, then a malformed one; wait until the stage has read them.

    The skipped-message warning is logged at once for the first malformed
    message, and the input is in order: when it shows, all before it were read.
    """
    for message in messages:
        push.send(message)
    push.send(b"not an event")
    proc.wait_line("malformed messages skipped")


def test_600_mixed_datagrams_arrive_byte_identical_and_in_order_over_udp(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
    udp_receiver: UdpReceiver,
) -> None:
    proc, endpoint = start_forwarder(
        FORWARD_HOST="127.0.0.1", FORWARD_PORT=str(udp_receiver.port)
    )
    push = pusher(endpoint)
    datagrams = mixed_datagrams(600)
    for seq, raw in enumerate(datagrams):
        push.send(event(raw, seq))
    assert udp_receiver.wait(600) == datagrams
    assert stop(proc) == (600, 0, 0, 0)


def test_forwarding_to_an_ipv6_literal_works(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
) -> None:
    receiver = UdpReceiver("::1")
    try:
        proc, endpoint = start_forwarder(
            FORWARD_HOST="::1", FORWARD_PORT=str(receiver.port)
        )
        push = pusher(endpoint)
        for seq in range(3):
            push.send(event(b"over ipv6 %d" % seq, seq))
        assert receiver.wait(3) == [b"over ipv6 0", b"over ipv6 1", b"over ipv6 2"]
        assert stop(proc)[:2] == (3, 0)
    finally:
        receiver.close()


def test_the_tap_publishes_each_forwarded_event_as_pushed(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
    udp_receiver: UdpReceiver,
) -> None:
    """1. Subscribe to the tap; push probes until one shows (subscriptions lag).
    2. Push 20 events.
    Result: the tap carries exactly the 20 encodings that were pushed.
    """
    proc, endpoint = start_forwarder(
        FORWARD_HOST="127.0.0.1", FORWARD_PORT=str(udp_receiver.port)
    )
    tap_endpoint = re.search(r"\(tap (\S+)\)", proc.output)
    assert tap_endpoint
    push = pusher(endpoint)
    with zmq.Context() as ctx, ctx.socket(zmq.SUB) as sub:
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(tap_endpoint.group(1))

        def probe() -> bool:
            push.send(event(b"probe", -1))
            return bool(sub.poll(20))

        wait_for(probe, 10.0, "the tap subscription")
        while sub.poll(200):
            sub.recv()
        messages = [event(b"tapped %d" % seq, seq) for seq in range(20)]
        for message in messages:
            push.send(message)
        seen: list[bytes] = []
        while len(seen) < 20 and sub.poll(5000):
            seen.append(sub.recv())
        assert seen == messages
    stop(proc)


def test_a_malformed_message_is_skipped_with_a_warning_and_forwarding_goes_on(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
    udp_receiver: UdpReceiver,
) -> None:
    proc, endpoint = start_forwarder(
        FORWARD_HOST="127.0.0.1", FORWARD_PORT=str(udp_receiver.port)
    )
    push = pusher(endpoint)
    push.send(b"\x93garbage")
    push.send(msgspec.msgpack.encode({"type": "Alert"}))
    push.send(event(b"after the junk", 1))
    assert udp_receiver.wait(1) == [b"after the junk"]
    line = proc.wait_line("malformed messages skipped")
    assert "WARNING" in line and "garbage" in line
    assert stop(proc) == (1, 0, 2, 0)


def test_a_dead_udp_port_is_counted_and_forwarding_resumes_by_itself(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
) -> None:
    """1. Forward to a UDP port nobody listens on; push until ICMP refusals show.
    2. Start a receiver on that port; push until datagrams arrive again.
    3. Push 100 more.
    Result: the refusals were logged as a throttled warning, the stage kept
    running, and after the restart all 100 arrive in order.
    """
    reserve = UdpReceiver()
    port = reserve.port
    reserve.close()
    proc, endpoint = start_forwarder(FORWARD_HOST="127.0.0.1", FORWARD_PORT=str(port))
    push = pusher(endpoint)

    def refused() -> bool:
        push.send(event(b"into the void", 0))
        return "ECONNREFUSED" in proc.output

    wait_for(refused, 10.0, "a refusal warning")
    line = proc.wait_line("ECONNREFUSED")
    assert "WARNING" in line and "in all" in line and f"127.0.0.1:{port}" in line
    assert proc.popen.poll() is None

    receiver = UdpReceiver(port=port)
    try:

        def arrives() -> bool:
            push.send(event(b"probe", 0))
            return bool(receiver.datagrams)

        wait_for(arrives, 10.0, "forwarding to resume")
        payloads = [b"back %d" % seq for seq in range(100)]
        for seq, raw in enumerate(payloads):
            push.send(event(raw, seq))
        wait_for(lambda: b"back 99" in receiver.datagrams, 10.0, "the last one")
        got = [d for d in receiver.datagrams if d.startswith(b"back ")]
        assert got == payloads
    finally:
        receiver.close()
    _forwarded, dropped, _skipped, refusals = stop(proc)
    assert refusals >= 1 and dropped == 0


def test_an_unresolvable_name_drops_counted_datagrams_and_the_stage_keeps_running(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
) -> None:
    proc, endpoint = start_forwarder(
        FORWARD_HOST="alertik-forward-test.invalid",
        FORWARD_PORT="514",
        ALERTIK_FORWARD_RESOLVE_EVERY="0.05",
    )
    line = proc.wait_line("lookups of alertik-forward-test.invalid:514 failed")
    assert "WARNING" in line
    push = pusher(endpoint)
    push_and_mark(push, proc, [event(b"lost %d" % seq, seq) for seq in range(50)])
    assert "has no address" in proc.output
    assert proc.popen.poll() is None
    started = time.monotonic()
    assert stop(proc) == (0, 50, 1, 0)
    assert time.monotonic() - started < 5.0


def test_the_forwarder_needs_forward_host_and_forward_port(
    tmp_path: Path,
) -> None:
    for env, missing in (
        ({}, "FORWARD_HOST"),
        ({"FORWARD_HOST": "::1"}, "FORWARD_PORT"),
    ):
        proc = Proc(
            [sys.executable, "-m", "alertik.forwarder"],
            base_env(tmp_path, **env),
            tmp_path,
        )
        try:
            assert proc.popen.wait(10) == 2
        finally:
            proc.kill()
        assert missing in proc.output and "is not set" in proc.output


@pytest.mark.skipif(
    importlib.util.find_spec("alertik.cli") is None,
    reason="alertik/cli.py is not written yet",
)
def test_the_alertik_command_runs_the_forwarder_stage(
    spawn: Callable[..., Proc],
    tmp_path: Path,
    pusher: Callable[[str], zmq.Socket[bytes]],
    udp_receiver: UdpReceiver,
) -> None:
    env = base_env(
        tmp_path,
        ALERTIK_FORWARDER_ADDR="tcp://127.0.0.1:*",
        ALERTIK_FORWARDER_TAP="tcp://127.0.0.1:*",
        FORWARD_HOST="127.0.0.1",
        FORWARD_PORT=str(udp_receiver.port),
    )
    proc = spawn("forwarder", env=env)
    try:
        line = proc.wait_line("forwarder listening on")
        push = pusher(line.split("forwarder listening on ", 1)[1].split()[0])
        push.send(event(b"via the cli", 0))
        assert udp_receiver.wait(1) == [b"via the cli"]
        assert stop(proc)[:2] == (1, 0)
    finally:
        proc.kill()


# --- TCP ------------------------------------------------------------------


def test_tcp_forwarding_sends_octet_counted_frames_byte_identical_and_in_order(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
) -> None:
    receiver = TcpReceiver()
    try:
        proc, endpoint = start_forwarder(
            FORWARD_HOST="127.0.0.1",
            FORWARD_PORT=str(receiver.port),
            FORWARD_PROTOCOL="tcp",
        )
        push = pusher(endpoint)
        datagrams = mixed_datagrams(540)
        for seq, raw in enumerate(datagrams):
            push.send(event(raw, seq))
        non_empty = [d for d in datagrams if d]
        assert receiver.wait(len(non_empty)) == non_empty
        empties = len(datagrams) - len(non_empty)
        assert stop(proc) == (len(non_empty), empties, 0, 0)
        assert "an octet-counted frame cannot be empty" in proc.output
    finally:
        receiver.stop()


def test_a_tcp_receiver_that_restarts_gets_what_was_buffered_while_it_was_away(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
) -> None:
    """1. Forward 100 frames over TCP.
    2. The receiver closes its connection and stops listening; wait for the
       forwarder to notice.
    3. Push 100 more while nothing listens (connects are refused).
    4. The receiver listens again on the same port.
    Result: all 200 frames arrive, in order, none twice.
    """
    receiver = TcpReceiver()
    try:
        proc, endpoint = start_forwarder(
            FORWARD_HOST="127.0.0.1",
            FORWARD_PORT=str(receiver.port),
            FORWARD_PROTOCOL="tcp",
        )
        push = pusher(endpoint)
        first = [b"first %d" % seq for seq in range(100)]
        for seq, raw in enumerate(first):
            push.send(event(raw, seq))
        receiver.wait(100)
        receiver.stop()
        proc.wait_line("TCP connection to 127.0.0.1")
        second = [b"second %d" % seq for seq in range(100)]
        push_and_mark(push, proc, [event(raw, seq) for seq, raw in enumerate(second)])
        receiver.start()
        assert receiver.wait(200) == first + second
        assert receiver.connections == 2
        assert stop(proc) == (200, 0, 1, 0)
    finally:
        receiver.stop()


def test_a_tcp_receiver_restarting_mid_stream_gets_whole_frames_in_order(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
) -> None:
    """1. Push 5000 numbered events over TCP.
    2. After 500 frames the receiver drops the connection and its listener and
       listens again on the same port.
    Result: every frame that arrives is whole, the numbers only go up (no
    duplicates), the last one arrives, and forwarded + dropped covers all 5000;
    what the kernel held at the break is all that may be lost.
    """
    receiver = TcpReceiver(break_after=500)
    try:
        proc, endpoint = start_forwarder(
            FORWARD_HOST="127.0.0.1",
            FORWARD_PORT=str(receiver.port),
            FORWARD_PROTOCOL="tcp",
        )
        push = pusher(endpoint)
        for seq in range(5000):
            push.send(event(b"stream %05d" % seq, seq))
        wait_for(
            lambda: receiver.frames and receiver.frames[-1] == b"stream 04999",
            10.0,
            "the last frame",
        )
        numbers = [int(f.split()[1]) for f in receiver.frames]
        assert all(
            f == b"stream %05d" % n
            for f, n in zip(receiver.frames, numbers, strict=True)
        )
        assert numbers == sorted(set(numbers))
        assert receiver.connections == 2
        proc.wait_line("TCP connection to 127.0.0.1")
        forwarded, dropped, _, _ = stop(proc)
        assert forwarded + dropped == 5000 and dropped == 0
        assert len(numbers) <= forwarded
    finally:
        receiver.stop()


def test_a_full_tcp_backlog_drops_the_newest_and_logs_the_count(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
) -> None:
    """1. Forward over TCP with a backlog of 10 to a port that refuses connects.
    2. Push 25 events.
    3. Start listening on that port.
    Result: the first 10 arrive; 15 were dropped, logged with their count.
    """
    receiver = TcpReceiver(listen=False)  # bound, not listening: refuses
    try:
        proc, endpoint = start_forwarder(
            FORWARD_HOST="127.0.0.1",
            FORWARD_PORT=str(receiver.port),
            FORWARD_PROTOCOL="tcp",
            ALERTIK_FORWARD_BUFFER="10",
        )
        push = pusher(endpoint)
        push_and_mark(push, proc, [event(b"m%d" % seq, seq) for seq in range(25)])
        line = proc.wait_line("TCP backlog is full")
        assert "WARNING" in line and "(10 messages)" in line
        # The backlog fills while the first connect is being refused; under
        # load its log line can come after the warning.
        proc.wait_line("ECONNREFUSED")
        receiver.start()
        assert receiver.wait(10) == [b"m%d" % seq for seq in range(10)]
        forwarded, dropped, _, refused = stop(proc)
        assert (forwarded, dropped) == (10, 15) and refused >= 1
        assert "15 in all" in proc.output
    finally:
        receiver.stop()


def test_tcp_frames_still_waiting_when_the_drain_runs_out_are_counted_as_dropped(
    start_forwarder: Callable[..., tuple[Proc, str]],
    pusher: Callable[[str], zmq.Socket[bytes]],
) -> None:
    receiver = TcpReceiver(listen=False)
    try:
        proc, endpoint = start_forwarder(
            FORWARD_HOST="127.0.0.1",
            FORWARD_PORT=str(receiver.port),
            FORWARD_PROTOCOL="tcp",
            ALERTIK_DRAIN_SECONDS="0.3",
        )
        push = pusher(endpoint)
        push_and_mark(push, proc, [event(b"m%d" % seq, seq) for seq in range(7)])
        assert stop(proc)[:2] == (0, 7)
        assert "drain cut off: 7 frames" in proc.output
    finally:
        receiver.stop()


# --- re-resolution, driven in-process with an injected lookup ----------------


class FakeDns:
    """A lookup function whose answer the test changes."""

    def __init__(self, *answer: Address) -> None:
        self.answer = list(answer)

    def __call__(self) -> list[Address]:
        return list(self.answer)


def v4(port: int) -> Address:
    return Address(socket.AF_INET, ("127.0.0.1", port))


def pump(sender: UdpSender | TcpSender, timeout_ms: int = 10) -> None:
    """One turn of the stage loop for sender: poll what it watches, service it."""
    revents = 0
    watched = sender.watch()
    if watched is not None:
        poller = zmq.Poller()
        poller.register(watched[0], watched[1])
        revents = dict(poller.poll(timeout_ms)).get(watched[0], 0)
    sender.service(time.monotonic(), revents)


def pumping(
    sender: UdpSender | TcpSender, check: Callable[[], object]
) -> Callable[[], object]:
    """A wait_for predicate: one turn of pump(sender), then check()."""

    def predicate() -> object:
        pump(sender)
        return check()

    return predicate


def test_a_changed_resolver_answer_moves_udp_forwarding_to_the_new_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old, new = UdpReceiver(), UdpReceiver()
    dns = FakeDns(v4(old.port))
    sender = UdpSender(Target("syslog.test:514", dns, every=0.05))
    try:
        sender.target.wait_first(5.0, lambda: False)
        assert sender.send(b"to the old one")
        assert old.wait(1) == [b"to the old one"]
        dns.answer = [v4(new.port)]

        def moved() -> bool:
            pump(sender)
            sender.send(b"probe")
            return bool(new.datagrams)

        wait_for(moved, 5.0, "the new address")
        assert sender.send(b"to the new one")
        wait_for(lambda: b"to the new one" in new.datagrams, 5.0, "the last one")
        assert new.datagrams[-1] == b"to the new one"
        assert b"to the new one" not in old.datagrams
        assert f"now resolves to 127.0.0.1:{new.port}" in caplog.text
    finally:
        sender.close()
        old.close()
        new.close()


def test_a_refused_udp_address_makes_the_sender_try_the_next_one() -> None:
    """1. The name resolves to a dead port first and a live one second.
    2. Send until the live receiver gets something, then five more.
    Result: the refusal moved the sender on; from then on every datagram
    arrives, and none was dropped (the send that reported it was repeated).
    """
    dead = UdpReceiver()
    dead_port = dead.port
    dead.close()
    live = UdpReceiver()
    dns = FakeDns(v4(dead_port), v4(live.port))
    sender = UdpSender(Target("dual.test:514", dns, every=1.0))
    sent: list[bytes] = []

    def send() -> list[bytes]:
        """Send the next numbered datagram; what the live receiver has so far."""
        sent.append(b"d%d" % len(sent))
        sender.send(sent[-1])
        return live.datagrams

    try:
        sender.target.wait_first(5.0, lambda: False)
        wait_for(send, 5.0, "the live address")
        for _ in range(5):
            send()
        wait_for(lambda: sent[-1] in live.datagrams, 5.0, "the last datagram")
        got = live.datagrams
        assert got == sent[len(sent) - len(got) :]
        assert sender.refused >= 1 and sender.dropped == 0
    finally:
        sender.close()
        live.close()


def test_a_changed_resolver_answer_moves_the_tcp_connection_to_the_new_address() -> (
    None
):
    old, new = TcpReceiver(), TcpReceiver()
    dns = FakeDns(v4(old.port))
    sender = TcpSender(Target("syslog.test:514", dns, every=0.05), 100)
    try:
        sender.target.wait_first(5.0, lambda: False)
        sender.send(b"to the old one")
        wait_for(pumping(sender, lambda: old.frames), 5.0, "the old receiver")
        dns.answer = [v4(new.port)]
        wait_for(pumping(sender, lambda: new.connections), 5.0, "a new connection")
        sender.send(b"to the new one")
        wait_for(pumping(sender, lambda: new.frames), 5.0, "the new receiver")
        assert old.frames == [b"to the old one"]
        assert new.frames == [b"to the new one"]
    finally:
        sender.close()
        old.stop()
        new.stop()
