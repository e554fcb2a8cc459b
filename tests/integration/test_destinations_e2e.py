"""Issue 16's "done when", end to end: ingest, matcher and notify as processes,
a rules file, syslog lines over UDP, and local servers standing in for
Telegram, ntfy, Matrix and a router's REST API.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.standins import MatrixServer, Pair, Recorder, RouterOS, make_cert
from tests.support import (
    Proc,
    WebhookServer,
    base_env,
    endpoint_of,
    send_udp,
    udp_port_of,
    wait_for,
)

TOKEN = "123456:SECRETtokenVALUE-xyz"
MATRIX_TOKEN = "syt_YWxlcnRpaw_SecretMatrixToken_0x"
ROOM = "!AbCdEfGh:example.test"
PASSWORD = "r0uter-pa55"


def pipeline(
    spawn: Callable[..., Proc], tmp_path: Path, rules: str, **extra: str
) -> int:
    """ingest, matcher and notify with rules as the rules file; ingest's port."""
    path = tmp_path / "rules.toml"
    path.write_text(rules)
    env = base_env(
        tmp_path,
        ALERTIK_RULES_FILE=str(path),
        ALERTIK_NOTIFY_ADDR="tcp://127.0.0.1:*",
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
        **extra,
    )
    notify = spawn("notify", env=env)
    env["ALERTIK_NOTIFY_ADDR"] = endpoint_of(notify, "notify")
    matcher = spawn("matcher", env=env)
    env["ALERTIK_MATCHER_ADDR"] = endpoint_of(matcher, "matcher")
    return udp_port_of(spawn("ingest", env=env))


@pytest.fixture
def matrix() -> Iterator[MatrixServer]:
    server = MatrixServer()
    server.add_user("@alertik:example.test", MATRIX_TOKEN, ROOM)
    yield server
    server.close()


def test_one_rule_reaches_a_telegram_topic_ntfy_and_matrix_and_ntfy_catches_up(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    webhook: WebhookServer,
    matrix: MatrixServer,
) -> None:
    """1. one rule notifies a Telegram forum topic, ntfy with priority 4 and
    a Matrix room; ntfy's port refuses connections;
    2. one matching line arrives over UDP;
    3. later ntfy's server comes up on its port.
    Result: Telegram and Matrix get the alert at once, each field as the
    service reads it; ntfy gets the same alert from the outbox once it is
    back."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))  # bound, not listening: connections refused
    ntfy_port = held.getsockname()[1]
    rules = f"""
[destinations.ops]
type = "telegram"
bot_token = "{TOKEN}"
chat_id = "-1001234567890"
message_thread_id = 42
api_url = "{webhook.url}/tg"

[destinations.phone]
type = "ntfy"
url = "http://127.0.0.1:{ntfy_port}"
topic = "router_alerts"
priority = 4

[destinations.room]
type = "matrix"
homeserver = "{matrix.url}"
room = "{ROOM}"
access_token = "{MATRIX_TOKEN}"

[[rules]]
name = "uplink"
regex = '([a-z0-9-]+) link down'
notify = ["ops", "phone", "room"]
text = "@1 is down on @{{router}}"
"""
    ntfy: Recorder | None = None
    try:
        port = pipeline(spawn, tmp_path, rules)
        send_udp(port, b"interface,info ether1-wan link down")
        (telegram,) = webhook.wait(1)
        text = telegram.json()["text"]
        assert text.startswith("ether1-wan is down on 127.0.0.1, at: ")
        assert telegram.path == f"/tg/bot{TOKEN}/sendMessage"
        assert telegram.json() == {
            "chat_id": -1001234567890,
            "message_thread_id": 42,
            "text": text,
        }
        wait_for(lambda: matrix.rooms[ROOM], what="the Matrix event")
        (event,) = matrix.rooms[ROOM]
        assert event.content == {"msgtype": "m.notice", "body": text}
        assert event.sender == "@alertik:example.test"
        (put,) = matrix.hits
        assert put.method == "PUT"
        assert put.headers["authorization"] == f"Bearer {MATRIX_TOKEN}"
        assert put.path.startswith(
            f"/_matrix/client/v3/rooms/{ROOM.replace('!', '%21').replace(':', '%3A')}"
            "/send/m.room.message/alertik-"
        )
        held.close()
        ntfy = Recorder(port=ntfy_port)
        wait_for(lambda: ntfy.hits, timeout=15, what="ntfy's copy")
        (published,) = ntfy.hits
        assert (published.method, published.path) == ("POST", "/")
        assert published.headers["content-type"] == "application/json"
        assert published.json() == {
            "topic": "router_alerts",
            "message": text,
            "priority": 4,
        }
        assert len(webhook.requests) == 1 and len(matrix.rooms[ROOM]) == 1
    finally:
        held.close()
        if ntfy is not None:
            ntfy.close()


@pytest.fixture
def cert(tmp_path: Path) -> Pair:
    return make_cert(tmp_path / "tls")


@pytest.fixture
def router(cert: Pair) -> Iterator[RouterOS]:
    server = RouterOS(tls=cert, password=PASSWORD)
    yield server
    server.close()


def blocking(router: RouterOS, cert: Pair, audit: bool) -> str:
    return f"""
[destinations.block]
type = "routeros-address-list"
url = "{router.url}"
user = "alertik"
password = "{PASSWORD}"
ca_file = "{cert.cert}"
list = "blocked"
timeout = "1d"
address = "@2"
allow = ["10.0.0.0/8"]
audit = {"true" if audit else "false"}
report = "Generic1"

[[rules]]
name = "ssh-bruteforce"
preset = "login-failure"
cooldown = "2s"
notify = ["Generic1", "block"]
"""


def login(address: str) -> bytes:
    return (
        b"system,error,critical login failure for user admin from "
        + address.encode()
        + b" via ssh"
    )


def test_the_failed_login_preset_blocks_an_address_once_and_never_the_allowed(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    webhook: WebhookServer,
    router: RouterOS,
    cert: Pair,
) -> None:
    """1. the login-failure preset (5 in 60 s per address) notifies Generic1
    and an address list on a router (HTTPS, its own certificate);
    2. 5 failed logins from 192.0.2.7 and 5 from 10.1.2.3 (allow-listed),
    then 3 more from .7 during the cooldown.
    Result: the router lists 192.0.2.7 exactly once, commented with the
    rule; 10.1.2.3 never reaches it; Generic1 gets the alerts and the
    reports."""
    port = pipeline(
        spawn,
        tmp_path,
        blocking(router, cert, audit=False),
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/ops",
    )
    for _ in range(5):
        send_udp(port, login("192.0.2.7"), login("10.1.2.3"))
    wait_for(lambda: router.listed("blocked"), what="the address list")
    send_udp(port, login("192.0.2.7"), login("192.0.2.7"), login("192.0.2.7"))
    # Generic1: the alert for each address, the cooldown's summary for .7
    # (a message: not for the action), and the reports of what was added and
    # what was not.
    texts = [r.json()["text"] for r in webhook.wait(5, timeout=15)]
    assert router.listed("blocked") == ["192.0.2.7"]
    (entry,) = router.entries
    assert (entry.comment, entry.timeout) == ("alertik: ssh-bruteforce", "1d")
    (put,) = router.hits
    assert put.json()["address"] == "192.0.2.7"
    assert sum(t.startswith("Repeated failed logins") for t in texts) == 2
    assert sum(t.startswith("ssh-bruteforce: 3 more hits") for t in texts) == 1
    assert sum("alertik added 192.0.2.7" in t for t in texts) == 1
    assert sum("did not add 10.1.2.3" in t and "allow-list" in t for t in texts) == 1


def test_in_audit_mode_the_preset_adds_nothing_and_notifies(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    webhook: WebhookServer,
    router: RouterOS,
    cert: Pair,
) -> None:
    port = pipeline(
        spawn,
        tmp_path,
        blocking(router, cert, audit=True),
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/ops",
    )
    for _ in range(5):
        send_udp(port, login("192.0.2.7"))
    texts = [r.json()["text"] for r in webhook.wait(2)]
    audit = [t for t in texts if t.startswith("AUDIT")]
    assert len(audit) == 1
    assert audit[0].startswith(
        "AUDIT, nothing changed: alertik would add 192.0.2.7 to address list "
        "'blocked' on 127.0.0.1 for 1d (rule ssh-bruteforce): Repeated failed "
        "logins on 127.0.0.1 from 192.0.2.7 (last: user admin via ssh), at: "
    )
    assert router.hits == []
    assert router.entries == []
