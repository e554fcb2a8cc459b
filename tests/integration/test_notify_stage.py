"""The notify stage as a real process, against local servers imitating each service.

Each test starts ``alertik notify`` (or ``python -m alertik.notify``) with its
input and tap on ``tcp://127.0.0.1:*``, reads the endpoints from its log,
pushes ``Alert`` messages and watches what the fake services receive.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from alertik.common.schema import ENCODER, MESSAGE_DECODER, Alert, Delivery
from alertik.notify.outboxdb import OUTBOX_FILE
from tests.support import (
    Proc,
    Reply,
    Request,
    WebhookServer,
    base_env,
    endpoint_of,
    events_env,
    send_udp,
    udp_port_of,
    wait_for,
)

TRICKY = 'he said "hi" \\ C:\\path\nsecond line\ttab é ☃ 😀 @everyone <b>x</b>'
TOKEN = "123456:SECRETtokenVALUE-xyz"


def alert(n: int, notifier: str, text: str | None = None) -> Alert:
    return Alert(
        id=f"{notifier}-{n}",
        notifier=notifier,
        text=f"alert {n} for {notifier}, at: 2024-05-01 10:00:00"
        if text is None
        else text,
        rule="EVENT0",
        received=time.time(),
        sender="192.0.2.1",
        node="test-node",
    )


def slack_shows(text: str) -> str:
    """What Slack shows for the text of a message (its three entities)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def texts(requests: list[Request], field: str = "text") -> list[str]:
    return [r.json()[field] for r in requests]


class Stage:
    """A running notify process, a PUSH into it and a SUB on its tap."""

    def __init__(self, proc: Proc, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
        self.proc = proc
        line = proc.wait_line("notify listening on")
        match = re.search(r"listening on (\S+) \(tap (\S+),", line)
        assert match, line
        self.push = ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 1000)
        self.push.connect(match.group(1))
        self.tap = ctx.socket(zmq.SUB)
        self.tap.setsockopt(zmq.LINGER, 0)
        self.tap.setsockopt(zmq.SUBSCRIBE, b"")
        # Outcomes published before the subscription lands are lost: wait for
        # the tap's handshake, so that none of them is.
        monitor = self.tap.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.tap.connect(match.group(2))
        try:
            assert monitor.poll(5000), "no handshake with the tap"
        finally:
            self.tap.disable_monitor()
            monitor.close(0)
        self.deliveries: list[Delivery] = []

    def send(self, *alerts: Alert) -> None:
        for a in alerts:
            self.push.send(ENCODER.encode(a))

    def outcome(self, alert_id: str, outcome: str, timeout: float = 10.0) -> Delivery:
        """Wait for the tap to report outcome for alert_id."""

        def seen() -> Delivery | None:
            while self.tap.poll(0):
                message = MESSAGE_DECODER.decode(self.tap.recv())
                assert isinstance(message, Delivery)
                self.deliveries.append(message)
            for d in self.deliveries:
                if d.id == alert_id and d.outcome == outcome:
                    return d
            return None

        return wait_for(seen, timeout, f"{outcome} for {alert_id}")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.push.close(0)
        self.tap.close(0)


@pytest.fixture
def service(make_webhook: Callable[[], WebhookServer]) -> Callable[[], WebhookServer]:
    """A fake service that answers in one TCP segment.

    Without TCP_NODELAY the stdlib server writes headers and body separately and
    each request waits ~40 ms for a delayed ACK; 200 requests would take 8 s.
    """

    def make() -> WebhookServer:
        server = make_webhook()
        server.httpd.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        return server

    return make


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Callable[..., Stage]]:
    """Start notify processes (killed at teardown) with their sockets."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    stages: list[Stage] = []
    procs: list[Proc] = []

    def start(env: dict[str, str], module: bool = False) -> Stage:
        full = base_env(
            tmp_path,
            ALERTIK_NOTIFY_ADDR="tcp://127.0.0.1:*",
            ALERTIK_NOTIFY_TAP="tcp://127.0.0.1:*",
        )
        full.update(env)
        # ``alertik notify``, or ``python -m alertik.notify`` with module=True.
        args = ["-m", "alertik.notify"] if module else ["-m", "alertik", "notify"]
        proc = Proc([sys.executable, *args], full, tmp_path)
        procs.append(proc)
        stages.append(Stage(proc, ctx))
        return stages[-1]

    yield start
    for s in stages:
        s.close()
    for p in procs:
        p.kill()
        # Proc leaves its pipe open; closed here, or a ResourceWarning fails a
        # later test.
        if p.popen.stdout is not None:
            p.popen.stdout.close()
    ctx.term()


def outbox_rows(tmp_path: Path, notifier: str) -> int:
    """Rows the running stage holds for notifier, read from its database file."""
    path = tmp_path / "state" / OUTBOX_FILE
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        query = "SELECT COUNT(*) FROM outbox WHERE notifier = ?"
        return int(db.execute(query, (notifier,)).fetchone()[0])


def stopped_line(stage: Stage) -> str:
    assert stage.proc.terminate() == 0, stage.proc.output
    return stage.proc.wait_line("stopped:")


def test_each_service_receives_its_documented_request_with_the_exact_text(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    """1. one alert with quotes, backslashes, newlines and unicode per service;
    2. each fake service checks method, path, content type and JSON body.
    Result: every body is valid JSON in the service's format, text unchanged."""
    hook = service()
    stage = notify(
        {
            "TELEGRAM_API_URL": f"{hook.url}/tg",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "-1001234567890",
            "SLACK_WEBHOOK_URL": f"{hook.url}/slack/T0/B0/secret",
            "TEAMS_WEBHOOK_URL": f"{hook.url}/teams?sig=abc",
            "DISCORD_WEBHOOK_URL": f"{hook.url}/discord/1/tok",
            "GENERIC3_WEBHOOK_URL": f"{hook.url}/generic3",
            **events_env(
                *(
                    (n, "substr", "x", "m")
                    for n in ("Telegram", "Slack", "Teams", "Discord", "Generic3")
                )
            ),
        }
    )
    stage.send(
        *(alert(0, n, TRICKY) for n in ("Telegram", "Slack", "Teams", "Discord"))
    )
    stage.send(alert(0, "Generic3", TRICKY))
    by_path = {r.path: r for r in hook.wait(5)}
    assert set(by_path) == {
        f"/tg/bot{TOKEN}/sendMessage",
        "/slack/T0/B0/secret",
        "/teams?sig=abc",
        "/discord/1/tok",
        "/generic3",
    }
    for r in by_path.values():
        assert r.method == "POST"
        assert r.headers["content-type"] == "application/json"
        json.loads(r.body.decode("utf-8"))  # strict UTF-8 JSON
    assert by_path[f"/tg/bot{TOKEN}/sendMessage"].json() == {
        "chat_id": -1001234567890,
        "text": TRICKY,
    }
    # Slack gets its entities for & < > (so no <!channel> or <url|text> from a
    # log line) and shows the text as it was.
    slack = by_path["/slack/T0/B0/secret"].json()
    assert "<" not in slack["text"]
    assert {"text": slack_shows(slack["text"])} == {"text": TRICKY}
    assert by_path["/generic3"].json() == {"text": TRICKY}
    assert by_path["/discord/1/tok"].json() == {
        "content": TRICKY,
        "allowed_mentions": {"parse": []},
    }
    teams = by_path["/teams?sig=abc"].json()
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert attachment["content"]["version"] == "1.4"
    assert attachment["content"]["body"] == [
        {"type": "TextBlock", "text": TRICKY, "wrap": True}
    ]


def test_teams_legacy_format_sends_plain_text_and_202_counts_as_delivered(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    hook = service()
    hook.replies = [Reply(202, b"")]
    stage = notify(
        {
            "TEAMS_WEBHOOK_URL": f"{hook.url}/legacy",
            "TEAMS_WEBHOOK_FORMAT": "legacy",
            **events_env(("Teams", "substr", "x", "m")),
        }
    )
    stage.send(alert(1, "Teams", TRICKY))
    assert hook.wait(1)[0].json() == {"text": TRICKY}
    assert stage.outcome("Teams-1", "delivered").status == 202


def test_server_errors_timeouts_and_resets_are_retried_until_delivered(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    """1. the service answers 503, 500, then too slowly, then resets, then 200.
    Result: one delivery after 5 attempts, each retry later than the last."""
    hook = service()
    hook.replies = [
        Reply(503),
        Reply(500),
        Reply(delay=1.0),
        Reply(reset=True),
        Reply(),
    ]
    stage = notify(
        {
            "GENERIC1_WEBHOOK_URL": f"{hook.url}/hook",
            "ALERTIK_HTTP_READ_TIMEOUT": "0.3",
            "ALERTIK_RETRY_MAX_DELAY": "0.1",
            **events_env(("Generic1", "substr", "x", "m")),
        }
    )
    stage.send(alert(1, "Generic1"))
    done = stage.outcome("Generic1-1", "delivered")
    assert (done.attempts, done.status) == (5, 200)
    retries = [d for d in stage.deliveries if d.outcome == "retrying"]
    assert [d.attempts for d in retries] == [1, 2, 3, 4]
    assert "HTTP 503" in retries[0].detail
    assert "Timeout" in retries[2].detail
    answered = [r for r in hook.requests if r.path == "/hook"]
    assert texts(answered)[-1] == alert(1, "Generic1").text


def test_a_429_waits_as_long_as_each_service_asks(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    """1. Slack answers 429 with Retry-After: 2; Telegram with
    parameters.retry_after 2; Discord with JSON retry_after 0.3 (header 5).
    Result: the retries come 2 s, 2 s and about 0.3 s later."""
    slack, telegram, discord = service(), service(), service()
    slack.replies = [Reply(429, b"rate_limited", {"Retry-After": "2"}), Reply()]
    telegram.replies = [
        Reply(
            429,
            b'{"ok":false,"error_code":429,"description":"Too Many Requests: '
            b'retry after 2","parameters":{"retry_after":2}}',
        ),
        Reply(),
    ]
    discord.replies = [
        Reply(429, b'{"retry_after":0.3,"global":false}', {"Retry-After": "5"}),
        Reply(204, b""),
    ]
    stage = notify(
        {
            "SLACK_WEBHOOK_URL": f"{slack.url}/s",
            "TELEGRAM_API_URL": telegram.url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "42",
            "DISCORD_WEBHOOK_URL": f"{discord.url}/d",
            **events_env(
                ("Slack", "substr", "x", "m"),
                ("Telegram", "substr", "x", "m"),
                ("Discord", "substr", "x", "m"),
            ),
        }
    )
    stage.send(alert(1, "Slack"), alert(1, "Telegram"), alert(1, "Discord"))
    gaps = {}
    for name, hook in (("slack", slack), ("telegram", telegram), ("discord", discord)):
        first, second = hook.wait(2, timeout=10)[:2]
        gaps[name] = second.at - first.at
    assert gaps["slack"] >= 1.95
    assert gaps["telegram"] >= 1.95
    assert 0.25 <= gaps["discord"] < 2.0


def test_a_permanent_4xx_is_logged_with_its_body_and_not_retried(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    hook = service()
    hook.replies = [Reply(400, b'{"error": "invalid payload: no text"}'), Reply()]
    stage = notify(
        {
            "GENERIC2_WEBHOOK_URL": f"{hook.url}/hook",
            **events_env(("Generic2", "substr", "x", "m")),
        }
    )
    stage.send(alert(1, "Generic2"), alert(2, "Generic2"))
    failed = stage.outcome("Generic2-1", "failed")
    assert failed.status == 400
    assert "invalid payload: no text" in failed.detail
    stage.outcome("Generic2-2", "delivered")
    assert texts(hook.requests) == [
        alert(1, "Generic2").text,
        alert(2, "Generic2").text,
    ]
    line = stage.proc.wait_line("refused, not retried")
    assert 'HTTP 400: {"error": "invalid payload: no text"}' in line


def test_a_discord_webhook_answering_404_is_not_used_again(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    hook = service()
    hook.replies = [Reply(404, b'{"message": "Unknown Webhook", "code": 10015}')]
    stage = notify(
        {
            "DISCORD_WEBHOOK_URL": f"{hook.url}/api/webhooks/1/gone",
            **events_env(("Discord", "substr", "x", "m")),
        }
    )
    stage.send(*(alert(i, "Discord") for i in range(3)))
    line = stage.proc.wait_line("NOT USING THIS DESTINATION")
    assert "Unknown Webhook" in line
    assert "1/gone" not in line
    assert "pending=3" in stopped_line(stage)
    assert len(hook.requests) == 1


def test_a_slow_destination_delays_neither_intake_nor_the_other_destinations(
    tmp_path: Path,
    service: Callable[[], WebhookServer],
    notify: Callable[..., Stage],
) -> None:
    """1. Generic1 takes 3 s per answer; Generic2 answers at once;
    2. a burst of 200 alerts for each;
    3. Generic1 recovers.
    Result: all 400 are stored and Generic2 has all of its 200 before Generic1's
    first answer; then Generic1 gets all of its 200, in order."""
    slow, fast = service(), service()
    recovered = threading.Event()
    slow.replies = lambda req: Reply() if recovered.is_set() else Reply(delay=3.0)
    stage = notify(
        {
            "GENERIC1_WEBHOOK_URL": f"{slow.url}/slow",
            "GENERIC2_WEBHOOK_URL": f"{fast.url}/fast",
            **events_env(
                ("Generic1", "substr", "x", "m"), ("Generic2", "substr", "x", "m")
            ),
        }
    )
    started = time.monotonic()
    for i in range(200):
        stage.send(alert(i, "Generic1"), alert(i, "Generic2"))
    wait_for(lambda: outbox_rows(tmp_path, "Generic1") == 200, 3.0, "200 stored")
    fast.wait(200, timeout=3.0)
    assert time.monotonic() - started < 3.0
    assert slow.requests == []
    assert texts(fast.requests) == [alert(i, "Generic2").text for i in range(200)]
    recovered.set()
    slow.wait(200, timeout=10.0)
    assert texts(slow.requests) == [alert(i, "Generic1").text for i in range(200)]


def test_alerts_pending_during_an_outage_survive_kill_9_and_arrive_in_order(
    tmp_path: Path,
    service: Callable[[], WebhookServer],
    notify: Callable[..., Stage],
) -> None:
    """1. the service answers 503; ten alerts are accepted and retried;
    2. notify gets SIGKILL; the service comes back; notify starts again.
    Result: the ten alerts arrive, once each, in the order they were sent."""
    hook = service()
    up = threading.Event()
    hook.replies = lambda req: Reply() if up.is_set() else Reply(503)
    env = {
        "GENERIC1_WEBHOOK_URL": f"{hook.url}/hook",
        **events_env(("Generic1", "substr", "x", "m")),
    }
    first = notify(env)
    first.send(*(alert(i, "Generic1") for i in range(10)))
    wait_for(lambda: outbox_rows(tmp_path, "Generic1") == 10, 5.0, "10 stored")
    first.outcome("Generic1-0", "retrying")
    first.proc.popen.send_signal(signal.SIGKILL)
    assert first.proc.popen.wait(5) == -signal.SIGKILL
    up.set()
    before = len(hook.requests)
    second = notify(env, module=True)
    second.proc.wait_line("10 alerts pending from before")
    hook.wait(before + 10)
    delivered = [r for r in hook.requests[before:]]
    assert texts(delivered) == [alert(i, "Generic1").text for i in range(10)]
    second.outcome("Generic1-9", "delivered")
    assert "pending=0" in stopped_line(second)


def test_a_burst_for_a_chat_destination_becomes_digests_carrying_every_alert(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    hook = service()
    stage = notify(
        {
            "TELEGRAM_API_URL": hook.url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "42",
            "ALERTIK_DIGEST_AFTER": "5",
            **events_env(("Telegram", "substr", "x", "m")),
        }
    )
    stage.send(*(alert(i, "Telegram") for i in range(40)))
    stage.outcome("Telegram-39", "delivered")
    carried: list[str] = []
    for text in texts(hook.requests):
        lines = text.split("\n")
        if re.fullmatch(r"\d+ alerts:", lines[0]):
            assert int(lines[0].split()[0]) == len(lines) - 1
            carried.extend(lines[1:])
        else:
            carried.append(text)
    assert carried == [alert(i, "Telegram").text for i in range(40)]
    assert len(hook.requests) <= 3


def test_generic_webhooks_get_digests_only_when_asked(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    """(Without ALERTIK_GENERIC_DIGEST, see the slow-destination test: 200
    alerts, 200 requests.)"""
    hook = service()
    stage = notify(
        {
            "GENERIC4_WEBHOOK_URL": f"{hook.url}/hook",
            "ALERTIK_GENERIC_DIGEST": "yes",
            **events_env(("Generic4", "substr", "x", "m")),
        }
    )
    stage.send(*(alert(i, "Generic4") for i in range(20)))
    stage.outcome("Generic4-19", "delivered")
    carried: list[str] = []
    for text in texts(hook.requests):
        lines = text.split("\n")
        carried.extend(lines[1:] if lines[0].endswith(" alerts:") else lines)
    assert carried == [alert(i, "Generic4").text for i in range(20)]
    assert len(hook.requests) < 20


def test_a_long_alert_is_split_into_labelled_discord_messages(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    hook = service()
    hook.replies = [Reply(204, b"")]
    stage = notify(
        {
            "DISCORD_WEBHOOK_URL": f"{hook.url}/d",
            **events_env(("Discord", "substr", "x", "m")),
        }
    )
    words = " ".join(f"w{i:05d}" for i in range(700))  # 4899 characters
    stage.send(alert(1, "Discord", words))
    stage.outcome("Discord-1", "delivered")
    parts = texts(hook.requests, "content")
    assert [p[:6] for p in parts] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert all(len(p) <= 2000 for p in parts)
    assert " ".join(p[6:] for p in parts) == words


def test_an_alert_sent_twice_is_delivered_once(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    hook = service()
    stage = notify(
        {
            "GENERIC1_WEBHOOK_URL": f"{hook.url}/hook",
            **events_env(("Generic1", "substr", "x", "m")),
        }
    )
    stage.send(alert(1, "Generic1"), alert(1, "Generic1"))
    stage.outcome("Generic1-1", "delivered")
    stage.send(alert(1, "Generic1"), alert(2, "Generic1"))
    stage.outcome("Generic1-2", "delivered")
    assert texts(hook.requests) == [
        alert(1, "Generic1").text,
        alert(2, "Generic1").text,
    ]
    assert "duplicates=2" in stopped_line(stage)


def test_sigterm_stops_cleanly_and_counts_junk_unknown_and_pending_alerts(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    hook = service()
    hook.replies = [Reply(503)]
    stage = notify(
        {
            "GENERIC1_WEBHOOK_URL": f"{hook.url}/hook",
            **events_env(("Generic1", "substr", "x", "m")),
        }
    )
    stage.push.send(b"\x93not an alert")
    stage.send(alert(1, "Slack"), alert(1, "Generic1"), alert(2, "Generic1"))
    stage.outcome("Generic1-1", "retrying")
    line = stopped_line(stage)
    assert "received=4 stored=2 duplicates=0 malformed=1 unknown=1" in line
    assert "pending=2" in line
    out = stage.proc.output
    assert re.search(r"ERROR alert Slack-1 for 'Slack' dropped", out)
    assert "WARNING malformed messages skipped: 1" in out


def test_tokens_and_webhook_secrets_never_reach_the_log(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    """1. Telegram points at a closed port (requests errors name the URL);
    2. Slack refuses with 403, Generic1 fails with a body that echoes its path;
    3. DEBUG logging, so urllib3 would print request paths if it could.
    Result: neither the token nor any webhook secret is in the output."""
    hook = service()

    def reply(req: Request) -> Reply:
        if req.path.startswith("/services"):
            return Reply(403, b"invalid_token")
        return Reply(500, f"no route for {req.path}".encode())

    hook.replies = reply
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    try:
        stage = notify(
            {
                "ALERTIK_LOG_LEVEL": "DEBUG",
                "TELEGRAM_API_URL": f"http://127.0.0.1:{closed.getsockname()[1]}",
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_CHAT_ID": "42",
                "SLACK_WEBHOOK_URL": f"{hook.url}/services/T0/B0/slackSECRET99",
                "GENERIC1_WEBHOOK_URL": (
                    f"{hook.url}/hooks/genericSECRET77?k=querySECRET55"
                ),
                **events_env(
                    ("Telegram", "substr", "x", "m"),
                    ("Slack", "substr", "x", "m"),
                    ("Generic1", "substr", "x", "m"),
                ),
            }
        )
        stage.send(alert(1, "Telegram"), alert(1, "Slack"), alert(1, "Generic1"))
        stage.outcome("Slack-1", "failed")
        stage.outcome("Telegram-1", "retrying")
        stage.outcome("Generic1-1", "retrying")
        stage.proc.wait_line("Connection refused")
        stopped_line(stage)
    finally:
        closed.close()
    out = stage.proc.output
    for secret in (
        "SECRETtokenVALUE",
        "123456:",
        "slackSECRET99",
        "genericSECRET77",
        "querySECRET55",
    ):
        assert secret not in out
    for d in stage.deliveries:
        assert "SECRET" not in d.detail
    assert "Slack (http://127.0.0.1:" in out
    assert "HTTP 403: invalid_token" in out
    assert "HTTP 500: no route for <redacted>" in out


def run_send_test(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alertik", "send-test", *args],
        env=base_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_send_test_delivers_through_the_real_path_and_reports_the_status(
    tmp_path: Path, service: Callable[[], WebhookServer]
) -> None:
    hook = service()
    hook.replies = [Reply(503), Reply()]
    env = {
        "TELEGRAM_API_URL": hook.url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_CHAT_ID": "42",
        **events_env(("Telegram", "substr", "x", "m")),
    }
    done = run_send_test(tmp_path, env, "Telegram", TRICKY)
    assert done.returncode == 0, done.stderr
    assert "delivered, HTTP 200, 2 attempts" in done.stdout
    assert texts(hook.requests) == [TRICKY, TRICKY]
    assert TOKEN not in done.stdout + done.stderr


def test_send_test_reports_a_refusal_with_the_body_and_exits_1(
    tmp_path: Path, service: Callable[[], WebhookServer]
) -> None:
    hook = service()
    hook.replies = [Reply(403, b"invalid_token")]
    env = {
        "SLACK_WEBHOOK_URL": f"{hook.url}/services/T/B/secret",
        **events_env(("Slack", "substr", "x", "m")),
    }
    done = run_send_test(tmp_path, env, "Slack")
    assert done.returncode == 1
    assert "NOT delivered (refused): HTTP 403: invalid_token" in done.stdout
    assert hook.requests[0].json()["text"].startswith("alertik test notification from")
    assert "secret" not in done.stdout + done.stderr


def test_send_test_checks_a_notifier_that_no_event_uses_yet(
    tmp_path: Path, service: Callable[[], WebhookServer]
) -> None:
    hook = service()
    done = run_send_test(
        tmp_path, {"GENERIC2_WEBHOOK_URL": f"{hook.url}/g2"}, "Generic2", "hello"
    )
    assert done.returncode == 0, done.stderr
    assert texts(hook.requests) == ["hello"]


@pytest.mark.parametrize("args", [["Nope"], ["Discord"], []])
def test_send_test_exits_2_on_a_configuration_error(
    tmp_path: Path, args: list[str]
) -> None:
    env = {
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/s",
        **events_env(("Slack", "substr", "x", "m")),
    }
    done = run_send_test(tmp_path, env, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr


def test_an_unwritable_state_dir_still_delivers_from_memory_and_says_so(
    tmp_path: Path,
    service: Callable[[], WebhookServer],
    notify: Callable[..., Stage],
) -> None:
    hook = service()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the state directory should go")
    stage = notify(
        {
            "ALERTIK_STATE_DIR": str(blocker / "state"),
            "GENERIC1_WEBHOOK_URL": f"{hook.url}/hook",
            **events_env(("Generic1", "substr", "x", "m")),
        }
    )
    assert "outbox in memory" in stage.proc.wait_line("notify listening on")
    assert "keeping alerts in memory" in stage.proc.wait_line("ERROR outbox")
    stage.send(alert(1, "Generic1"))
    stage.outcome("Generic1-1", "delivered")
    assert texts(hook.requests) == [alert(1, "Generic1").text]


def test_through_the_whole_pipeline_a_slow_webhook_stalls_nothing_upstream(
    tmp_path: Path, spawn: Callable[..., Proc], service: Callable[[], WebhookServer]
) -> None:
    """1. ingest, matcher and notify run; Generic1 takes 3 s per answer,
    Generic2 answers at once; every line matches an event for each;
    2. 200 syslog datagrams arrive in a burst;
    3. Generic1 recovers.
    Result: before Generic1's first answer every line is archived by the
    matcher and Generic2 has all 200 alerts; then Generic1 gets all 200, in
    order."""
    slow, fast = service(), service()
    recovered = threading.Event()
    slow.replies = lambda req: Reply() if recovered.is_set() else Reply(delay=3.0)
    env = base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL=f"{slow.url}/slow",
        GENERIC2_WEBHOOK_URL=f"{fast.url}/fast",
        **events_env(
            ("Generic1", "regex", r"burst ([0-9]+)", "slow @1"),
            ("Generic2", "regex", r"burst ([0-9]+)", "fast @1"),
        ),
    )
    notify = spawn("notify", env={**env, "ALERTIK_NOTIFY_ADDR": "tcp://127.0.0.1:*"})
    line = notify.wait_line("notify listening on")
    notify_addr = line.split("listening on ")[1].split()[0]
    matcher = spawn(
        "matcher",
        env={
            **env,
            "ALERTIK_MATCHER_ADDR": "tcp://127.0.0.1:*",
            "ALERTIK_NOTIFY_ADDR": notify_addr,
        },
    )
    matcher_addr = endpoint_of(matcher, "matcher")
    ingest = spawn("ingest", env={**env, "ALERTIK_MATCHER_ADDR": matcher_addr})
    started = time.monotonic()
    send_udp(
        udp_port_of(ingest), *(f"system,info burst {i}".encode() for i in range(200))
    )
    archive = tmp_path / "log.txt"
    wait_for(
        lambda: archive.exists() and archive.read_text().count(" burst ") == 200,
        3.0,
        "200 archived lines",
    )
    fast.wait(200, timeout=3.0)
    assert time.monotonic() - started < 3.0
    assert slow.requests == []
    assert [t.split(",")[0] for t in texts(fast.requests)] == [
        f"fast {i}" for i in range(200)
    ]
    recovered.set()
    slow.wait(200, timeout=10.0)
    assert [t.split(",")[0] for t in texts(slow.requests)] == [
        f"slow {i}" for i in range(200)
    ]
