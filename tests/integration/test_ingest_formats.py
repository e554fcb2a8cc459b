"""UDP and TCP feed one pipeline; every RouterOS format matches on raw text."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import zmq

from tests.support import (
    Proc,
    base_env,
    endpoint_of,
    events_env,
    receive_alerts,
    send_udp,
    udp_port_of,
)

# The same login failure as RouterOS sends it in each remote-log-format
# (RouterOS 7.25beta5 examples from MikroTik's Log manual page).
DEFAULT = b"system,error,critical login failure for user guest from 192.0.2.17 via ssh"
SYSLOG = (
    b"<27>Oct  2 17:36:35 MikroTik login failure for user guest from 192.0.2.17 via ssh"
)
CEF = (
    b"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|system,error,"
    b"critical|High|dvchost=MikroTik dvc=192.0.2.36 msg=login failure for user "
    b"guest from 192.0.2.17 via ssh app=ssh duser=guest outcome=failure "
    b"src=192.0.2.17"
)


def test_every_format_over_udp_and_tcp_matches_alertik_rules_on_raw_text(
    tmp_path: Path, spawn: Callable[..., Proc], sink: tuple[zmq.Socket[bytes], str]
) -> None:
    """1. start matcher and an ingest with both UDP and TCP listeners;
    2. send the login failure in default, syslog and CEF format over UDP, over
       TCP with CRLF framing (as RouterOS sends CEF) and octet counting;
    Result: one alert per message with the same text, and each alert carries
    the fields parsed from its header."""
    sock, notify_addr = sink
    env = base_env(
        tmp_path,
        ALERTIK_NOTIFY_ADDR=notify_addr,
        ALERTIK_TCP_PORT="0",
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/unused",
        **events_env(
            (
                "Generic1",
                "regex",
                r"login failure for user ([a-z]+) from ([0-9.]+) via ssh",
                "@1 from @2 over @{node}",
            )
        ),
    )
    matcher = spawn("matcher", env={**env, "ALERTIK_MATCHER_ADDR": "tcp://127.0.0.1:*"})
    endpoint = endpoint_of(matcher, "matcher")
    ingest = spawn("ingest", env={**env, "ALERTIK_MATCHER_ADDR": endpoint})
    udp_port = udp_port_of(ingest)
    m = re.search(r"tcp listening on \S*:(\d+)", ingest.wait_line("tcp listening on"))
    assert m
    tcp_port = int(m.group(1))

    send_udp(udp_port, DEFAULT, SYSLOG, CEF)
    alerts = receive_alerts(sock, 3)
    with socket.create_connection(("127.0.0.1", tcp_port)) as crlf:
        crlf.sendall(b"\r\n".join((DEFAULT, SYSLOG, CEF)) + b"\r\n")
        alerts += receive_alerts(sock, 3)
    with socket.create_connection(("127.0.0.1", tcp_port)) as octets:
        octets.sendall(b"".join(b"%d %s" % (len(m), m) for m in (DEFAULT, SYSLOG, CEF)))
        alerts += receive_alerts(sock, 3)

    assert {a.text.split(", at: ")[0] for a in alerts} == {
        "guest from 192.0.2.17 over test-node"
    }
    fields = [a.fields for a in alerts]
    assert all(f is not None for f in fields)
    assert [f.format for f in fields if f] == ["default", "rfc3164", "cef"] * 3
    syslog = fields[1]
    assert syslog and syslog.hostname == "MikroTik" and syslog.severity == 3
    cef = fields[2]
    assert cef and cef.cef and cef.cef["duser"] == "guest"
    assert ingest.terminate() == 0
    assert "stopped: received=9 " in ingest.output
    assert matcher.terminate() == 0


def test_senders_outside_the_allow_list_are_dropped_and_counted(
    tmp_path: Path, spawn: Callable[..., Proc], sink: tuple[zmq.Socket[bytes], str]
) -> None:
    sock, notify_addr = sink
    env = base_env(
        tmp_path,
        ALERTIK_NOTIFY_ADDR=notify_addr,
        ALERTIK_ALLOW_FROM="192.0.2.0/24, 127.0.0.2",
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/unused",
        ALERTIK_BIND="0.0.0.0",
        **events_env(("Generic1", "substr", "ping", "pong from @{sender}")),
    )
    matcher = spawn("matcher", env={**env, "ALERTIK_MATCHER_ADDR": "tcp://127.0.0.1:*"})
    endpoint = endpoint_of(matcher, "matcher")
    ingest = spawn("ingest", env={**env, "ALERTIK_MATCHER_ADDR": endpoint})
    port = udp_port_of(ingest)
    send_udp(port, b"ping from a stranger", host="127.0.0.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.2", 0))
        s.sendto(b"ping from a friend", ("127.0.0.1", port))
    (alert,) = receive_alerts(sock, 1)
    assert alert.text.startswith("pong from 127.0.0.2, at: ")
    assert ingest.terminate() == 0
    assert "refused=1" in ingest.output
