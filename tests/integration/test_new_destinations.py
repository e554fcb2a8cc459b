"""ntfy, Gotify, Pushover, Matrix, e-mail, Telegram topics and Apprise, through a
real notify process, against local servers that check each request as the
service would (tests/standins.py, aiosmtpd for e-mail).
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.integration import test_notify_stage as base
from tests.integration.test_notify_stage import TRICKY, Stage, alert, stopped_line
from tests.standins import MatrixServer, Pair, make_cert
from tests.support import Reply, Request, WebhookServer, base_env, events_env

# The notify-process and fake-service fixtures of the notify stage's tests.
notify = base.notify
service = base.service

TOKEN = "123456:SECRETtokenVALUE-xyz"
PUSH_USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
PUSH_TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
NTFY_TOKEN = "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2"
MATRIX_TOKEN = "syt_YWxlcnRpaw_SecretMatrixToken_0x"
ROOM = "!AbCdEfGh:example.test"


@pytest.fixture
def matrix() -> Iterator[MatrixServer]:
    server = MatrixServer()
    server.add_user("@alertik:example.test", MATRIX_TOKEN, ROOM)
    yield server
    server.close()


def matrix_env(server: MatrixServer) -> dict[str, str]:
    return {
        "ALERTIK_MATRIX_HOMESERVER": server.url,
        "ALERTIK_MATRIX_ROOM": ROOM,
        "ALERTIK_MATRIX_ACCESS_TOKEN": MATRIX_TOKEN,
    }


def test_ntfy_gotify_pushover_and_telegram_topics_get_their_documented_requests(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    """1. one alert with tricky text to each, configured by ALERTIK_* variables;
    2. each request is checked as the service reads it.
    Result: every field as documented, the text unchanged, secrets only
    where the service expects them."""
    hook = service()
    stage = notify(
        {
            "ALERTIK_NTFY_URL": f"{hook.url}/ntfy",
            "ALERTIK_NTFY_TOPIC": "router_alerts",
            "ALERTIK_NTFY_PRIORITY": "4",
            "ALERTIK_NTFY_TAGS": "warning,rotating_light",
            "ALERTIK_NTFY_TITLE": "Router é",
            "ALERTIK_NTFY_TOKEN": NTFY_TOKEN,
            "ALERTIK_GOTIFY_URL": f"{hook.url}/gotify",
            "ALERTIK_GOTIFY_TOKEN": "AppToken.1",
            "ALERTIK_GOTIFY_PRIORITY": "7",
            "ALERTIK_PUSHOVER_API_URL": f"{hook.url}/pushover",
            "ALERTIK_PUSHOVER_USER": PUSH_USER,
            "ALERTIK_PUSHOVER_TOKEN": PUSH_TOKEN,
            "ALERTIK_PUSHOVER_PRIORITY": "2",
            "ALERTIK_PUSHOVER_RETRY": "60",
            "ALERTIK_PUSHOVER_EXPIRE": "3600",
            "TELEGRAM_API_URL": f"{hook.url}/tg",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "-1001234567890",
            "ALERTIK_TELEGRAM_THREAD_ID": "42",
            **events_env(
                *(
                    (n, "substr", "x", "m")
                    for n in ("Ntfy", "Gotify", "Pushover", "Telegram")
                )
            ),
        }
    )
    for name in ("Ntfy", "Gotify", "Pushover", "Telegram"):
        stage.send(alert(0, name, TRICKY))
    by_path = {r.path: r for r in hook.wait(4)}
    assert set(by_path) == {
        "/ntfy/",
        "/gotify/message",
        "/pushover/1/messages.json",
        f"/tg/bot{TOKEN}/sendMessage",
    }
    ntfy = by_path["/ntfy/"]
    assert ntfy.headers["content-type"] == "application/json"
    assert ntfy.headers["authorization"] == f"Bearer {NTFY_TOKEN}"
    assert ntfy.json() == {
        "topic": "router_alerts",
        "message": TRICKY,
        "title": "Router é",
        "priority": 4,
        "tags": ["warning", "rotating_light"],
    }
    gotify = by_path["/gotify/message"]
    assert gotify.headers["x-gotify-key"] == "AppToken.1"
    assert gotify.json() == {"message": TRICKY, "priority": 7}
    pushover = by_path["/pushover/1/messages.json"]
    assert pushover.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(pushover.body.decode("ascii"), strict_parsing=True) == {
        "token": [PUSH_TOKEN], "user": [PUSH_USER], "message": [TRICKY],
        "priority": ["2"], "retry": ["60"], "expire": ["3600"],
    }  # fmt: skip
    assert by_path[f"/tg/bot{TOKEN}/sendMessage"].json() == {
        "chat_id": -1001234567890,
        "message_thread_id": 42,
        "text": TRICKY,
    }
    for name in ("Ntfy", "Gotify", "Pushover", "Telegram"):
        stage.outcome(f"{name}-0", "delivered")
    out = stopped_line(stage) + stage.proc.output
    for secret in (NTFY_TOKEN, PUSH_USER, PUSH_TOKEN, "AppToken.1", "router_alerts"):
        assert secret not in out


def test_a_matrix_message_retried_after_a_lost_answer_is_shown_once(
    matrix: MatrixServer, notify: Callable[..., Stage]
) -> None:
    """1. the homeserver takes the first PUT, then the connection drops before
    the answer (as when a proxy times out);
    2. notify retries with the same transaction id.
    Result: the room holds exactly one event; a 429 waits retry_after_ms."""
    lost = {"done": False}

    def once(hit: Any) -> str | None:
        if not lost["done"]:
            lost["done"] = True
            matrix.limited = [300]  # the next new message: rate limited
            return "reset"
        return None

    matrix.fault = once
    stage = notify({**matrix_env(matrix), **events_env(("Matrix", "substr", "x", "m"))})
    stage.send(alert(1, "Matrix", TRICKY), alert(2, "Matrix"))
    stage.outcome("Matrix-1", "delivered")
    stage.outcome("Matrix-2", "delivered")
    events = matrix.rooms[ROOM]
    assert [e.content for e in events] == [
        {"msgtype": "m.notice", "body": TRICKY},
        {"msgtype": "m.notice", "body": alert(2, "Matrix").text},
    ]
    puts = [h.path for h in matrix.hits]
    # The lost answer's PUT, its retry with the same id, the 429 and its retry.
    assert puts[0] == puts[1] and puts[2] == puts[3] != puts[0]
    assert "HTTP 429" in stage.outcome("Matrix-2", "retrying").detail
    assert MATRIX_TOKEN not in stage.proc.output


def test_matrix_refusals_are_reported_with_the_homeservers_error(
    matrix: MatrixServer, notify: Callable[..., Stage]
) -> None:
    stage = notify(
        {
            **matrix_env(matrix),
            "ALERTIK_MATRIX_ROOM": "!other:example.test",
            **events_env(("Matrix", "substr", "x", "m")),
        }
    )
    stage.send(alert(1, "Matrix"))
    failed = stage.outcome("Matrix-1", "failed")
    assert failed.status == 403
    assert "M_FORBIDDEN" in failed.detail
    assert matrix.rooms[ROOM] == []


def test_telegram_follows_a_group_upgraded_to_a_supergroup_once_and_says_so(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    """1. the old group id is answered with 400 and migrate_to_chat_id;
    2. the new id is taken; a second alert follows.
    Result: both alerts reach the new chat; the old id was tried once; an
    ERROR line says what to change."""
    hook = service()
    old, new = -4001234567, -1004001234567

    def reply(req: Request) -> Reply:
        if req.json()["chat_id"] == old:
            body = {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a "
                "supergroup chat",
                "parameters": {"migrate_to_chat_id": new},
            }
            return Reply(400, json.dumps(body).encode())
        return Reply(200, b'{"ok":true,"result":{}}')

    hook.replies = reply
    stage = notify(
        {
            "TELEGRAM_API_URL": hook.url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": str(old),
            **events_env(("Telegram", "substr", "x", "m")),
        }
    )
    stage.send(alert(1, "Telegram"))
    stage.outcome("Telegram-1", "delivered")
    stage.send(alert(2, "Telegram"))
    stage.outcome("Telegram-2", "delivered")
    assert [r.json()["chat_id"] for r in hook.requests] == [old, new, new]
    line = stage.proc.wait_line("became a supergroup")
    assert " ERROR " in line
    assert f"chat_id = {new}" in line
    assert TOKEN not in stage.proc.output


def test_telegram_that_moves_a_chat_twice_is_not_followed_again(
    service: Callable[[], WebhookServer], notify: Callable[..., Stage]
) -> None:
    hook = service()
    counter = {"n": 0}

    def reply(req: Request) -> Reply:
        counter["n"] += 1
        body = {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -100 - counter["n"]},
        }
        return Reply(400, json.dumps(body).encode())

    hook.replies = reply
    stage = notify(
        {
            "TELEGRAM_API_URL": hook.url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "-42",
            **events_env(("Telegram", "substr", "x", "m")),
        }
    )
    stage.send(alert(1, "Telegram"))
    failed = stage.outcome("Telegram-1", "failed")
    assert "again" in failed.detail
    assert len(hook.requests) == 2


# --- e-mail ------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server took, and the credentials it wants."""

    messages: list[Any] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    # SMTP code and text for DATA, when the server refuses.
    refuse: tuple[int, str] | None = None


class Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.box.refuse is not None:
            code, text = self.box.refuse
            return f"{code} {text}"
        self.box.messages.append(envelope)
        self.box.arrived.set()
        return "250 OK"


def authenticator(box: Mailbox) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(
        server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
    ) -> Any:
        ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (
            b"alertik",
            b"mail-pa55word",
        )
        if isinstance(auth, LoginPassword):
            box.logins.append((auth.login, auth.password))
        return AuthResult(success=ok, handled=False)

    return check


@pytest.fixture
def cert(tmp_path: Path) -> Pair:
    return make_cert(tmp_path / "tls")


@pytest.fixture
def smtp(cert: Pair) -> Iterator[Callable[[str], tuple[Mailbox, int]]]:
    """Start aiosmtpd on loopback: "starttls" (STARTTLS required before
    AUTH) or "tls" (implicit TLS), with a throwaway certificate."""
    from aiosmtpd.controller import Controller

    controllers: list[Any] = []

    def start(security: str) -> tuple[Mailbox, int]:
        box = Mailbox()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert.cert, cert.key)
        port = free_port()
        common = {
            "hostname": "127.0.0.1",
            "port": port,
            "authenticator": authenticator(box),
        }
        if security == "tls":
            # The whole connection is TLS; aiosmtpd's auth_require_tls only
            # knows STARTTLS, and would hide AUTH here.
            controller = Controller(
                Handler(box), ssl_context=context, auth_require_tls=False, **common
            )
        else:
            controller = Controller(
                Handler(box),
                tls_context=context,
                require_starttls=True,
                auth_require_tls=True,
                **common,
            )
        controller.start()
        controllers.append(controller)
        return box, port

    yield start
    for c in controllers:
        c.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def email_env(port: int, security: str, **extra: str) -> dict[str, str]:
    return {
        "ALERTIK_EMAIL_HOST": "localhost",
        "ALERTIK_EMAIL_PORT": str(port),
        "ALERTIK_EMAIL_SECURITY": security,
        "ALERTIK_EMAIL_USER": "alertik",
        "ALERTIK_EMAIL_PASSWORD": "mail-pa55word",
        "ALERTIK_EMAIL_FROM": "alertik <alertik@example.test>",
        "ALERTIK_EMAIL_TO": "ops@example.test, Night Shift <night@example.test>",
        **events_env(("Email", "substr", "x", "m")),
        **extra,
    }


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_e_mail_goes_over_tls_with_login_one_message_per_alert(
    security: str,
    smtp: Callable[[str], tuple[Mailbox, int]],
    notify: Callable[..., Stage],
    cert: Pair,
) -> None:
    """1. an SMTP server that wants TLS (STARTTLS on the submission port, or
    implicit TLS) before AUTH, with a certificate notify trusts (its CA file
    through SSL_CERT_FILE);
    2. one alert.
    Result: one message to both recipients, text/plain UTF-8, the text
    intact, logged in once with the right password, nothing in clear."""
    box, port = smtp(security)
    stage = notify({**email_env(port, security), "SSL_CERT_FILE": cert.cert})
    stage.send(alert(1, "Email", TRICKY))
    delivered = stage.outcome("Email-1", "delivered")
    assert delivered.status == 250
    (envelope,) = box.messages
    assert envelope.mail_from == "alertik@example.test"
    assert envelope.rcpt_tos == ["ops@example.test", "night@example.test"]
    import email
    import email.policy

    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == 'alertik: he said "hi" \\ C:\\path'
    assert msg["From"] == "alertik <alertik@example.test>"
    assert msg.get_content_type() == "text/plain"
    # Lines end in CRLF on the wire, as SMTP wants; the text is intact.
    assert msg.get_content().splitlines() == TRICKY.splitlines()
    assert box.logins == [(b"alertik", b"mail-pa55word")]
    assert "SMTP 250" in stage.proc.wait_line("delivered alert Email-1")
    assert "mail-pa55word" not in stage.proc.output


def test_an_smtp_refusal_is_final_and_a_certificate_not_trusted_is_retried(
    smtp: Callable[[str], tuple[Mailbox, int]],
    notify: Callable[..., Stage],
    cert: Pair,
    tmp_path: Path,
) -> None:
    box, port = smtp("tls")
    box.refuse = (554, "5.7.1 Message rejected as spam")
    stage = notify({**email_env(port, "tls"), "SSL_CERT_FILE": cert.cert})
    stage.send(alert(1, "Email"))
    failed = stage.outcome("Email-1", "failed")
    assert failed.status == 554
    assert "SMTP 554" in failed.detail and "rejected as spam" in failed.detail
    # Without the CA, the certificate is not trusted: never sent, retried.
    stopped_line(stage)
    untrusting = notify(
        {**email_env(port, "tls"), "ALERTIK_STATE_DIR": str(tmp_path / "other")}
    )
    untrusting.send(alert(2, "Email"))
    retry = untrusting.outcome("Email-2", "retrying")
    assert "CERTIFICATE_VERIFY_FAILED" in retry.detail
    assert box.logins == [(b"alertik", b"mail-pa55word")]


def test_a_server_that_does_not_offer_starttls_is_not_used_in_clear(
    notify: Callable[..., Stage],
) -> None:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        stage = notify(email_env(port, "starttls"))
        stage.send(alert(1, "Email"))
        failed = stage.outcome("Email-1", "failed")
        assert "does not offer STARTTLS" in failed.detail
        assert box.messages == []
    finally:
        controller.stop()


# --- send-test -----------------------------------------------------------------


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


def test_send_test_works_for_each_new_destination(
    tmp_path: Path,
    service: Callable[[], WebhookServer],
    matrix: MatrixServer,
    smtp: Callable[[str], tuple[Mailbox, int]],
    cert: Pair,
) -> None:
    hook = service()
    box, port = smtp("starttls")
    (tmp_path / "pushover.token").write_text(PUSH_TOKEN + "\n")
    env = {
        "ALERTIK_NTFY_URL": hook.url,
        "ALERTIK_NTFY_TOPIC": "t1",
        "ALERTIK_GOTIFY_URL": hook.url,
        "ALERTIK_GOTIFY_TOKEN": "AppToken.1",
        "ALERTIK_PUSHOVER_API_URL": hook.url,
        "ALERTIK_PUSHOVER_USER": PUSH_USER,
        "ALERTIK_PUSHOVER_TOKEN_FILE": str(tmp_path / "pushover.token"),
        **matrix_env(matrix),
        **email_env(port, "starttls"),
        "SSL_CERT_FILE": cert.cert,
    }
    for name, status in [
        ("Ntfy", "HTTP 200"),
        ("Gotify", "HTTP 200"),
        ("Pushover", "HTTP 200"),
        ("Matrix", "HTTP 200"),
        ("Email", "SMTP 250"),
    ]:
        done = run_send_test(tmp_path, env, name, f"hello {name}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"delivered, {status}, 1 attempt" in done.stdout
    bodies = [r.json() if r.path != "/1/messages.json" else None for r in hook.requests]
    assert bodies[:2] == [
        {"topic": "t1", "message": "hello Ntfy"},
        {"message": "hello Gotify"},
    ]
    pushed = parse_qs(hook.requests[2].body.decode())
    assert pushed["token"] == [PUSH_TOKEN] and pushed["message"] == ["hello Pushover"]
    assert [e.content["body"] for e in matrix.rooms[ROOM]] == ["hello Matrix"]
    assert box.messages[0].content.decode().rstrip().endswith("hello Email")
