"""Configuration fuzzing: any environment starts, or exits 2 naming one variable.

Every variable alertik reads gets values from a strategy of plausible and
hostile text (empty, huge, signed, fractional, Unicode, the surrogates that
stand for invalid bytes in os.environ, regex and mask syntax, URLs and
endpoints). ``alertik check`` (the start-up path of ``alertik run``: load the
configuration, compile every rule) must then exit 0, or exit 2 with exactly
one line ``error: VARIABLE: ...`` naming a variable alertik reads; never a
traceback. The stages' own start-up (listening sockets, ZeroMQ endpoints) is
checked with values that pass the configuration but cannot be used.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from alertik import cli
from alertik.common import config, sockets
from alertik.common.config import NOTIFIERS, ConfigError
from tests.conftest import base_env

pytestmark = pytest.mark.fault

# Every fixed-name variable alertik reads (common/config.py); EVENTn_*,
# STATIC_EVENTn_NOTIFIER and GENERICn_WEBHOOK_URL are generated below.
VARIABLES = (
    "ENV_EVENTS",
    "STATIC_EVENTS_ENABLED",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
    "TELEGRAM_API_URL",
    "SLACK_WEBHOOK_URL",
    "TEAMS_WEBHOOK_URL",
    "TEAMS_WEBHOOK_FORMAT",
    "DISCORD_WEBHOOK_URL",
    "FORWARD_HOST",
    "FORWARD_PORT",
    "FORWARD_PROTOCOL",
    "ALERTIK_ALLOW_FROM",
    "ALERTIK_BIND",
    "ALERTIK_CURVE_ALLOWED_CLIENTS",
    "ALERTIK_CURVE_ALLOW_ANY",
    "ALERTIK_CURVE_SECRET_KEY",
    "ALERTIK_CURVE_SERVER_KEY",
    "ALERTIK_DIGEST_AFTER",
    "ALERTIK_DRAIN_SECONDS",
    "ALERTIK_FORWARDER_ADDR",
    "ALERTIK_FORWARDER_TAP",
    "ALERTIK_FORWARD_BUFFER",
    "ALERTIK_FORWARD_RESOLVE_EVERY",
    "ALERTIK_GENERIC_DIGEST",
    "ALERTIK_HTTP_CONNECT_TIMEOUT",
    "ALERTIK_HTTP_READ_TIMEOUT",
    "ALERTIK_INGEST_TAP",
    "ALERTIK_LOG_BACKUPS",
    "ALERTIK_LOG_FILE",
    "ALERTIK_LOG_LEVEL",
    "ALERTIK_LOG_MAX_BYTES",
    "ALERTIK_MATCHER_ADDR",
    "ALERTIK_MATCHER_TAP",
    "ALERTIK_MAX_MESSAGE_BYTES",
    "ALERTIK_NODE_NAME",
    "ALERTIK_NOTIFY_ADDR",
    "ALERTIK_NOTIFY_TAP",
    "ALERTIK_OUTBOX_MAX",
    "ALERTIK_OUTBOX_MAX_AGE",
    "ALERTIK_RETRY_MAX_DELAY",
    "ALERTIK_RUN_DIR",
    "ALERTIK_STATE_DIR",
    "ALERTIK_TCP_IDLE_TIMEOUT",
    "ALERTIK_TCP_MAX_CONNECTIONS",
    "ALERTIK_TCP_PORT",
    "ALERTIK_TIME_SUFFIX",
    "ALERTIK_TLS_INSECURE",
    "ALERTIK_UDP_PORT",
)
GENERATED = re.compile(
    r"EVENT\d+_(NOTIFIER|MATCH_TYPE|MATCH_STR|MASK_MSG)|STATIC_EVENT\d+_NOTIFIER"
    r"|GENERIC[1-4]_WEBHOOK_URL"
)
FIELDS = ("NOTIFIER", "MATCH_TYPE", "MATCH_STR", "MASK_MSG")
ONE_ERROR_LINE = re.compile(r"error: ([A-Z][A-Z0-9_]*): [^\n]+\n")

# Text as it can come out of os.environ: no NUL (execve cannot pass one), and
# undecodable bytes show up as the surrogates U+DC80..U+DCFF.
chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
escaped = st.sampled_from([chr(c) for c in range(0xDC80, 0xDD00)])
text = st.text(st.one_of(chars, escaped), max_size=24)
TOKENS = (
    "", " ", "0", "1", "2", "3", "-1", "08", "65535", "65536", "4294967296",
    "99999999999999999999999", "1.5", "1e3", "nan", "inf", "-inf", "0x10",
    "yes", "no", "on", "off", "none", "true", "::", "::1", "[::1]", "0.0.0.0",
    "127.0.0.1", "192.0.2.1", "10.0.0.0/8", "localhost", "udp", "tcp",
    "tcp://127.0.0.1:*", "tcp://[::1]:0", "tcp://nohost.invalid:x", "ipc:///",
    "ipc://x", "inproc://x", "http://127.0.0.1:9/x", "https://h.invalid/x",
    "http://", "ftp://x", "Telegram", "Generic1", "Slack", "Teams", "substr",
    "regex", "legacy", "workflows", "(", ")", "[", "a{1001}", "\\", "a**",
    "(a)(b)", "@", "@1", "@@", "@0", "@99", "@{sender}", "%", "%Y", "%Q",
    "/", "-", "/nonexistent/x", "DEBUG", "warning", "0,0", "0,1", ",", "7",
    "x" * 300, "0" * 40, "ABCDEFGHIJabcdefghij0123456789.-:+=^!/*?&",
)  # fmt: skip
values = st.one_of(st.sampled_from(TOKENS), text)


@st.composite
def environments(draw: Any) -> dict[str, str]:
    """An environment: a few events, then a few variables set to anything."""
    env: dict[str, str] = {"HOME": "/nonexistent"}
    count = draw(st.integers(0, 3))
    if count or draw(st.booleans()):
        # Mostly right, so that what comes after the events is reached too.
        env["ENV_EVENTS"] = str(count) if draw(st.integers(0, 9)) else draw(values)
    for i in range(count):
        plausible = {
            "NOTIFIER": st.sampled_from(NOTIFIERS),
            "MATCH_TYPE": st.sampled_from(("substr", "regex")),
            "MATCH_STR": st.sampled_from(("login", "(a+)+$", "x([0-9]+)", "[")),
            "MASK_MSG": st.sampled_from(("hi", "@1", "@@", "@{node}")),
        }
        for field in FIELDS:
            if draw(st.integers(0, 19)):  # mostly present, mostly plausible
                wild = i == 2 and draw(st.booleans())
                env[f"EVENT{i}_{field}"] = draw(values if wild else plausible[field])
    for n in range(1, 5):
        if draw(st.integers(0, 3)):
            env[f"GENERIC{n}_WEBHOOK_URL"] = "http://127.0.0.1:9/hook"
    names = draw(st.lists(st.sampled_from(VARIABLES), unique=True, max_size=8))
    for name in names:
        env[name] = draw(values)
    if draw(st.booleans()):
        env["STATIC_EVENT0_NOTIFIER"] = draw(
            st.one_of(st.sampled_from(NOTIFIERS), values)
        )
    return env


def check_in_process(env: dict[str, str]) -> tuple[int, str]:
    """``alertik check`` run here with env as the whole environment."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.object(os, "environ", env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = cli.main(["check"])
        if code == 0:
            # What every stage does next: decode the CURVE keys.
            try:
                sockets.Security.of(config.load().curve)
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                code = 2
    return code, err.getvalue()


def assert_start_up_contract(code: int, stderr: str) -> None:
    assert code in (0, 2), stderr
    if code == 2:
        found = ONE_ERROR_LINE.fullmatch(stderr)
        assert found, f"not one error line: {stderr!r}"
        name = found.group(1)
        assert name in VARIABLES or GENERATED.fullmatch(name), name


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(env=environments())
def test_any_environment_starts_or_names_one_variable(env: dict[str, str]) -> None:
    assert_start_up_contract(*check_in_process(env))


@settings(max_examples=8, deadline=None)
@given(env=environments())
def test_the_real_command_keeps_the_same_contract(env: dict[str, str]) -> None:
    """As above, through ``python -m alertik check`` and, when the
    configuration is refused, ``alertik run`` (which must not start supervisord)."""
    full = {"PATH": os.environ.get("PATH", ""), **env}
    commands = [["check"]]
    if check_in_process(env)[0] == 2:
        commands.append(["run"])
    for args in commands:
        proc = subprocess.run(
            [sys.executable, "-m", "alertik", *args],
            env=full,
            capture_output=True,
            timeout=30,
        )
        stderr = proc.stderr.decode("utf-8", "surrogateescape")
        assert "Traceback" not in stderr
        assert_start_up_contract(proc.returncode, stderr if proc.returncode else "")


def test_the_fuzzed_variables_are_every_variable_alertik_reads() -> None:
    """A new ALERTIK_* setting must join the fuzzing."""
    source = Path(config.__file__).read_text()
    read = set(re.findall(r'"((?:ALERTIK|FORWARD|TELEGRAM|TEAMS)_[A-Z_]+)"', source))
    assert read <= set(VARIABLES), read - set(VARIABLES)


# --- the stages' own start-up: values that pass the configuration ------------

UNUSABLE = [
    ("ingest", {"ALERTIK_BIND": "192.0.2.1"}, "ALERTIK_BIND"),
    ("ingest", {"ALERTIK_UDP_PORT": "{udp_busy}"}, "ALERTIK_UDP_PORT"),
    ("ingest", {"ALERTIK_TCP_PORT": "{tcp_busy}"}, "ALERTIK_TCP_PORT"),
    (
        "ingest",
        {"ALERTIK_MATCHER_ADDR": "tcp://nohost.invalid:x"},
        "ALERTIK_MATCHER_ADDR",
    ),
    ("ingest", {"ALERTIK_INGEST_TAP": "tcp://192.0.2.1:1"}, "ALERTIK_INGEST_TAP"),
    ("ingest", {"ALERTIK_RUN_DIR": "/tmp/" + "r" * 120}, "ALERTIK_RUN_DIR"),
    ("matcher", {"ALERTIK_MATCHER_ADDR": "tcp://192.0.2.1:1"}, "ALERTIK_MATCHER_ADDR"),
    (
        "matcher",
        {"ALERTIK_MATCHER_TAP": "tcp://{tcp_busy_addr}"},
        "ALERTIK_MATCHER_TAP",
    ),
    (
        "matcher",
        {"ALERTIK_NOTIFY_ADDR": "tcp://nohost.invalid:x"},
        "ALERTIK_NOTIFY_ADDR",
    ),
    ("matcher", {"ALERTIK_RUN_DIR": "/tmp/" + "r" * 120}, "ALERTIK_RUN_DIR"),
    ("notify", {"ALERTIK_NOTIFY_ADDR": "tcp://192.0.2.1:1"}, "ALERTIK_NOTIFY_ADDR"),
    ("notify", {"ALERTIK_NOTIFY_TAP": "tcp://192.0.2.1:1"}, "ALERTIK_NOTIFY_TAP"),
    (
        "forwarder",
        {"ALERTIK_FORWARDER_ADDR": "tcp://192.0.2.1:1"},
        "ALERTIK_FORWARDER_ADDR",
    ),
    ("forwarder", {"ALERTIK_RUN_DIR": "/tmp/" + "r" * 120}, "ALERTIK_RUN_DIR"),
]


@pytest.mark.parametrize(("stage", "extra", "variable"), UNUSABLE)
def test_a_stage_that_cannot_use_a_value_exits_2_naming_its_variable(
    tmp_path: Path, stage: str, extra: dict[str, str], variable: str
) -> None:
    with contextlib.ExitStack() as held:
        udp = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 0))
        tcp = held.enter_context(socket.create_server(("127.0.0.1", 0)))
        ports = {
            "udp_busy": str(udp.getsockname()[1]),
            "tcp_busy": str(tcp.getsockname()[1]),
            "tcp_busy_addr": f"127.0.0.1:{tcp.getsockname()[1]}",
        }
        env = base_env(
            tmp_path,
            ALERTIK_LOG_FILE="-",
            FORWARD_HOST="127.0.0.1",
            FORWARD_PORT="9",
            **{k: v.format(**ports) for k, v in extra.items()},
        )
        proc = subprocess.run(
            [sys.executable, "-m", "alertik", stage],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    (error,) = [line for line in out.splitlines() if "configuration error" in line]
    assert f"configuration error: {variable}: " in error
