"""Hostile and broken services: what notify sends, reads, waits for and logs.

Each test runs the real delivery path (``alertik send-test``, which goes
through the same payload builder, session, timeouts, retries and pacing as
notify) or ``alertik check`` against a local HTTP server that misbehaves as a
real service or an attacker did.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import base_env

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
