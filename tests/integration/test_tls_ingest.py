"""Syslog over TLS (and TCP) through real ingest and matcher processes.

What RouterOS does after an outage (our RouterOS notes): it keeps up to
1,000 entries while the server is unreachable, then sends them back to back
in one connection, CEF entries ending in ``cef-event-delimiter`` (``\\r\\n``
by default; some set it empty). Over TLS it speaks TLS 1.2 and checks the
server's certificate against the one imported, chain only. Every entry must
be archived and matched, with its CEF fields parsed, over TCP and over TLS,
with either delimiter. RFC 5424 senders (a relay, ``openssl s_client``)
work too; the certificate can be renewed with SIGHUP; hostile TLS clients
do not hold the router back.
"""

from __future__ import annotations

import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq

from alertik.common.tls import fingerprint
from tests.support import (
    Proc,
    base_env,
    endpoint_of,
    events_env,
    receive_alerts,
    send_udp,
    udp_port_of,
    wait_for,
)
from tests.tls_support import (
    Pair,
    client_hello,
    connect_tls,
    make_pair,
    routeros_context,
)

BURST = 1000  # RouterOS's buffer for remote actions while the server is away
RULE = r"msg=replay ([a-z]+) ([0-9]+) of 1000 "


def cef_entry(label: str, n: int) -> bytes:
    """One RouterOS CEF entry (a login, as RouterOS words it), numbered."""
    return (
        b"Nov 30 10:00:%02d MikroTik CEF:0|MikroTik|CHR|7.19.4 (stable)|10|"
        b"system,info,account|Low|dvchost=MikroTik dvc=192.0.2.1 "
        b"msg=replay %s %d of 1000 app=ssh duser=admin outcome=success "
        b"src=192.0.2.%d" % (n % 60, label.encode(), n, n % 250 + 1)
    )


def port_in(proc: Proc, kind: str) -> int:
    m = re.search(
        rf"{kind} listening on \S*:(\d+)", proc.wait_line(f"{kind} listening")
    )
    assert m
    return int(m.group(1))


@dataclass
class Pipeline:
    ingest: Proc
    matcher: Proc
    sink: zmq.Socket[bytes]
    pair: Pair
    log: Path
    udp: int
    tcp: int
    tls: int


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """matcher and ingest (UDP, TCP and TLS) with one regex rule; alerts go to
    a PULL socket standing in for notify."""
    tmp = tmp_path_factory.mktemp("tls-pipeline")
    pair = make_pair(tmp / "tls", "localhost", "127.0.0.1")
    with zmq.Context() as ctx:
        sink = ctx.socket(zmq.PULL)
        sink_port = sink.bind_to_random_port("tcp://127.0.0.1")
        env = base_env(
            tmp,
            ALERTIK_NOTIFY_ADDR=f"tcp://127.0.0.1:{sink_port}",
            ALERTIK_TCP_PORT="0",
            ALERTIK_TLS_PORT="0",
            ALERTIK_TLS_CERT=pair.cert,
            ALERTIK_TLS_KEY=pair.key,
            ALERTIK_LOG_MAX_BYTES="0",  # four bursts pass the default 1 MiB
            GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/unused",
            **events_env(
                ("Generic1", "regex", RULE, "@1 @2"),
                ("Generic1", "substr", "over tls", "relay says @{sender}"),
            ),
        )
        procs: list[Proc] = []
        try:
            matcher = Proc(
                [sys.executable, "-m", "alertik", "matcher"],
                {**env, "ALERTIK_MATCHER_ADDR": "tcp://127.0.0.1:*"},
                tmp,
            )
            procs.append(matcher)
            endpoint = endpoint_of(matcher, "matcher")
            ingest = Proc(
                [sys.executable, "-m", "alertik", "ingest"],
                {**env, "ALERTIK_MATCHER_ADDR": endpoint},
                tmp,
            )
            procs.append(ingest)
            yield Pipeline(
                ingest=ingest,
                matcher=matcher,
                sink=sink,
                pair=pair,
                log=tmp / "log.txt",
                udp=udp_port_of(ingest),
                tcp=port_in(ingest, "tcp"),
                tls=port_in(ingest, "tls"),
            )
        finally:
            for proc in procs:
                proc.kill()
            sink.close(linger=0)


def open_sender(p: Pipeline, transport: str) -> socket.socket:
    if transport == "tls":
        tls = connect_tls(p.tls, routeros_context(p.pair.cert))
        assert tls.version() == "TLSv1.2"
        return tls
    return socket.create_connection(("127.0.0.1", p.tcp), timeout=5)


def archived(p: Pipeline, label: str) -> list[str]:
    """The archive lines of one burst."""
    if not p.log.exists():
        return []
    needle = f"msg=replay {label} "
    return [line for line in p.log.read_text().splitlines() if needle in line]


@pytest.mark.parametrize("transport", ["tcp", "tls"])
@pytest.mark.parametrize("delimiter", [b"\r\n", b""], ids=["crlf", "empty"])
def test_a_replay_burst_of_1000_cef_entries_is_archived_and_matched_whole(
    pipeline: Pipeline, transport: str, delimiter: bytes
) -> None:
    """1. a RouterOS-like sender opens one connection (TLS 1.2 checking our
       certificate, or plain TCP) and sends 1,000 CEF entries in one write,
       each ending in the delimiter (or in nothing);
    2. it keeps the connection open, as RouterOS does;
    Result: 1,000 alerts, one per entry, in order, each with its CEF fields,
    and 1,000 archive lines; the last undelimited entry comes once the sender
    has been quiet for a moment."""
    label = f"{transport}{'crlf' if delimiter else 'empty'}"
    burst = b"".join(cef_entry(label, n) + delimiter for n in range(BURST))
    with open_sender(pipeline, transport) as sender:
        sender.sendall(burst)
        alerts = receive_alerts(pipeline.sink, BURST)
    texts = [a.text.split(", at: ")[0] for a in alerts]
    assert texts == [f"{label} {n}" for n in range(BURST)]
    assert all(a.sender == "127.0.0.1" for a in alerts)
    for n, alert in enumerate(alerts):
        fields = alert.fields
        assert fields is not None and fields.cef is not None
        assert fields.format == "cef"
        assert (fields.hostname, fields.topics) == (
            "MikroTik",
            ("system", "info", "account"),
        )
        assert fields.cef["msg"] == f"replay {label} {n} of 1000"
        assert fields.cef["src"] == f"192.0.2.{n % 250 + 1}"
    lines = wait_for(
        lambda: (found := archived(pipeline, label)) and len(found) >= BURST and found,
        10,
        f"{BURST} archive lines",
    )
    assert len(lines) == BURST
    for n, line in enumerate(lines):
        assert line.endswith(f" msg=replay {label} {n} of 1000 app=ssh duser=admin "
                             f"outcome=success src=192.0.2.{n % 250 + 1}")  # fmt: skip


def test_rfc5424_over_tls_from_openssl_s_client_is_matched_with_its_fields(
    pipeline: Pipeline,
) -> None:
    """logger --tcp style: RFC 5424 lines, LF-delimited, through s_client."""
    lines = [
        b"<14>1 2026-11-30T10:00:00.123Z relay1 sshd 42 ID7 - first over tls",
        b'<13>1 2026-11-30T10:00:01Z relay1 cron - - [ex@32473 a="1"] second over tls',
    ]
    with subprocess.Popen(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{pipeline.tls}",
            "-CAfile",
            pipeline.pair.cert,
            "-verify_return_error",
            "-quiet",
            "-no_ign_eof",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as client:
        try:
            client.communicate(b"\n".join(lines) + b"\n", timeout=10)
        finally:
            client.kill()
    assert client.returncode == 0
    alerts = receive_alerts(pipeline.sink, 2)
    assert [a.text.split(", at: ")[0] for a in alerts] == ["relay says 127.0.0.1"] * 2
    first, second = (a.fields for a in alerts)
    assert first is not None and second is not None
    assert (first.format, first.hostname, first.app, first.procid, first.msgid) == (
        "rfc5424",
        "relay1",
        "sshd",
        "42",
        "ID7",
    )
    assert first.message == "first over tls"
    assert second.structured_data == '[ex@32473 a="1"]'


def test_hostile_tls_clients_do_not_hold_the_router_or_udp_back(
    pipeline: Pipeline,
) -> None:
    """1. twenty clients connect to the TLS port and say nothing, one sends
       half a ClientHello, one sends plain syslog, one sends binary junk;
    2. the router then sends over TLS, and a datagram comes over UDP;
    Result: both become alerts at once; the junk senders were refused."""
    idle = [socket.create_connection(("127.0.0.1", pipeline.tls)) for _ in range(20)]
    try:
        half = socket.create_connection(("127.0.0.1", pipeline.tls))
        idle.append(half)
        half.sendall(client_hello()[:50])
        for junk in (b"<30>Oct  2 17:36:35 MikroTik plain\n", bytes(range(256))):
            with socket.create_connection(("127.0.0.1", pipeline.tls)) as s:
                s.sendall(junk)
                s.settimeout(5)
                try:
                    while s.recv(4096):
                        pass
                except ConnectionResetError:
                    pass
        with open_sender(pipeline, "tls") as router:
            router.sendall(cef_entry("hostile", 1) + b"\r\n")
            (alert,) = receive_alerts(pipeline.sink, 1)
        assert alert.text.startswith("hostile 1")
        send_udp(pipeline.udp, b"system,info msg=replay udp 2 of 1000 x")
        (alert,) = receive_alerts(pipeline.sink, 1)
        assert alert.text.startswith("udp 2")
    finally:
        for s in idle:
            s.close()
    pipeline.ingest.wait_line("tls handshakes failed")


# -- one ingest of its own: SIGHUP, start-up errors ------------------------------


def test_sighup_reloads_a_renewed_certificate_and_keeps_it_when_the_new_key_is_bad(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """1. ingest starts with pair A (made by alertik cert in ./tls);
    2. alertik cert --force makes pair B in its place, and ingest gets SIGHUP;
    3. the key file is then overwritten with junk, and ingest gets SIGHUP;
    Result: after 2 new clients get B (A no longer verifies); after 3 one
    error names ALERTIK_TLS_KEY and clients still get B."""
    first = make_pair(tmp_path / "tls", "localhost", "127.0.0.1")
    env = base_env(
        tmp_path,
        ALERTIK_TLS_PORT="0",
        ALERTIK_TLS_CERT=first.cert,
        ALERTIK_TLS_KEY=first.key,
    )
    ingest = spawn("ingest", env=env)
    port = port_in(ingest, "tls")
    old_fp = fingerprint(first.cert)
    assert old_fp in ingest.wait_line("tls certificate ")
    old_trust = tmp_path / "old.crt"
    old_trust.write_bytes(Path(first.cert).read_bytes())
    connect_tls(port, routeros_context(str(old_trust))).close()

    renewed = make_pair(tmp_path / "tls", "localhost", "127.0.0.1")
    assert renewed == first  # same files, new contents
    new_fp = fingerprint(renewed.cert)
    assert new_fp != old_fp
    ingest.popen.send_signal(signal.SIGHUP)
    ingest.wait_line(f"tls reloaded certificate {renewed.cert} (sha256 {new_fp})")
    connect_tls(port, routeros_context(renewed.cert)).close()
    with pytest.raises(ssl.SSLCertVerificationError):
        connect_tls(port, routeros_context(str(old_trust)))

    Path(renewed.key).write_text("junk\n")
    ingest.popen.send_signal(signal.SIGHUP)
    error = ingest.wait_line("kept the certificate in use")
    assert "ERROR" in error and "ALERTIK_TLS_KEY: " in error
    connect_tls(port, routeros_context(renewed.cert)).close()
    assert ingest.terminate() == 0
    errors = [line for line in ingest.output.splitlines() if " ERROR " in line]
    assert errors == [error]


def test_a_tls_port_in_use_stops_ingest_naming_the_variable(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    pair = make_pair(tmp_path / "tls", "localhost")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        env = base_env(
            tmp_path,
            ALERTIK_LOG_FILE="-",
            ALERTIK_TLS_PORT=str(busy.getsockname()[1]),
            ALERTIK_TLS_CERT=pair.cert,
            ALERTIK_TLS_KEY=pair.key,
        )
        proc = subprocess.run(
            [sys.executable, "-m", "alertik", "ingest"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2
    (error,) = [line for line in proc.stderr.splitlines() if "configuration" in line]
    assert "configuration error: ALERTIK_TLS_PORT: cannot listen on tls" in error
