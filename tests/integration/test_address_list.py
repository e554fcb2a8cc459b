"""The RouterOS address-list action, through notify served in a thread, against
a stand-in for the router's REST API over HTTPS (tests/standins.py).

Here the destination is added to the configuration notify is given, as the
rules file does (tests/integration/test_destinations_e2e.py goes through a
real rules file): everything after that, sockets, outbox, workers, HTTPS,
is the real path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import zmq

from alertik.common import config
from alertik.common.destinations import parse
from alertik.common.schema import ENCODER, Alert
from alertik.notify.stage import Notify
from tests.integration.test_stages_in_threads import Running, push
from tests.standins import Pair, RouterOS, make_cert
from tests.support import WebhookServer, base_env, events_env, wait_for

PASSWORD = "r0uter-pa55"


@pytest.fixture
def cert(tmp_path: Path) -> Pair:
    return make_cert(tmp_path / "tls")


@pytest.fixture
def router(cert: Pair) -> Iterator[RouterOS]:
    server = RouterOS(tls=cert, password=PASSWORD)
    yield server
    server.close()


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    with zmq.Context() as context:
        yield context


def action(router: RouterOS, cert: Pair, **keys: object) -> dict[str, object]:
    return {
        "type": "routeros-address-list",
        "name": "block",
        "url": router.url,
        "user": "alertik",
        "password": PASSWORD,
        "list": "blocked",
        "timeout": "1d",
        "address": "@2",
        "allow": ["10.0.0.0/8", "192.0.2.100"],
        "ca_file": cert.cert,
        "report": "Generic1",
        **keys,
    }


def with_action(
    tmp_path: Path, hook: WebhookServer, table: dict[str, object]
) -> config.Config:
    """alertik's configuration with Generic1 (the report) and the action."""
    cfg = config.load(
        base_env(
            tmp_path,
            GENERIC1_WEBHOOK_URL=f"{hook.url}/report",
            **events_env(("Generic1", "substr", "x", "m")),
        )
    )
    notify = msgspec.structs.replace(
        cfg.notify, destinations=(*cfg.notify.destinations, parse(table))
    )
    return msgspec.structs.replace(cfg, notify=notify)


def order(n: int, address: str, rule: str = "ssh-bruteforce") -> Alert:
    return Alert(
        id=f"node/1/{n}/0/{rule}", notifier="block",
        text=f"Brute force from {address}, at: 2026-11-30 10:00:0{n}",
        rule=rule, received=time.time(), sender="192.0.2.1", node="node",
        address=address,
    )  # fmt: skip


def test_an_address_is_added_once_the_allow_list_never_and_reports_say_so(
    tmp_path: Path,
    ctx: zmq.Context[zmq.Socket[bytes]],
    router: RouterOS,
    cert: Pair,
    webhook: WebhookServer,
) -> None:
    """1. orders for 192.0.2.7 (twice: a second alert, and the first one sent
    again by the matcher), 10.1.2.3 (allow-listed), 2001:db8::7, "admin";
    2. the router is reached over HTTPS, its certificate checked against
    ca_file.
    Result: the router lists 192.0.2.7 once and 2001:db8::7 once, with the
    rule's comment and the timeout; 10.1.2.3 never reaches it; Generic1 is
    told of each address added and each one skipped."""
    cfg = with_action(tmp_path, webhook, action(router, cert))
    running = Running(Notify(cfg), cfg)
    running.opened()
    sender = push(ctx, cfg.endpoints.notify)
    for alert in (
        order(1, "192.0.2.7"),
        order(2, "192.0.2.7"),
        order(1, "192.0.2.7"),  # the same alert again: ignored by the outbox
        order(3, "10.1.2.3"),
        order(4, "2001:DB8::7"),
        order(5, "admin"),
    ):
        sender.send(ENCODER.encode(alert))
    reports = webhook.wait(4)
    wait_for(lambda: running.stage.counters()["pending"] == 0, what="all done")
    running.stop()
    sender.close()
    assert router.listed("blocked") == ["192.0.2.7", "2001:db8::7"]
    first = router.entries[0]
    assert (first.comment, first.timeout) == ("alertik: ssh-bruteforce", "1d")
    puts = [h for h in router.hits if h.method == "PUT"]
    assert [h.path for h in puts] == [
        "/rest/ip/firewall/address-list",
        "/rest/ip/firewall/address-list",
        "/rest/ipv6/firewall/address-list",
    ]
    assert all(h.json()["address"] != "10.1.2.3" for h in puts)
    texts = sorted(r.json()["text"] for r in reports)
    host = "127.0.0.1"
    assert texts == sorted(
        [
            f"alertik added 192.0.2.7 to address list 'blocked' on {host} for 1d "
            "(rule ssh-bruteforce): Brute force from 192.0.2.7, at: 2026-11-30 "
            "10:00:01",
            f"alertik added 2001:db8::7 to address list 'blocked' on {host} for 1d "
            "(rule ssh-bruteforce): Brute force from 2001:DB8::7, at: 2026-11-30 "
            "10:00:04",
            "alertik did not add 10.1.2.3 (rule ssh-bruteforce): 10.1.2.3 is in "
            "the allow-list (10.0.0.0/8): never added: Brute force from 10.1.2.3, "
            "at: 2026-11-30 10:00:03",
            "alertik did not add admin (rule ssh-bruteforce): 'admin' is not an IP "
            "address (the mask @2 of rule ssh-bruteforce): Brute force from admin, "
            "at: 2026-11-30 10:00:05",
        ]
    )


def test_audit_mode_changes_nothing_and_tells_the_report_destination(
    tmp_path: Path,
    ctx: zmq.Context[zmq.Socket[bytes]],
    router: RouterOS,
    cert: Pair,
    webhook: WebhookServer,
) -> None:
    cfg = with_action(tmp_path, webhook, action(router, cert, audit=True))
    running = Running(Notify(cfg), cfg)
    running.opened()
    sender = push(ctx, cfg.endpoints.notify)
    sender.send(ENCODER.encode(order(1, "192.0.2.7", "login-failure")))
    (report,) = webhook.wait(1)
    running.stop()
    sender.close()
    assert router.hits == []  # not even a connection that changes nothing
    assert report.json()["text"] == (
        "AUDIT, nothing changed: alertik would add 192.0.2.7 to address list "
        "'blocked' on 127.0.0.1 for 1d (rule login-failure): Brute force from "
        "192.0.2.7, at: 2026-11-30 10:00:01"
    )


def test_a_router_whose_certificate_is_not_trusted_is_never_sent_the_password(
    tmp_path: Path,
    ctx: zmq.Context[zmq.Socket[bytes]],
    router: RouterOS,
    cert: Pair,
    webhook: WebhookServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without ca_file the router's own certificate is not trusted: the order
    waits (retried), and no request reaches the router."""
    cfg = with_action(tmp_path, webhook, action(router, cert, ca_file=""))
    running = Running(Notify(cfg), cfg)
    running.opened()
    sender = push(ctx, cfg.endpoints.notify)
    sender.send(ENCODER.encode(order(1, "192.0.2.7")))
    wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, what="a retry")
    assert running.stage.counters()["pending"] == 1
    running.stop()
    sender.close()
    assert router.hits == []
    assert router.entries == []


def test_wrong_credentials_are_refused_for_good_and_never_logged(
    tmp_path: Path,
    ctx: zmq.Context[zmq.Socket[bytes]],
    router: RouterOS,
    cert: Pair,
    webhook: WebhookServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = action(router, cert, password="wrong-Pa55word")
    cfg = with_action(tmp_path, webhook, table)
    running = Running(Notify(cfg), cfg)
    running.opened()
    sender = push(ctx, cfg.endpoints.notify)
    sender.send(ENCODER.encode(order(1, "192.0.2.7")))
    (report,) = webhook.wait(1)
    running.stop()
    sender.close()
    assert report.json()["text"].startswith(
        "alertik could NOT add 192.0.2.7 to address list 'blocked' on 127.0.0.1 "
        "(rule ssh-bruteforce): HTTP 401"
    )
    assert router.entries == []
    assert "wrong-Pa55word" not in caplog.text


def test_send_test_checks_the_login_without_changing_anything(
    tmp_path: Path, router: RouterOS, cert: Pair, webhook: WebhookServer
) -> None:
    """alertik send-test with the action of a rules file: without an address
    it only reads the list; with one it adds it, allow-list included."""
    table = action(router, cert)
    lines = [f"{k} = {json.dumps(v)}" for k, v in table.items() if k != "name"]
    rules = tmp_path / "rules.toml"
    rules.write_text("[destinations.block]\n" + "\n".join(lines) + "\n")
    env = base_env(
        tmp_path,
        ALERTIK_RULES_FILE=str(rules),
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/report",
    )

    def send_test(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "alertik", "send-test", "block", *args],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    check = send_test()
    assert check.returncode == 0, check.stdout + check.stderr
    assert "logged in; 0 entries on address list 'blocked'" in check.stdout
    assert [h.method for h in router.hits] == ["GET"]
    added = send_test("198.51.100.9")
    assert added.returncode == 0, added.stdout + added.stderr
    assert "delivered, HTTP 201, 1 attempt" in added.stdout
    assert router.listed("blocked") == ["198.51.100.9"]
    assert router.entries[0].comment == "alertik: send-test"
    refused = send_test("10.9.9.9")
    assert refused.returncode == 1
    assert "NOT acted on: 10.9.9.9 is in the allow-list" in refused.stdout
    for out in (check, added, refused):
        assert PASSWORD not in out.stdout + out.stderr
