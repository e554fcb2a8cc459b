"""Integration tests for ingest.tcp: a real TcpListener with real client sockets.

The listener runs as the ingest stage will run it: its selector fd in a
zmq.Poller, ``handle_ready()`` when that fd is readable, ``tick()`` every turn,
in a thread of its own. Clients connect over loopback. Time for timeouts comes
from a fake clock the tests move forward, so nothing sleeps; every wait polls a
condition against a deadline.

Framing on the wire follows RFC 6587 (octet counting, or LF / CRLF / NUL
trailers). RouterOS CEF over TCP ends each event with ``cef-event-delimiter``,
``\\r\\n`` by default: the option "helps remote syslog to distinguish between
individual events within a sent batch" (MikroTik manual, Log page,
https://manual.mikrotik.com/docs/Diagnostics,%20monitoring%20and%20troubleshooting/log/).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import zmq

from alertik.common.config import IngestConfig
from alertik.ingest.allow import AllowList
from alertik.ingest.framing import HEADER_SPAN
from alertik.ingest.tcp import (
    FIRST_QUIET_SECONDS,
    TAIL_QUIET_SECONDS,
    TICK_SECONDS,
    TcpListener,
)
from tests.support import wait_for

MESSAGE = b"login failure for user guest from 192.168.88.17 via ssh"
SYSLOG = b"<27>Oct  2 17:36:35 MikroTik " + MESSAGE
CEF = (
    b"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|"
    b"system,error,critical|High|dvchost=MikroTik dvc=192.168.88.36 "
    b"msg=" + MESSAGE + b" app=ssh duser=guest outcome=failure src=192.168.88.17"
)
DEFAULT = b"system,error,critical " + MESSAGE

WAIT = 5.0  # seconds any single expected event may take before a test fails


def wait_for_what(
    predicate: Callable[[], Any], what: str, timeout: float = WAIT
) -> Any:
    """wait_for with this file's argument order and default deadline."""
    return wait_for(predicate, timeout, what)


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Received:
    raw: bytes
    sender: str
    sender_port: int
    truncated: bool


@dataclass
class Harness:
    """A running listener, what it emitted, and the clients a test opened."""

    listener: TcpListener
    clock: FakeClock
    got: queue.Queue[Received] = field(default_factory=queue.Queue)
    clients: list[socket.socket] = field(default_factory=list)
    max_buffered: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    turns: int = 0  # loop turns of the listener's thread

    @property
    def port(self) -> int:
        return self.listener.port

    def connect(self, host: str = "127.0.0.1", source: str = "") -> socket.socket:
        """A client connected to the listener, from source if given."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        self.clients.append(sock)
        if source:
            sock.bind((source, 0))
        sock.settimeout(WAIT)
        sock.connect((host, self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def receive(self, n: int = 1) -> list[Received]:
        out: list[Received] = []
        deadline = time.monotonic() + WAIT
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"received {len(out)} of {n} messages within {WAIT}s")
            try:
                out.append(self.got.get(timeout=left))
            except queue.Empty:
                continue
        return out

    def payloads(self, n: int) -> list[bytes]:
        return [r.raw for r in self.receive(n)]

    def settle(self) -> None:
        """Wait until the listener's thread has gone round twice: whatever the
        clock now allows has been done."""
        start = self.turns
        wait_for_what(lambda: self.turns >= start + 2, "two turns of the loop")

    def quiet_for(self, seconds: float) -> None:
        """Move the fake clock on, past at least one tick of the listener."""
        self.clock.advance(seconds + TICK_SECONDS)


def closed_by_server(sock: socket.socket) -> bool:
    """Wait (socket timeout) for the peer to close; True on EOF or reset."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _run(h: Harness) -> None:
    poller = zmq.Poller()
    h.listener.register(poller)
    while not h.stop.is_set():
        if poller.poll(10):
            h.listener.handle_ready()
        h.max_buffered = max(h.max_buffered, h.listener.buffered)
        h.listener.tick()
        h.turns += 1
    h.listener.unregister(poller)


@pytest.fixture
def start() -> Iterator[Callable[..., Harness]]:
    """Start listeners with chosen settings; stop and close them afterwards."""
    running: list[Harness] = []

    def _start(
        bind: str = "127.0.0.1",
        allow: tuple[str, ...] = (),
        max_message_bytes: int = 2048,
        tcp_max_connections: int = 1024,
        tcp_idle_seconds: float = 600.0,
        tcp_max_per_source: int = 32,
    ) -> Harness:
        cfg = IngestConfig(
            bind=bind,
            udp_port=0,
            tcp_port=0,
            allow_from=allow,
            max_message_bytes=max_message_bytes,
            node_name="test",
            tcp_max_connections=tcp_max_connections,
            tcp_idle_seconds=tcp_idle_seconds,
            tcp_max_per_source=tcp_max_per_source,
        )
        clock = FakeClock()
        got: queue.Queue[Received] = queue.Queue()

        def emit(raw: bytes, sender: str, port: int, truncated: bool) -> None:
            got.put(Received(raw, sender, port, truncated))

        listener = TcpListener(bind, 0, cfg, emit, AllowList(allow).allows, clock=clock)
        h = Harness(listener=listener, clock=clock, got=got)
        h.thread = threading.Thread(target=_run, args=(h,), daemon=True)
        h.thread.start()
        running.append(h)
        return h

    yield _start
    for h in running:
        h.stop.set()
        if h.thread is not None:
            h.thread.join(WAIT)
        for sock in h.clients:
            sock.close()
        h.listener.close()


def ipv6_loopback() -> bool:
    """True if ::1 can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not ipv6_loopback(), reason="no IPv6 loopback (::1) on this host"
)


# -- framings --------------------------------------------------------------


def test_the_listener_reports_the_real_port_when_asked_for_port_zero(
    start: Callable[..., Harness],
) -> None:
    h = start()
    assert h.listener.address == ("127.0.0.1", h.port)
    assert h.port != 0


def test_octet_counted_messages_arrive_one_by_one_with_the_sender(
    start: Callable[..., Harness],
) -> None:
    h = start()
    client = h.connect()
    client.sendall(b"%d %s%d %s" % (len(SYSLOG), SYSLOG, len(CEF), CEF))
    first, second = h.receive(2)
    assert (first.raw, second.raw) == (SYSLOG, CEF)
    assert first.sender == "127.0.0.1"
    assert first.sender_port == client.getsockname()[1]
    assert not first.truncated


def test_lf_crlf_and_nul_delimited_messages_arrive_without_their_trailers(
    start: Callable[..., Harness],
) -> None:
    h = start()
    lf, crlf, nul = h.connect(), h.connect(), h.connect()
    lf.sendall(SYSLOG + b"\n" + DEFAULT + b"\n")
    assert h.payloads(2) == [SYSLOG, DEFAULT]
    crlf.sendall(CEF + b"\r\n" + CEF + b"\r\n")  # cef-event-delimiter default
    assert h.payloads(2) == [CEF, CEF]
    nul.sendall(SYSLOG + b"\x00")
    assert h.payloads(1) == [SYSLOG]


def test_messages_split_across_several_sends_arrive_whole(
    start: Callable[..., Harness],
) -> None:
    """1. Send half an octet-counted frame and wait until the listener holds it.
    2. Send the rest plus half of the next frame, then the remainder.
    Result: exactly two whole messages.
    """
    h = start()
    client = h.connect()
    stream = b"%d %s%d %s" % (len(SYSLOG), SYSLOG, len(CEF), CEF)
    cuts = [0, 30, len(SYSLOG) + 10, len(stream)]
    for a, b in itertools.pairwise(cuts):
        client.sendall(stream[a:b])
        if b < len(stream):
            wait_for_what(lambda: h.listener.buffered > 0, "partial frame held")
    assert h.payloads(2) == [SYSLOG, CEF]
    assert h.got.empty()


def test_a_slowloris_client_sending_one_byte_at_a_time_costs_only_its_bytes(
    start: Callable[..., Harness],
) -> None:
    """1. A client sends a syslog line one byte per TCP segment.
    2. After each byte, wait until the listener holds exactly that many bytes.
    3. Meanwhile a second client's message goes straight through.
    Result: the slow line arrives whole once its LF does.
    """
    h = start()
    slow, fast = h.connect(), h.connect()
    for held, byte in enumerate(SYSLOG[:40], start=1):
        slow.sendall(bytes([byte]))

        def arrived(held: int = held) -> bool:
            return h.listener.buffered == held

        wait_for_what(arrived, f"byte {held} held")
    fast.sendall(DEFAULT + b"\n")
    assert h.payloads(1) == [DEFAULT]
    for byte in SYSLOG[40:] + b"\n":
        slow.sendall(bytes([byte]))
    assert h.payloads(1) == [SYSLOG]
    assert h.max_buffered <= len(SYSLOG) + 1
    assert h.listener.buffered == 0


def test_two_hundred_concurrent_connections_each_deliver_their_message(
    start: Callable[..., Harness],
) -> None:
    h = start(tcp_max_per_source=200)
    clients = [h.connect() for _ in range(200)]
    wait_for_what(lambda: h.listener.connections == 200, "200 connections accepted")
    for i, client in enumerate(clients):
        client.sendall(b"system,info message %d\n" % i)
    got = h.receive(200)
    assert sorted(r.raw for r in got) == sorted(
        b"system,info message %d" % i for i in range(200)
    )
    assert {r.sender for r in got} == {"127.0.0.1"}
    assert len({r.sender_port for r in got}) == 200


def test_a_five_megabyte_line_is_truncated_to_the_limit_in_bounded_memory(
    start: Callable[..., Harness],
) -> None:
    limit = 4096
    h = start(max_message_bytes=limit)
    client = h.connect()
    line = b"<27>Oct  2 17:36:35 MikroTik " + b"\xc3\xa9" * (5 * 1024 * 1024 // 2)
    client.sendall(line + b"\n" + SYSLOG + b"\n")
    big, after = h.receive(2)
    assert big.truncated
    assert len(big.raw) <= limit
    assert line.startswith(big.raw)
    big.raw.decode("utf-8")  # cut at a character boundary
    assert (after.raw, after.truncated) == (SYSLOG, False)
    # Only the framer's bounded buffer was ever held, never the 5 MB line.
    assert h.max_buffered <= limit + 1 + HEADER_SPAN
    assert h.listener.truncated == 1


def test_an_undelimited_default_entry_is_emitted_once_the_client_goes_quiet(
    start: Callable[..., Harness],
) -> None:
    """1. a new connection sends a RouterOS default entry without a delimiter;
    2. it is quiet for 1 s, then for FIRST_QUIET_SECONDS;
    3. it sends two more entries, each followed by 1 s of quiet.
    Result: the first entry is emitted only after the longer first wait (it
    might have been a first message still arriving); once the connection has
    shown it sends no delimiters, 1 s of quiet ends each entry."""
    h = start()
    client = h.connect()
    client.sendall(DEFAULT)  # RouterOS default format over TCP: no delimiter
    wait_for_what(lambda: h.listener.buffered == len(DEFAULT), "entry held")
    h.quiet_for(TAIL_QUIET_SECONDS)
    h.settle()
    assert h.got.empty()
    h.quiet_for(FIRST_QUIET_SECONDS - TAIL_QUIET_SECONDS)
    assert h.payloads(1) == [DEFAULT]
    for _ in range(2):
        client.sendall(DEFAULT)
        wait_for_what(lambda: h.listener.buffered == len(DEFAULT), "entry held")
        h.quiet_for(TAIL_QUIET_SECONDS)
        assert h.payloads(1) == [DEFAULT]


def test_a_pause_never_cuts_a_message_on_a_connection_that_delimits_or_counts(
    start: Callable[..., Harness],
) -> None:
    """A message whose second half comes long after the first (a lost segment
    sent again) arrives whole on a new connection, on one that has used a
    delimiter, and on an octet-counted one (even if the pause splits its
    count)."""
    h = start()
    for first, rest, whole in [
        (b"first half ", b"second half\r\n", b"first half second half"),
        (b"one\nfirst half ", b"second half\n", b"first half second half"),
        (b"2", b"3 octet-counted message.\n", b"octet-counted message.\n"),
        (b"19 one message", b" and one", b"one message and one"),
    ]:
        client = h.connect()
        client.sendall(first)
        if first.startswith(b"one\n"):
            assert h.payloads(1) == [b"one"]
        wait_for_what(lambda: h.listener.buffered > 0, "first half held")
        h.quiet_for(FIRST_QUIET_SECONDS - TICK_SECONDS - 0.01)
        h.settle()
        assert h.got.empty()
        client.sendall(rest)
        assert h.payloads(1) == [whole]
        client.close()


def test_back_to_back_syslog_entries_without_delimiters_are_cut_apart(
    start: Callable[..., Harness],
) -> None:
    h = start()
    client = h.connect()
    client.sendall(SYSLOG + SYSLOG + SYSLOG)
    assert h.payloads(2) == [SYSLOG, SYSLOG]
    client.close()  # the last one is complete once the stream ends
    assert h.payloads(1) == [SYSLOG]


def test_a_final_unterminated_message_is_emitted_when_the_client_closes(
    start: Callable[..., Harness],
) -> None:
    h = start()
    client = h.connect()
    client.sendall(b"first\nlast without newline")
    assert h.payloads(1) == [b"first"]
    client.shutdown(socket.SHUT_WR)
    assert h.payloads(1) == [b"last without newline"]
    wait_for_what(lambda: h.listener.connections == 0, "connection closed")


# -- limits ----------------------------------------------------------------


def test_an_idle_connection_is_closed_after_the_idle_timeout(
    start: Callable[..., Harness],
) -> None:
    h = start(tcp_idle_seconds=30.0)
    idle, busy = h.connect(), h.connect()
    idle.sendall(b"hello\n")
    busy.sendall(b"busy\n")
    assert sorted(h.payloads(2)) == [b"busy", b"hello"]
    h.clock.advance(20.0)
    busy.sendall(b"still here\n")
    assert h.payloads(1) == [b"still here"]
    h.quiet_for(11.0)  # idle: 31 s silent; busy: 11 s
    assert closed_by_server(idle)
    wait_for_what(lambda: h.listener.connections == 1, "only the busy one left")
    busy.sendall(b"and again\n")
    assert h.payloads(1) == [b"and again"]
    assert h.listener.idle_closed == 1


def test_at_the_cap_a_new_connection_replaces_the_idlest_of_the_busiest_sender(
    start: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    """1. the cap is 4: one sender holds 3 silent connections, a router 1;
    2. a third sender connects.
    Result: the silent sender's oldest connection is closed to let it in;
    the router and the newcomer are both served."""
    caplog.set_level(logging.WARNING, logger="alertik.ingest.tcp")
    h = start(tcp_max_connections=4)
    hog = [h.connect(source="127.0.0.3") for _ in range(3)]
    router = h.connect(source="127.0.0.2")
    router.sendall(b"router up\n")
    assert h.payloads(1) == [b"router up"]
    wait_for_what(lambda: h.listener.connections == 4, "4 connections")
    newcomer = h.connect(source="127.0.0.4")
    newcomer.sendall(b"newcomer\n")
    assert h.payloads(1) == [b"newcomer"]
    assert closed_by_server(hog[0])
    router.sendall(b"still served\n")
    assert h.payloads(1) == [b"still served"]
    assert h.listener.connections == 4
    assert h.listener.over_cap.total == 1
    wait_for_what(lambda: "at the cap of 4" in caplog.text, "the log line")


def test_a_sender_over_its_per_source_bound_loses_its_own_idlest_connection(
    start: Callable[..., Harness],
) -> None:
    h = start(tcp_max_per_source=2)
    first, second = h.connect(), h.connect()
    wait_for_what(lambda: h.listener.connections == 2, "2 connections")
    h.clock.advance(1.0)
    first.sendall(b"first is busy\n")  # second is now the idlest
    assert h.payloads(1) == [b"first is busy"]
    third = h.connect()
    third.sendall(b"third\n")
    assert h.payloads(1) == [b"third"]
    assert closed_by_server(second)
    first.sendall(b"first again\n")
    assert h.payloads(1) == [b"first again"]
    assert h.listener.over_source.total == 1
    assert h.listener.connections == 2


def test_bytes_that_never_finish_a_message_do_not_keep_a_connection_open(
    start: Callable[..., Harness],
) -> None:
    h = start(tcp_idle_seconds=30.0)
    drip = h.connect()
    drip.sendall(b"hello\n")  # a delimited connection: pauses never end a message
    assert h.payloads(1) == [b"hello"]
    # Then a byte every 10 s, never a delimiter: each is read, and 30 s after
    # the last message the connection is closed all the same. (A fourth byte,
    # as this test once sent, came after the close and raced with it.)
    for sent in range(1, 4):
        drip.sendall(b"x")

        def read(n: int = sent) -> bool:
            return h.listener.buffered == n

        wait_for_what(read, f"byte {sent} read")
        h.quiet_for(10.0)
    assert closed_by_server(drip)
    assert h.listener.idle_closed == 1


def test_the_allow_list_refuses_an_ipv4_sender_outside_it(
    start: Callable[..., Harness],
) -> None:
    refusing = start(allow=("192.0.2.0/24",))
    client = refusing.connect()
    assert closed_by_server(client)
    wait_for_what(lambda: refusing.listener.refused.total == 1, "refusal counted")
    accepting = start(allow=("127.0.0.0/8",))
    accepting.connect().sendall(b"allowed\n")
    assert accepting.payloads(1) == [b"allowed"]


@needs_ipv6
def test_the_allow_list_works_over_ipv6_loopback(
    start: Callable[..., Harness],
) -> None:
    refusing = start(bind="::1", allow=("127.0.0.1",))
    assert closed_by_server(refusing.connect("::1"))
    accepting = start(bind="::1", allow=("::1/128",))
    accepting.connect("::1").sendall(b"over ipv6\n")
    (got,) = accepting.receive(1)
    assert (got.raw, got.sender) == (b"over ipv6", "::1")


@needs_ipv6
def test_a_dual_stack_listener_shows_ipv4_senders_as_plain_ipv4(
    start: Callable[..., Harness],
) -> None:
    h = start(bind="::", allow=("127.0.0.1", "::1"))
    h.connect("127.0.0.1").sendall(b"via ipv4\n")
    (v4,) = h.receive(1)
    h.connect("::1").sendall(b"via ipv6\n")
    (v6,) = h.receive(1)
    assert (v4.raw, v4.sender) == (b"via ipv4", "127.0.0.1")
    assert (v6.raw, v6.sender) == (b"via ipv6", "::1")


def test_one_flooding_client_does_not_starve_another(
    start: Callable[..., Harness],
) -> None:
    """1. A client floods 8 MB of short lines in a thread.
    2. A second client sends one line while the flood is still being read.
    Result: the second line arrives before the flood has been fully read.
    """
    h = start()
    flood, other = h.connect(), h.connect()
    lines = 200_000
    payload = b"system,info flood line\n" * lines

    def send_flood() -> None:
        # The test closes the socket when it is done.
        with contextlib.suppress(OSError):
            flood.sendall(payload)

    sender = threading.Thread(target=send_flood, daemon=True)
    sender.start()
    wait_for_what(lambda: h.got.qsize() > 100, "the flood to be flowing")
    other.sendall(b"system,info other\n")
    seen = 0
    while True:
        (item,) = h.receive(1)
        seen += 1
        if item.raw == b"system,info other":
            break
    assert seen < lines
    flood.close()
    sender.join(WAIT)


def test_close_emits_held_messages_and_closes_every_client(
    start: Callable[..., Harness],
) -> None:
    h = start()
    client = h.connect()
    client.sendall(b"held without newline")
    wait_for_what(lambda: h.listener.buffered > 0, "bytes held")
    h.stop.set()
    assert h.thread is not None
    h.thread.join(WAIT)
    h.listener.close()
    assert h.payloads(1) == [b"held without newline"]
    assert closed_by_server(client)
    assert h.listener.handle_ready() == 0  # closing twice or after is harmless
    h.listener.close()
