"""ingest and matcher as real processes: UDP in, alerts out, the log archive."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

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


def start_pipeline(
    spawn: Callable[..., Proc], env: dict[str, str]
) -> tuple[Proc, Proc, int]:
    matcher = spawn("matcher", env={**env, "ALERTIK_MATCHER_ADDR": "tcp://127.0.0.1:*"})
    endpoint = endpoint_of(matcher, "matcher")
    ingest = spawn("ingest", env={**env, "ALERTIK_MATCHER_ADDR": endpoint})
    return ingest, matcher, udp_port_of(ingest)


def test_udp_lines_become_alerts_and_every_line_is_archived(
    tmp_path: Path, spawn: Callable[..., Proc], sink: tuple[zmq.Socket[bytes], str]
) -> None:
    """1. start matcher and ingest with a substr and a regex event;
    2. send four datagrams, two of which match;
    3. read the alerts where notify would.
    Result: the texts are alertik's, every line is in the archive, and both
    stages stop cleanly on SIGTERM."""
    sock, notify_addr = sink
    env = base_env(
        tmp_path,
        ALERTIK_NOTIFY_ADDR=notify_addr,
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/unused",
        **events_env(
            ("Generic1", "substr", "login failure", "Failed login"),
            ("Generic1", "regex", r"link up \(speed (\d+Mbps)", "Link up at @1"),
        ),
    )
    ingest, matcher, port = start_pipeline(spawn, env)
    lines = [
        b"system,error,critical login failure for user admin from 192.0.2.1 via ssh",
        b"interface,info ether1 link up (speed 100Mbps, full duplex)",
        b"dhcp,info dhcp-client on ether1 got IP address 192.0.2.7",
        b'caf\xe9 "quoted" back\\slash',
    ]
    send_udp(port, *lines)
    alerts = receive_alerts(sock, 2)
    assert [a.text.split(", at: ")[0] for a in alerts] == [
        "Failed login",
        "Link up at 100Mbps",
    ]
    assert all(a.sender == "127.0.0.1" and a.node == "test-node" for a in alerts)
    assert alerts[0].fields is not None
    assert alerts[0].fields.format == "default"
    assert alerts[0].fields.topics == ("system", "error", "critical")
    assert [a.rule for a in alerts] == ["EVENT0", "EVENT1"]
    assert len({a.id for a in alerts}) == 2
    log = tmp_path / "log.txt"
    wait_for(lambda: log.exists() and log.read_text().count("\n") >= 6, what="archive")
    text = log.read_text()
    for line in lines:
        assert "127.0.0.1 " + line.decode("utf-8", "replace") in text
    assert "EVENT1 matched, sending to Generic1" in text
    assert ingest.terminate() == 0
    assert matcher.terminate() == 0
    assert "stopped: received=4" in ingest.output
    assert "stopped: handled=4 alerts=2" in matcher.output


def test_ingest_listens_on_ipv6_and_ipv4_when_bound_to_the_wildcard(
    tmp_path: Path, spawn: Callable[..., Proc], sink: tuple[zmq.Socket[bytes], str]
) -> None:
    if not socket.has_ipv6:
        pytest.skip("this host has no IPv6")
    sock, notify_addr = sink
    env = base_env(
        tmp_path,
        ALERTIK_BIND="::",
        ALERTIK_NOTIFY_ADDR=notify_addr,
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/unused",
        **events_env(("Generic1", "regex", "^(v[46])$", "@1 from @{sender}")),
    )
    _ingest, _matcher, port = start_pipeline(spawn, env)
    send_udp(port, b"v4", host="127.0.0.1")
    try:
        send_udp(port, b"v6", host="::1")
    except OSError:
        pytest.skip("::1 is not usable here")
    texts = sorted(a.text.split(", at: ")[0] for a in receive_alerts(sock, 2))
    assert texts == ["v4 from 127.0.0.1", "v6 from ::1"]


def test_a_stage_with_a_bad_configuration_exits_2_naming_the_variable(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    env = base_env(tmp_path, **events_env(("Generic1", "glob", "x", "y")))
    proc = spawn("matcher", env=env)
    assert proc.popen.wait(10) == 2
    proc.kill()
    assert "EVENT0_MATCH_TYPE" in proc.output
    assert "Traceback" not in proc.output
