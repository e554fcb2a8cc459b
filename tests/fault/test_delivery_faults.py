"""Hostile and broken services: what notify sends, reads, waits for and logs.

Each test runs the real delivery path (``alertik send-test``, which goes
through the same payload builder, session, timeouts, retries and pacing as
notify) or ``alertik check`` against a local HTTP server that misbehaves as a
real service or an attacker did.
"""

from __future__ import annotations

import email.utils
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support import Reply, Request, WebhookServer, base_env

pytestmark = pytest.mark.fault

TOKEN = "123456:SECRETtokenVALUE-xyz"


def send_test(
    tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alertik", "send-test", *args],
        env=base_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [
        (429, "0"),
        (503, "0"),
        (429, email.utils.formatdate(time.time() - 3600, usegmt=True)),
    ],
    ids=["429-zero", "503-zero", "429-date-in-the-past"],
)
def test_a_retry_after_of_zero_or_in_the_past_does_not_retry_in_a_tight_loop(
    tmp_path: Path, webhook: WebhookServer, status: int, retry_after: str
) -> None:
    """1. for 2 s the service answers every request with status and
    Retry-After: 0 (or a date an hour ago), then 200;
    2. send-test sends one message (ALERTIK_RETRY_MAX_DELAY=0.5).
    Result: delivered after a handful of requests (the backoff is a floor,
    0.25-0.5 s here), and a handful of warnings, not thousands."""
    first: list[float] = []  # the 2 s start with the first request, not with
    # the test: on a loaded machine send-test may take that long to start

    def reply(req: Request) -> Reply:
        if not first:
            first.append(time.monotonic())
        if time.monotonic() - first[0] < 2.0:
            return Reply(status, b"slow down", {"Retry-After": retry_after})
        return Reply()

    webhook.replies = reply
    done = send_test(
        tmp_path, {"GENERIC1_WEBHOOK_URL": f"{webhook.url}/hook"}, "Generic1", "hi"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert 3 <= len(webhook.requests) <= 12, len(webhook.requests)
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert 1 <= len(warnings) <= 2, warnings


def test_a_huge_answer_is_read_only_in_part_and_still_delivers(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    """1. the service answers 200 with a body of 128 MiB;
    2. send-test sends one message.
    Result: delivered; the client hung up long before the service could
    write the body (a few MiB at most sit in socket buffers)."""
    webhook.replies = [Reply(200, b"ok", filler=128 * 1024 * 1024)]
    done = send_test(
        tmp_path, {"GENERIC1_WEBHOOK_URL": f"{webhook.url}/hook"}, "Generic1", "hi"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delivered, HTTP 200, 1 attempt" in done.stdout
    for _ in range(100):
        if webhook.written:
            break
        time.sleep(0.05)
    assert webhook.written and webhook.written[0] < 32 * 1024 * 1024, webhook.written


def test_a_huge_refusal_is_read_only_in_part_and_its_start_is_shown(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    webhook.replies = [
        Reply(400, b'{"error": "bad payload"}', filler=128 * 1024 * 1024)
    ]
    done = send_test(
        tmp_path, {"GENERIC1_WEBHOOK_URL": f"{webhook.url}/hook"}, "Generic1", "hi"
    )
    assert done.returncode == 1
    assert 'NOT delivered (refused): HTTP 400: {"error": "bad payload"}' in done.stdout
    assert len(done.stdout) < 1000


def test_an_answer_trickled_byte_by_byte_ends_at_the_request_deadline(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    """1. the service sends 200 and its headers, then the body one byte every
    0.2 s (1000 bytes: 200 s), each byte well within the read timeout;
    2. send-test with connect and read timeouts of 1 s (a 2 s deadline).
    Result: delivered (the status was 200) about 2 s later, not 200 s."""
    webhook.replies = [Reply(200, b"o" * 1000, trickle=0.2)]
    started = time.monotonic()
    done = send_test(
        tmp_path,
        {
            "GENERIC1_WEBHOOK_URL": f"{webhook.url}/hook",
            "ALERTIK_HTTP_CONNECT_TIMEOUT": "1",
            "ALERTIK_HTTP_READ_TIMEOUT": "1",
        },
        "Generic1",
        "hi",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delivered, HTTP 200, 1 attempt" in done.stdout
    assert time.monotonic() - started < 10


def test_trickled_headers_end_at_the_request_deadline_and_are_retried(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    """1. the first answer's headers never end (one byte every 0.2 s); the
    second answer is a plain 200;
    2. send-test with a 2 s request deadline.
    Result: the first attempt is given up after about 2 s as a timeout and
    the second delivers."""
    webhook.replies = [Reply(200, trickle=0.2, trickle_headers=True), Reply()]
    started = time.monotonic()
    done = send_test(
        tmp_path,
        {
            "GENERIC1_WEBHOOK_URL": f"{webhook.url}/hook",
            "ALERTIK_HTTP_CONNECT_TIMEOUT": "1",
            "ALERTIK_HTTP_READ_TIMEOUT": "1",
        },
        "Generic1",
        "hi",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delivered, HTTP 200, 2 attempts" in done.stdout
    assert "Timeout" in done.stderr
    assert time.monotonic() - started < 10


HOSTILE = (
    "login failure for user <!channel> <https://evil.test|Login here> "
    "[Login here](https://evil.test/x) <@123456> \\[not a link\\] a\\b & c "
    "from 192.0.2.7 via ssh"
)


def slack_shows(text: str) -> str:
    """Slack's three entities read back."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def markdown_shows(text: str) -> str:
    """A backslash escape read back, as Markdown does (Discord, Teams)."""
    return re.sub(r"\\([^0-9A-Za-z\s])", r"\1", text)


@pytest.mark.parametrize("notifier", ["Slack", "Discord", "Teams"])
def test_log_text_cannot_ping_a_channel_or_disguise_a_link(
    tmp_path: Path, webhook: WebhookServer, notifier: str
) -> None:
    """1. a log line carries a user name made of Slack and Markdown markup;
    2. send-test sends it to Slack, Discord and Teams.
    Result: each service gets the text escaped its own way (no unescaped <
    for Slack, no unescaped [ for Markdown, Discord mentions off) and shows
    exactly the text alertik would send."""
    done = send_test(
        tmp_path,
        {f"{notifier.upper()}_WEBHOOK_URL": f"{webhook.url}/hook"},
        notifier,
        HOSTILE,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = webhook.requests[0].json()
    if notifier == "Slack":
        text = document["text"]
        assert "<" not in text and ">" not in text
        assert slack_shows(text) == HOSTILE
    elif notifier == "Discord":
        text = document["content"]
        assert document["allowed_mentions"] == {"parse": []}
        assert not re.search(r"(?<!\\)(\\\\)*[\[\]]", text)
        assert "\\<@123456>" in text
        assert markdown_shows(text) == HOSTILE
    else:
        (attachment,) = document["attachments"]
        text = attachment["content"]["body"][0]["text"]
        assert not re.search(r"(?<!\\)(\\\\)*[\[\]]", text)
        assert markdown_shows(text) == HOSTILE


def leaked(secret: str, text: str) -> list[str]:
    """Every 5-character piece of secret that text contains."""
    pieces = [secret[i : i + 5] for i in range(len(secret) - 4)]
    return [piece for piece in pieces if piece in text]


@pytest.mark.parametrize(
    "body",
    [
        # The token straddles the 300th character of the excerpt.
        "e" * 282 + " " + TOKEN + " is not valid",
        # The token straddles the end of what is read of a long body, after
        # whitespace that shrinks to one space before the excerpt is cut.
        " " * (16 * 1024 - 10) + TOKEN + " and more",
        # The URL echoed percent-encoded, JSON-escaped, twice percent-encoded.
        "no route for " + quote(f"/bot{TOKEN}/sendMessage", safe=""),
        json.dumps({"url": f"http://x/bot{TOKEN}/sendMessage"}).replace("/", "\\/"),
        "bad key " + quote(quote(TOKEN, safe=""), safe=""),
        "key=" + "".join(f"\\u{ord(c):04x}" for c in TOKEN),
    ],
    ids=["at-the-cut", "after-spaces", "percent", "json", "percent-twice", "json-u"],
)
def test_a_token_echoed_in_an_error_body_never_reaches_the_output(
    tmp_path: Path, webhook: WebhookServer, body: str
) -> None:
    webhook.replies = [Reply(400, body.encode())]
    done = send_test(
        tmp_path,
        {
            "TELEGRAM_API_URL": webhook.url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_ID": "42",
        },
        "Telegram",
        "hi",
    )
    assert done.returncode == 1
    assert "NOT delivered (refused): HTTP 400" in done.stdout
    out = done.stdout + done.stderr
    assert leaked(TOKEN.split(":")[1], out) == []


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("GENERIC1_WEBHOOK_URL", "https://hooks.example.test:99999/secret"),
        ("SLACK_WEBHOOK_URL", "https://hooks.example.test:0/secret"),
        ("DISCORD_WEBHOOK_URL", "https://hooks.example.test:80x/secret"),
        ("TELEGRAM_API_URL", "http://127.0.0.1:70000"),
    ],
)
def test_a_webhook_url_with_an_invalid_port_is_refused_by_check(
    tmp_path: Path, variable: str, url: str
) -> None:
    notifier = {
        "GENERIC1_WEBHOOK_URL": "Generic1",
        "SLACK_WEBHOOK_URL": "Slack",
        "DISCORD_WEBHOOK_URL": "Discord",
        "TELEGRAM_API_URL": "Telegram",
    }[variable]
    env = base_env(
        tmp_path,
        ENV_EVENTS="1",
        EVENT0_NOTIFIER=notifier,
        EVENT0_MATCH_TYPE="substr",
        EVENT0_MATCH_STR="x",
        EVENT0_MASK_MSG="y",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_CHAT_ID="42",
        **{variable: url},
    )
    done = subprocess.run(
        [sys.executable, "-m", "alertik", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: {variable}: ")
    assert "port" in done.stderr
    assert "secret" not in done.stderr
