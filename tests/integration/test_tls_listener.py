"""Integration tests for ingest.tls: a real TlsListener, real TLS clients.

The listener runs as the ingest stage runs it (selector fd in a zmq.Poller,
``handle_ready()`` when readable, ``tick()`` every turn) in a thread of its
own, or turn by turn from the test where a test counts what one turn does.
Clients are Python's ``ssl`` (a RouterOS-like TLS 1.2 client, a strict any-
version client), ``openssl s_client``, and raw sockets sending what a hostile
client would: nothing, half a ClientHello, bytes that are not TLS, a request
to renegotiate. Timeouts use a fake clock the tests move; nothing sleeps.
"""

from __future__ import annotations

import itertools
import logging
import queue
import select
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zmq

from alertik.common.config import IngestConfig
from alertik.common.tls import server_context
from alertik.ingest.allow import AllowList
from alertik.ingest.tcp import TICK_SECONDS
from alertik.ingest.tls import HANDSHAKE_SECONDS, HANDSHAKE_STEPS, TlsListener
from tests.support import wait_for
from tests.tls_support import (
    Pair,
    client_hello,
    connect_tls,
    make_client_ca,
    make_pair,
    routeros_context,
    strict_context,
)

WAIT = 5.0
CEF = (
    b"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|"
    b"system,error,critical|High|dvchost=MikroTik dvc=192.0.2.36 msg=login "
    b"failure for user guest from 192.0.2.17 via ssh app=ssh duser=guest"
)
RFC5424 = b"<14>1 2026-11-30T10:00:00.000Z relay1 app 42 ID7 - over tls"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    listener: TlsListener
    clock: FakeClock
    got: queue.Queue[tuple[bytes, str]] = field(default_factory=queue.Queue)
    sockets: list[socket.socket] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.listener.port

    def raw(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
        self.sockets.append(sock)
        return sock

    def tls(self, ctx: ssl.SSLContext, server_name: str | None = None) -> ssl.SSLSocket:
        sock = connect_tls(self.port, ctx, server_name=server_name)
        self.sockets.append(sock)
        return sock

    def receive(self, n: int) -> list[tuple[bytes, str]]:
        """The next n messages and their senders; fails after WAIT."""
        out: list[tuple[bytes, str]] = []
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
        return [raw for raw, _ in self.receive(n)]

    def later(self, seconds: float) -> None:
        """Move the fake clock on, past at least one tick."""
        self.clock.now += seconds + TICK_SECONDS


def closed_by_server(sock: socket.socket) -> bool:
    """Wait (socket timeout) for the peer to close; True on EOF or reset.
    What the server sent before (its handshake records) is read and ignored."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except (ConnectionResetError, ssl.SSLError):
        pass
    return True


def _run(h: Harness) -> None:
    poller = zmq.Poller()
    h.listener.register(poller)
    while not h.stop.is_set():
        if poller.poll(10):
            h.listener.handle_ready()
        h.listener.tick()
    h.listener.unregister(poller)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return make_pair(tmp_path_factory.mktemp("pair"), "localhost", "127.0.0.1")


@pytest.fixture
def start(pair: Pair) -> Iterator[Callable[..., Harness]]:
    running: list[Harness] = []

    def _start(
        context: ssl.SSLContext | None = None,
        allow: tuple[str, ...] = (),
        threaded: bool = True,
        max_connections: int = 1024,
    ) -> Harness:
        cfg = IngestConfig(
            bind="127.0.0.1",
            udp_port=0,
            tcp_port=None,
            allow_from=allow,
            max_message_bytes=4096,
            node_name="test",
            tcp_max_connections=max_connections,
            tcp_idle_seconds=600.0,
        )
        clock = FakeClock()
        got: queue.Queue[tuple[bytes, str]] = queue.Queue()

        def emit(raw: bytes, sender: str, port: int, truncated: bool) -> None:
            got.put((raw, sender))

        listener = TlsListener(
            "127.0.0.1",
            0,
            cfg,
            emit,
            AllowList(allow).allows,
            context or server_context(pair.cert, pair.key),
            clock=clock,
        )
        h = Harness(listener=listener, clock=clock, got=got)
        if threaded:
            h.thread = threading.Thread(target=_run, args=(h,), daemon=True)
            h.thread.start()
        running.append(h)
        return h

    yield _start
    for h in running:
        h.stop.set()
        if h.thread is not None:
            h.thread.join(WAIT)
        for sock in h.sockets:
            sock.close()
        h.listener.close()


# -- what a sender sees ------------------------------------------------------


def test_a_routeros_like_tls12_client_verifying_our_certificate_is_served(
    start: Callable[..., Harness], pair: Pair
) -> None:
    h = start()
    client = h.tls(routeros_context(pair.cert))
    assert client.version() == "TLSv1.2"
    client.sendall(CEF + b"\r\n" + CEF + b"\r\n")
    assert h.receive(2) == [(CEF, "127.0.0.1")] * 2
    assert h.listener.handshakes == 1


def test_a_strict_tls13_client_checking_the_host_name_is_served(
    start: Callable[..., Harness], pair: Pair
) -> None:
    h = start()
    for name in ("localhost", "127.0.0.1"):
        client = h.tls(strict_context(pair.cert), server_name=name)
        assert client.version() == "TLSv1.3"
        client.sendall(b"%d %s" % (len(RFC5424), RFC5424))  # RFC 5425 framing
        assert h.payloads(1) == [RFC5424]


def test_tls_older_than_1_2_is_refused(
    start: Callable[..., Harness], pair: Pair
) -> None:
    h = start()
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as it should be
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        h.tls(old)
    wait_for(lambda: h.listener.handshake_failed.total == 1, WAIT, "a failure")
    assert h.listener.handshakes == 0


def test_a_client_that_does_not_trust_our_certificate_is_named_in_a_warning(
    start: Callable[..., Harness], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="alertik.ingest.tls")
    h = start()
    other = make_pair(tmp_path / "other", "localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        h.tls(routeros_context(other.cert))
    wait_for(lambda: h.listener.connections == 0, WAIT, "the connection closed")
    assert h.got.empty()
    assert "from 127.0.0.1: TLSV1_ALERT_UNKNOWN_CA (the sender does not trust" in (
        caplog.text
    )


def test_the_allow_list_refuses_before_any_tls_work(
    start: Callable[..., Harness], pair: Pair
) -> None:
    h = start(allow=("192.0.2.0/24",))
    sock = h.raw()
    sock.sendall(client_hello())
    assert closed_by_server(sock)
    wait_for(lambda: h.listener.refused.total == 1, WAIT, "the refusal")
    assert (h.listener.handshakes, h.listener.handshake_failed.total) == (0, 0)


def test_a_new_certificate_serves_new_connections_and_open_ones_go_on(
    start: Callable[..., Harness], pair: Pair, tmp_path: Path
) -> None:
    """1. a client connects with the first certificate;
    2. the listener's context is replaced (what SIGHUP does);
    Result: a new client gets the new certificate (and fails to verify the old
    one), while the first client's connection still delivers."""
    h = start()
    first = h.tls(routeros_context(pair.cert))
    renewed = make_pair(tmp_path / "renewed", "localhost", "127.0.0.1")
    h.listener.context = server_context(renewed.cert, renewed.key)
    second = h.tls(routeros_context(renewed.cert))
    with pytest.raises(ssl.SSLCertVerificationError):
        h.tls(routeros_context(pair.cert))
    first.sendall(b"system,info old connection\n")
    second.sendall(b"system,info new connection\n")
    assert sorted(h.payloads(2)) == [
        b"system,info new connection",
        b"system,info old connection",
    ]


# -- client certificates (for relays; RouterOS never sends one) ---------------


def test_with_a_client_ca_only_clients_with_its_certificate_get_in(
    start: Callable[..., Harness],
    pair: Pair,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="alertik.ingest.tls")
    ca, client_pair = make_client_ca(tmp_path / "ca")
    h = start(context=server_context(pair.cert, pair.key, ca))
    without = routeros_context(pair.cert)
    # TLS 1.2 refuses in the handshake; TLS 1.3 after it, on the first read.
    with pytest.raises(ssl.SSLError):
        sock = h.tls(without)
        sock.sendall(b"system,info no certificate\n")
        sock.recv(1)
    wait_for(lambda: h.listener.handshake_failed.total == 1, WAIT, "a failure")
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE (ALERTIK_TLS_CLIENT_CA" in caplog.text
    with_cert = strict_context(pair.cert)
    with_cert.load_cert_chain(client_pair.cert, client_pair.key)
    client = h.tls(with_cert, server_name="localhost")
    client.sendall(b"system,info relay with a certificate\n")
    assert h.payloads(1) == [b"system,info relay with a certificate"]
    assert h.listener.handshakes == 1


# -- hostile clients -------------------------------------------------------------


@pytest.mark.parametrize(
    "sends",
    [b"", client_hello()[:40], client_hello()],
    ids=["nothing", "half a ClientHello", "a ClientHello and no more"],
)
def test_a_handshake_never_finished_is_closed_at_its_deadline_without_holding_others(
    start: Callable[..., Harness], pair: Pair, sends: bytes
) -> None:
    """1. a raw client connects and sends `sends`, then nothing more;
    2. a RouterOS-like client connects and delivers meanwhile;
    3. the clock moves past HANDSHAKE_SECONDS;
    Result: the stalled connection is closed and counted; the other stays."""
    h = start()
    stalled = h.raw()
    stalled.sendall(sends)
    wait_for(lambda: h.listener.connections == 1, WAIT, "the stalled connection")
    good = h.tls(routeros_context(pair.cert))
    good.sendall(CEF + b"\r\n")
    assert h.payloads(1) == [CEF]
    h.later(HANDSHAKE_SECONDS - 1)
    good.sendall(CEF + b"\r\n")
    assert h.payloads(1) == [CEF]
    assert h.listener.connections == 2
    h.later(1)
    assert closed_by_server(stalled)
    wait_for(lambda: h.listener.connections == 1, WAIT, "only the good one left")
    assert h.listener.handshake_timeouts == 1
    good.sendall(CEF + b"\r\n")
    assert h.payloads(1) == [CEF]


def test_stalled_handshakes_filling_the_cap_make_room_for_the_router(
    start: Callable[..., Harness], pair: Pair
) -> None:
    """1. with a cap of 8 connections, twenty raw clients connect and stall
       in their handshake (half a ClientHello each);
    2. a RouterOS-like client connects from the same address;
    Result: it gets in and delivers at once (a stalled handshake has completed
    no message, so it is what makes room), well before any deadline."""
    h = start(max_connections=8)
    hello = client_hello()[:40]
    for _ in range(20):
        h.raw().sendall(hello)
    wait_for(lambda: h.listener.accepted == 20, WAIT, "twenty accepted")
    assert h.listener.connections == 8
    router = h.tls(routeros_context(pair.cert))
    router.sendall(CEF + b"\r\n")
    assert h.payloads(1) == [CEF]
    assert h.listener.connections == 8
    assert h.listener.handshake_timeouts == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"<30>Oct  2 17:36:35 MikroTik system,info plain syslog on the TLS port\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        bytes(range(256)) * 4,
    ],
    ids=["plain syslog", "http", "binary"],
)
def test_bytes_that_are_not_tls_are_refused_at_once_with_a_warning(
    start: Callable[..., Harness],
    pair: Pair,
    caplog: pytest.LogCaptureFixture,
    garbage: bytes,
) -> None:
    caplog.set_level(logging.WARNING, logger="alertik.ingest.tls")
    h = start()
    sock = h.raw()
    sock.sendall(garbage)
    assert closed_by_server(sock)  # no clock moved: closed on the first read
    wait_for(lambda: h.listener.handshake_failed.total == 1, WAIT, "the failure")
    assert "tls handshakes failed" in caplog.text
    assert "from 127.0.0.1" in caplog.text
    if garbage.startswith(b"<30>"):
        assert "remote-protocol=tcp" in caplog.text
    assert h.got.empty()
    good = h.tls(routeros_context(pair.cert))
    good.sendall(CEF + b"\r\n")
    assert h.payloads(1) == [CEF]


def test_a_renegotiation_request_is_refused_and_ends_the_connection(
    start: Callable[..., Harness], pair: Pair
) -> None:
    """1. openssl s_client (TLS 1.2) sends one line, then asks to renegotiate
       ("R"), then sends another line;
    Result: the first line arrives; the server answers no_renegotiation, the
    connection ends, the second line never arrives and no second handshake
    was made."""
    h = start()
    with subprocess.Popen(
        [
            *("openssl", "s_client", "-connect", f"127.0.0.1:{h.port}", "-tls1_2"),
            # Not -quiet: it would also turn off the "R" command.
            *("-CAfile", pair.cert, "-verify_return_error"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as client:
        assert client.stdin is not None and client.stdout is not None
        try:
            client.stdin.write(b"<14>1 - h app - - - before renegotiation\n")
            client.stdin.flush()
            assert h.payloads(1) == [b"<14>1 - h app - - - before renegotiation"]
            client.stdin.write(b"R\n")
            client.stdin.flush()
            wait_for(lambda: h.listener.connections == 0, WAIT, "the end")
            try:
                client.stdin.write(b"<14>1 - h app - - - after\n")
                client.stdin.close()
            except BrokenPipeError:
                pass
            out = client.stdout.read().decode("utf-8", "replace")
        finally:
            client.kill()
    assert "no renegotiation" in out
    assert h.got.empty()
    assert h.listener.handshakes == 1


def test_a_storm_of_client_hellos_is_answered_a_few_per_turn(
    start: Callable[..., Harness],
) -> None:
    """1. thirty raw clients connect and are accepted;
    2. each sends a full ClientHello at once;
    3. the test runs the listener's turns itself;
    Result: each turn answers at most HANDSHAKE_STEPS of them (the others wait
    in the kernel for the next turn), and all are answered in the end."""
    h = start(threaded=False)
    clients = [h.raw() for _ in range(30)]
    wait_for(
        lambda: h.listener.handle_ready() >= 0 and h.listener.connections == 30,
        WAIT,
        "thirty connections",
    )
    hello = client_hello()
    for sock in clients:
        sock.sendall(hello)

    def answered() -> int:
        readable, _, _ = select.select(clients, [], [], 0)
        return len(readable)

    seen = [answered()]
    while seen[-1] < len(clients) and len(seen) < 20:
        h.listener.handle_ready()
        seen.append(answered())
    assert seen[0] == 0
    assert seen[1] == HANDSHAKE_STEPS
    assert all(b - a <= HANDSHAKE_STEPS for a, b in itertools.pairwise(seen))
    assert seen[-1] == len(clients)
