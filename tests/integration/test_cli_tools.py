"""``alertik check`` and ``alertik test``: what an admin sees."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support import WebhookServer, base_env, events_env


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


def test_test_says_when_no_rule_is_configured(tmp_path: Path) -> None:
    proc = alertik("test", "login failure for user admin", env=base_env(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(
        "alertik test: no rules are configured, so no line can match; set ENV_EVENTS"
    )
    assert proc.stderr.count("\n") == 1


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


def test_check_warns_about_what_the_configuration_leaves_out(tmp_path: Path) -> None:
    """1. A configuration with a misspelt setting, an event past ENV_EVENTS and
    an empty match string;
    2. `alertik check`.
    Result: it is accepted (exit 0) with one warning line for each, counted."""
    env = {
        **rules_env(tmp_path),
        "ALERTIK_UDP_PROT": "5141",
        "EVENT3_MATCH_STR": "forgotten",
        "EVENT0_MATCH_STR": "",
    }
    proc = alertik("check", env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning: " in line]
    assert warnings[:3] == [
        "warning: ALERTIK_UDP_PROT: is not an alertik setting and is ignored; "
        "did you mean ALERTIK_UDP_PORT?",
        "warning: EVENT3_MATCH_STR: ignored: ENV_EVENTS=3 counts events 0 to 2; "
        "set ENV_EVENTS=4 to use EVENT3",
        "warning: EVENT0_MATCH_STR: is empty, so EVENT0 matches every message",
    ]
    assert "configuration OK: 3 events, 0 static events, stages " in proc.stderr
    assert f", {len(warnings)} warnings" in proc.stderr


def test_check_warns_when_events_are_set_without_env_events(tmp_path: Path) -> None:
    env = {k: v for k, v in rules_env(tmp_path).items() if k != "ENV_EVENTS"}
    proc = alertik("check", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (
        "warning: ENV_EVENTS: is not set, so EVENT0_*, EVENT1_*, EVENT2_* are "
        "ignored; set ENV_EVENTS=3 to use them\n"
    ) in proc.stderr


def test_send_test_gives_up_at_once_when_nothing_listens(tmp_path: Path) -> None:
    """1. A generic webhook URL whose port is bound but not listening, so
    every connection is refused;
    2. `alertik send-test Generic1`.
    Result: exit 1 after two attempts, well before the 30 s budget, with one
    line on stdout that says the connection was refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))  # bound, never listening: connect is refused
    port = holder.getsockname()[1]
    env = base_env(tmp_path, GENERIC1_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook")
    started = time.monotonic()
    try:
        proc = alertik("send-test", "Generic1", "hi", env=env)
    finally:
        holder.close()
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, lines
    assert "NOT delivered (connection refused 2 times: nothing listens" in lines[0]
    assert took < 10, took


def test_tap_says_once_that_no_stage_runs_with_that_run_directory(
    tmp_path: Path,
) -> None:
    """1. An empty run directory: no stage runs there;
    2. `alertik tap ingest --run-dir DIR --timeout 1.5` (libzmq retries the
    connection about ten times in that time).
    Result: one status line saying there is no such socket, nothing on
    stdout, exit 0 (a timeout without --count)."""
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    proc = alertik(
        "tap", "ingest", "--run-dir", str(run_dir), "--timeout", "1.5",
        env=base_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    said = [line for line in proc.stderr.splitlines() if "nothing to read" in line]
    assert said == [
        f"tap: nothing to read at ipc://{run_dir}/tap-ingest: no such socket; no "
        "ingest runs with this run directory (ALERTIK_RUN_DIR, or --run-dir); "
        "waiting for one"
    ]


def docs_example(tmp_path: Path) -> dict[str, str]:
    """docs/RULES.md's complete example, its secrets in files under tmp_path."""
    from tests.support import REPO

    doc = (REPO / "docs" / "RULES.md").read_text(encoding="utf-8")
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "tg").write_text("123456:SECRET-TOKEN\n")
    (secrets / "slack_noc").write_text("https://hooks.slack.test/services/HOOKSECRET\n")
    rules = tmp_path / "rules.toml"
    rules.write_text(example.replace("/run/secrets/", f"{secrets}/"))
    return base_env(
        tmp_path,
        ALERTIK_RULES_FILE=str(rules),
        GENERIC1_WEBHOOK_URL="https://generic.test/GENERICSECRET",
    )


LOGIN_7 = (
    "system,error,critical,account login failure for user admin from 192.0.2.7 via ssh"
)


def test_check_validates_the_documented_example_without_showing_secrets(
    tmp_path: Path,
) -> None:
    result = alertik("check", env=docs_example(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "3 rules in" in result.stderr
    shown = json.loads(result.stdout)
    assert [d["name"] for d in shown["notify"]["destinations"]] == [
        "ops",
        "noc",
        "Generic1",
    ]
    for secret in ("SECRET-TOKEN", "HOOKSECRET", "GENERICSECRET"):
        assert secret not in result.stdout + result.stderr


def test_test_shows_threshold_progress_vetoes_and_each_destinations_payload(
    tmp_path: Path,
) -> None:
    lines = [LOGIN_7] * 4 + [LOGIN_7.replace("192.0.2.7", "10.0.0.7"), LOGIN_7]
    result = alertik("test", *lines, env=docs_example(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        "  ssh-bruteforce -> ops, Generic1\n    @1 = 'admin'\n    @2 = "
        "'192.0.2.7'\n    key: 192.0.2.7\n    threshold 1/5 within 60s for "
        "192.0.2.7\n" in out
    )
    assert "threshold 4/5 within 60s for 192.0.2.7" in out
    assert "  ssh-bruteforce: vetoed by exclude from 10\\.0\\.0\\.\n" in out
    assert "threshold reached: 5/5 for 192.0.2.7" in out
    assert (
        '    to ops: {"chat_id":-1001234567890,"message_thread_id":42,"text":'
        '"Brute force from 192.0.2.7 (user admin) on 192.0.2.1, at: ' in out
    )
    assert (
        '    to Generic1: {"text":"Brute force from 192.0.2.7 (user admin) on '
        "192.0.2.1, at: " in out
    )
    assert "SECRET" not in out


def test_send_test_reaches_a_destination_named_in_the_rules_file(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f'[destinations.hook]\ntype = "generic"\nurl = "{webhook.url}/h"\n'
    )
    env = base_env(tmp_path, ALERTIK_RULES_FILE=str(rules))
    result = alertik("send-test", "hook", "hello", env=env)
    assert result.returncode == 0, result.stderr
    assert webhook.wait(1)[0].json() == {"text": "hello"}
    unknown = alertik("send-test", "nope", env=env)
    assert unknown.returncode == 2
    assert "is not a configured destination nor a notifier" in unknown.stderr


def test_check_says_when_the_udp_port_is_taken_or_a_directory_not_writable(
    tmp_path: Path,
) -> None:
    """What would stop `alertik run` on this host is said before it runs."""
    import socket

    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        env = base_env(
            tmp_path,
            ALERTIK_UDP_PORT=str(taken.getsockname()[1]),
            ALERTIK_STATE_DIR=str(blocked / "state"),
        )
        proc = alertik("check", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "warning: ALERTIK_UDP_PORT: cannot listen on udp" in proc.stderr
    assert f"warning: ALERTIK_STATE_DIR: {blocked} is not writable" in proc.stderr


def test_health_stays_light_it_imports_neither_the_configuration_nor_argparse(
    tmp_path: Path,
) -> None:
    """A container runs it every few seconds (HEALTHCHECK)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "alertik", "health"],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith("unhealthy: alertik run is not answering at ")
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()}
    assert "alertik.health" in imported
    assert not {"alertik.common.config", "argparse", "msgspec"} & imported
