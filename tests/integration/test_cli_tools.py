"""``alertik check`` and ``alertik test``: what an admin sees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import base_env, events_env


def alertik(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alertik", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


def rules_env(tmp_path: Path) -> dict[str, str]:
    return base_env(
        tmp_path,
        TELEGRAM_BOT_TOKEN="123456:SECRET-TOKEN",
        TELEGRAM_CHAT_ID="-1009",
        DISCORD_WEBHOOK_URL="https://discord.test/api/webhooks/1/HOOKSECRET",
        **events_env(
            ("Telegram", "substr", "login failure", "Failed login from @{sender}"),
            (
                "Discord",
                "regex",
                r"user ([a-z]+) logged in from ([0-9.]+) via (web|webfig|winbox)",
                "@1 logged in from @2 via @3",
            ),
            ("Discord", "regex", r"[\d.]+ assigned", "lease"),
        ),
    )


def test_check_prints_the_configuration_without_secrets(tmp_path: Path) -> None:
    proc = alertik("check", env=rules_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert [r["notifier"] for r in shown["rules"]] == ["Telegram", "Discord", "Discord"]
    everything = proc.stdout + proc.stderr
    assert "SECRET-TOKEN" not in everything
    assert "HOOKSECRET" not in everything
    assert "warning: EVENT2_MATCH_STR:" in proc.stderr
    assert "configuration OK: 3 events" in proc.stderr


def test_test_shows_rules_captures_and_exact_text(tmp_path: Path) -> None:
    env = {**rules_env(tmp_path), "ALERTIK_TIME_SUFFIX": ""}
    proc = alertik(
        "test",
        "system,info,account user admin logged in from 192.0.2.5 via webfig",
        "nothing to see",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "line: system,info,account user admin logged in from 192.0.2.5 via webfig",
        "  EVENT1 -> Discord",
        "    @1 = 'admin'",
        "    @2 = '192.0.2.5'",
        "    @3 = 'webfig'",
        "    text: admin logged in from 192.0.2.5 via webfig",
        "no match: nothing to see",
    ]


def test_test_reads_stdin_and_exits_1_when_nothing_matches(tmp_path: Path) -> None:
    proc = alertik("test", env=rules_env(tmp_path), stdin="one\ntwo\n")
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["no match: one", "no match: two"]


def test_test_uses_the_sender_placeholder(tmp_path: Path) -> None:
    env = {**rules_env(tmp_path), "ALERTIK_TIME_SUFFIX": " (%Y)"}
    proc = alertik("test", "--sender", "10.1.2.3", "login failure", env=env)
    assert proc.returncode == 0
    assert "    text: Failed login from 10.1.2.3 (20" in proc.stdout


def test_test_exits_2_on_a_configuration_error(tmp_path: Path) -> None:
    env = base_env(tmp_path, **events_env(("Slack", "regex", "(a", "x")))
    env["SLACK_WEBHOOK_URL"] = "https://hooks.slack.test/x"
    proc = alertik("test", "a", env=env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: EVENT0_MATCH_STR: ")
