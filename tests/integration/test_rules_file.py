"""The rules file with real stage processes: thresholds and cooldowns end to
end, state across a restart, and live reload under a flood."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import zmq

from alertik.common.schema import ALERT_DECODER, ENCODER, SyslogEvent
from tests.support import (
    Proc,
    WebhookServer,
    base_env,
    endpoint_of,
    receive_alerts,
    send_udp,
    udp_port_of,
    wait_for,
)

BRUTE = """
[[rules]]
name = "ssh-bruteforce"
regex = 'login failure for user ([^ ]+) from ([0-9.]+) via'
threshold = { count = 5, window = "60s", key = "@2" }
cooldown = "COOLDOWN"
notify = ["Generic1", "Generic2"]
text = "Brute force from @2 (user @1)"
"""


def login(address: str) -> bytes:
    return (
        b"system,error,critical login failure for user admin from "
        + address.encode()
        + b" via ssh"
    )


def test_five_failed_logins_alert_once_per_destination_and_the_cooldown_summarises(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    make_webhook: Callable[[], WebhookServer],
) -> None:
    """1. ingest, matcher and notify as processes; a threshold of 5 in 60 s per
    address with a 3 s cooldown, to two webhooks;
    2. send 5 failed logins from .7 and 4 from .8, then 3 more from .7;
    Result: each webhook gets one alert naming .7, then, when the cooldown
    ends, one summary of the 3 held."""
    one, two = make_webhook(), make_webhook()
    rules = tmp_path / "rules.toml"
    rules.write_text(BRUTE.replace("COOLDOWN", "3s"))
    env = base_env(
        tmp_path,
        ALERTIK_RULES_FILE=str(rules),
        GENERIC1_WEBHOOK_URL=one.url + "/a",
        GENERIC2_WEBHOOK_URL=two.url + "/b",
        ALERTIK_NOTIFY_ADDR="tcp://127.0.0.1:*",
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
    )
    notify = spawn("notify", env=env)
    env["ALERTIK_NOTIFY_ADDR"] = endpoint_of(notify, "notify")
    matcher = spawn("matcher", env=env)
    env["ALERTIK_MATCHER_ADDR"] = endpoint_of(matcher, "matcher")
    ingest = spawn("ingest", env=env)
    port = udp_port_of(ingest)
    for _ in range(4):
        send_udp(port, login("192.0.2.7"), login("192.0.2.8"))
    send_udp(port, login("192.0.2.7"))
    first = [r.json()["text"] for r in one.wait(1)] + [
        r.json()["text"] for r in two.wait(1)
    ]
    assert [t.split(", at: ")[0] for t in first] == [
        "Brute force from 192.0.2.7 (user admin)"
    ] * 2
    sent = time.monotonic()
    send_udp(port, login("192.0.2.7"), login("192.0.2.7"), login("192.0.2.7"))
    summaries = [one.wait(2)[1].json()["text"], two.wait(2)[1].json()["text"]]
    assert time.monotonic() - sent >= 1.5  # it waited for the cooldown
    for text in summaries:
        assert text.startswith(
            "ssh-bruteforce: 3 more hits for 192.0.2.7 during the 3s cooldown; the "
            "last: Brute force from 192.0.2.7 (user admin), at: "
        )
    time.sleep(0.5)  # nothing else may come: the .8 count never reached 5
    assert len(one.requests) == len(two.requests) == 2
    assert matcher.terminate() == 0
    assert re.search(
        r"stopped: handled=12 alerts=4 .*held=3 summaries=1", matcher.output
    )


def test_counters_and_cooldowns_survive_a_matcher_restart(
    tmp_path: Path, spawn: Callable[..., Proc], sink: tuple[zmq.Socket[bytes], str]
) -> None:
    sock, notify_addr = sink
    rules = tmp_path / "rules.toml"
    rules.write_text(BRUTE.replace("COOLDOWN", "1h"))
    env = base_env(
        tmp_path,
        ALERTIK_RULES_FILE=str(rules),
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/a",
        GENERIC2_WEBHOOK_URL="http://127.0.0.1:9/b",
        ALERTIK_NOTIFY_ADDR=notify_addr,
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
    )
    with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push:
        push.setsockopt(zmq.LINGER, 1000)

        def run(lines: list[bytes], first_seq: int) -> Proc:
            matcher = spawn("matcher", env=env)
            endpoint = endpoint_of(matcher, "matcher")
            push.connect(endpoint)
            for i, raw in enumerate(lines):
                push.send(ENCODER.encode(event(raw, first_seq + i)))
            wait_for(
                lambda: (
                    (tmp_path / "log.txt").exists()
                    and (tmp_path / "log.txt").read_text().count("login failure")
                    >= first_seq + len(lines)
                ),
                what="the archive",
            )
            assert matcher.terminate() == 0
            push.disconnect(endpoint)
            return matcher

        run([login("192.0.2.7")] * 3, 0)
        assert not sock.poll(200)
        second = run([login("192.0.2.7")] * 3, 3)
        (alert,) = receive_alerts(sock, 1)[:1]
        assert alert.text.startswith("Brute force from 192.0.2.7")
        assert "rule state from before the restart: 1 counters" in second.output
        receive_alerts(sock, 1)  # the same alert for Generic2
        assert "held=1" in second.output  # the 6th hit: held by the cooldown
        third = run([login("192.0.2.7")], 6)
        assert "held=1" in third.output
        assert not sock.poll(200)


def event(raw: bytes, seq: int) -> SyslogEvent:
    return SyslogEvent(
        raw=raw,
        received=time.time(),
        sender="192.0.2.1",
        sender_port=514,
        node="test-node",
        seq=seq,
        pid=1,
    )


FLOOD_RULE = """
[[rules]]
name = "NAME"
regex = 'flood ([0-9]+)'
notify = "Generic1"
text = "TEXT @1"
"""
RATE = 5000
# 999 rules that match nothing in the flood, 499 of them regexes: the
# reload compiles a file of 1,000 rules, as a large set-up has.
FILLER = "".join(
    f'[[rules]]\nname = "f{i}"\n'
    + (f"regex = 'vlan{i} lost ([0-9.]+)'\n" if i % 2 else f'substr = "sfp{i} rx"\n')
    + 'notify = "Generic1"\n'
    for i in range(999)
)


def test_a_reload_under_a_flood_loses_and_doubles_nothing(
    tmp_path: Path, spawn: Callable[..., Proc], sink: tuple[zmq.Socket[bytes], str]
) -> None:
    """1. the matcher alone, 1,000 rules, one of which alerts on every line
       ("v1 N");
    2. push 5,000 lines/s, each numbered; after 1.5 s rewrite the file
       ("v2 N"), after 3 s write a broken file, stop at 4.5 s;
    Result: every number alerts exactly once; all v1 numbers come before all
    v2 numbers, and v2 starts within 2 s of the edit; the broken file logs one
    error naming the file and line, and v2 stays."""
    sock, notify_addr = sink
    rules = tmp_path / "rules.toml"
    rules.write_text(FLOOD_RULE.replace("NAME", "v1").replace("TEXT", "v1") + FILLER)
    env = base_env(
        tmp_path,
        ALERTIK_RULES_FILE=str(rules),
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/a",
        ALERTIK_NOTIFY_ADDR=notify_addr,
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
        ALERTIK_LOG_FILE="-",
    )
    matcher = spawn("matcher", env=env)
    endpoint = endpoint_of(matcher, "matcher")
    received: list[str] = []

    def collect() -> None:
        while True:
            if not sock.poll(3000):
                return
            received.append(ALERT_DECODER.decode(sock.recv()).text)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    sent_at: list[float] = []
    edited_at = broken_at = 0.0
    with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push:
        push.setsockopt(zmq.LINGER, 5000)
        push.connect(endpoint)
        start = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - start) < 4.5:
            due = int(elapsed * RATE)
            while n < due:
                push.send(ENCODER.encode(event(f"x flood {n} y".encode(), n)))
                sent_at.append(time.monotonic())
                n += 1
            if not edited_at and elapsed >= 1.5:
                write_atomically(
                    rules,
                    FLOOD_RULE.replace("NAME", "v2").replace("TEXT", "v2") + FILLER,
                )
                edited_at = time.monotonic()
            if not broken_at and elapsed >= 3.0:
                write_atomically(rules, '[[rules]]\nname = "v3"\nregex = "a(\n')
                broken_at = time.monotonic()
            time.sleep(0.002)
    reader.join(30)
    assert not reader.is_alive()
    numbers = [int(t.split()[1].split(",")[0]) for t in received]
    assert sorted(numbers) == list(range(n)), "lost or doubled"
    versions = [t.split()[0] for t in received]
    switch = versions.index("v2")
    assert set(versions[:switch]) == {"v1"} and set(versions[switch:]) == {"v2"}
    first_v2 = min(int(t.split()[1].split(",")[0]) for t in received if t[:2] == "v2")
    assert sent_at[first_v2] - edited_at < 2.0
    assert n >= 0.9 * 4.5 * RATE
    errors = [line for line in matcher.output.splitlines() if "not reloaded" in line]
    assert len(errors) == 1, matcher.output
    assert f"{rules} line 3, column " in errors[0]
    assert "the 1000 rules in use stay" in errors[0]
    matcher.popen.send_signal(signal.SIGTERM)
    assert matcher.popen.wait(10) == 0
    assert "reloads=1 reload_errors=1" in matcher.output


def write_atomically(path: Path, text: str) -> None:
    """As editors and config tools do: a new file renamed over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_sighup_reloads_at_once_and_a_bad_edit_keeps_the_rules_in_use(
    tmp_path: Path, spawn: Callable[..., Proc], sink: tuple[zmq.Socket[bytes], str]
) -> None:
    sock, notify_addr = sink
    rules = tmp_path / "rules.toml"
    rules.write_text(FLOOD_RULE.replace("NAME", "v1").replace("TEXT", "v1"))
    env = base_env(
        tmp_path,
        ALERTIK_RULES_FILE=str(rules),
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/a",
        ALERTIK_NOTIFY_ADDR=notify_addr,
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
    )
    matcher = spawn("matcher", env=env)
    endpoint = endpoint_of(matcher, "matcher")
    with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push:
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(endpoint)
        rules.write_text(FLOOD_RULE.replace("NAME", "v2").replace("TEXT", "v2"))
        matcher.popen.send_signal(signal.SIGHUP)
        matcher.wait_line("rules reloaded (SIGHUP): 1 rules, 1 from")
        push.send(ENCODER.encode(event(b"flood 1", 1)))
        assert receive_alerts(sock, 1)[0].text.startswith("v2 1, at: ")
        rules.write_text('[[rules]]\nname = "v3"\nnotify = "Generic1"\nsevrity = 3\n')
        matcher.popen.send_signal(signal.SIGHUP)
        error = matcher.wait_line("rules file not reloaded (SIGHUP)")
        assert (
            f"{rules} line 4, rule 'v3', key sevrity: is not a key here; did you "
            "mean severity?" in error
        )
        push.send(ENCODER.encode(event(b"flood 2", 2)))
        assert receive_alerts(sock, 1)[0].text.startswith("v2 2, at: ")
    time.sleep(1.0)  # the watcher saw the same edit: it must not report it again
    assert matcher.output.count("not reloaded") == 1
    assert matcher.terminate() == 0


DESTINATIONS = """
[destinations.ops]
type = "telegram"
api_url = "API"
bot_token_file = "TOKEN"
chat_id = "CHAT"
message_thread_id = 42

[[rules]]
name = "a"
substr = "alpha"
notify = ["ops", "Generic1"]
text = "A: @{message}"
"""
ADDED = """
[destinations.ops2]
type = "generic"
url = "URL2"

[[rules]]
name = "b"
substr = "beta"
notify = "ops2"
text = "B: @{message}"
"""


def test_named_destinations_reach_notify_and_an_edit_adds_and_changes_them(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    make_webhook: Callable[[], WebhookServer],
) -> None:
    """1. notify and the matcher as processes; a rule sends to a Telegram
    forum topic defined in the file (token in a file) and to Generic1;
    2. edit the file: another chat for ops, a new destination ops2 and a
    rule for it;
    Result: each destination gets its exact payload, the edit applies to
    both stages, and no alert is dropped for an unknown destination."""
    telegram, generic, added = make_webhook(), make_webhook(), make_webhook()
    token = tmp_path / "token"
    token.write_text("123456:secret-TOKEN\n")
    rules = tmp_path / "rules.toml"
    first = (
        DESTINATIONS.replace("API", telegram.url)
        .replace("TOKEN", str(token))
        .replace("CHAT", "-1001234567890")
    )
    rules.write_text(first)
    env = base_env(
        tmp_path,
        ALERTIK_RULES_FILE=str(rules),
        GENERIC1_WEBHOOK_URL=generic.url + "/g",
        ALERTIK_NOTIFY_ADDR="tcp://127.0.0.1:*",
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
    )
    notify = spawn("notify", env=env)
    env["ALERTIK_NOTIFY_ADDR"] = endpoint_of(notify, "notify")
    matcher = spawn("matcher", env=env)
    with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push:
        push.setsockopt(zmq.LINGER, 1000)
        push.connect(endpoint_of(matcher, "matcher"))
        push.send(ENCODER.encode(event(b"system,info alpha one", 1)))
        (request,) = telegram.wait(1)
        assert request.path == "/bot123456:secret-TOKEN/sendMessage"
        body = request.json()
        assert body["chat_id"] == -1001234567890
        assert body["message_thread_id"] == 42
        assert body["text"].startswith("A: alpha one, at: ")
        assert generic.wait(1)[0].json()["text"] == body["text"]

        write_atomically(
            rules,
            first.replace("-1001234567890", "-1009999")
            + ADDED.replace("URL2", added.url + "/x"),
        )
        matcher.wait_line("rules reloaded (the file changed): 2 rules")
        push.send(ENCODER.encode(event(b"system,info alpha beta two", 2)))
        assert added.wait(1)[0].json()["text"].startswith("B: alpha beta two")
        assert telegram.wait(2)[1].json()["chat_id"] == -1009999
    notify.wait_line("destinations reloaded")
    assert "no destination is configured" not in notify.output
    assert "secret-TOKEN" not in notify.output + matcher.output
    assert notify.terminate() == 0
