"""Configuration fuzzing: any environment starts, or exits 2 naming one variable.

Every variable alertik reads gets values from a strategy of plausible and
hostile text (empty, huge, signed, fractional, Unicode, the surrogates that
stand for invalid bytes in os.environ, regex and mask syntax, URLs and
endpoints). ``alertik check`` (the start-up path of ``alertik run``: load the
configuration, compile every rule) must then exit 0, or exit 2 with exactly
one line ``error: VARIABLE: ...`` naming a variable alertik reads; never a
traceback. A configuration it accepts must then survive what the stages do
with each value (encode it on the wire, format the time, build the payload,
look up the forward target, bind an ipc socket), and a number it accepts must
be written in ASCII digits. The stages' own start-up (listening sockets,
ZeroMQ endpoints) is checked with values that pass the configuration but
cannot be used.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import pytest
import zmq
from hypothesis import HealthCheck, given, settings, strategies as st

from alertik import cli
from alertik.common import config, destinations, sockets
from alertik.common.config import NOTIFIERS, Config, ConfigError
from alertik.common.schema import ENCODER, Alert, SyslogEvent
from alertik.common.settings import NOT_SETTINGS, TABLE
from alertik.forwarder.resolve import port_number
from alertik.matcher.alerts import alert_text
from alertik.matcher.rules import Match, compile_rules, expand
from alertik.notify import mail, services
from tests.support import base_env

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
    "ALERTIK_SPOOL_MAX",
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
    "ALERTIK_METRICS_ADDR",
    "ALERTIK_NODE_NAME",
    "ALERTIK_NOTIFY_ADDR",
    "ALERTIK_NOTIFY_TAP",
    "ALERTIK_OUTBOX_MAX",
    "ALERTIK_OUTBOX_MAX_AGE",
    "ALERTIK_RETRY_MAX_DELAY",
    "ALERTIK_RULES_FILE",
    "ALERTIK_RULE_KEYS_MAX",
    "ALERTIK_RUN_DIR",
    "ALERTIK_SILENCE_AFTER",
    "ALERTIK_SILENCE_NOTIFY",
    "ALERTIK_STATE_DIR",
    "ALERTIK_TCP_IDLE_TIMEOUT",
    "ALERTIK_TCP_MAX_CONNECTIONS",
    "ALERTIK_TCP_MAX_PER_SOURCE",
    "ALERTIK_TCP_PORT",
    "ALERTIK_TIME_SUFFIX",
    "ALERTIK_TLS_CERT",
    "ALERTIK_TLS_CLIENT_CA",
    "ALERTIK_TLS_INSECURE",
    "ALERTIK_TLS_KEY",
    "ALERTIK_TLS_PORT",
    "ALERTIK_UDP_PORT",
    "ALERTIK_WEB_ADDR",
    "ALERTIK_WEB_PASSWORD",
    # The destinations set by ALERTIK_<SERVICE>_* (common/destinations.py).
    "ALERTIK_TELEGRAM_THREAD_ID",
    "ALERTIK_TELEGRAM_BOT_TOKEN_FILE",
    "ALERTIK_SLACK_WEBHOOK_URL_FILE",
    "ALERTIK_TEAMS_WEBHOOK_URL_FILE",
    "ALERTIK_DISCORD_WEBHOOK_URL_FILE",
    "ALERTIK_NTFY_URL",
    "ALERTIK_NTFY_TOPIC",
    "ALERTIK_NTFY_TOPIC_FILE",
    "ALERTIK_NTFY_PRIORITY",
    "ALERTIK_NTFY_TITLE",
    "ALERTIK_NTFY_TAGS",
    "ALERTIK_NTFY_CLICK",
    "ALERTIK_NTFY_TOKEN",
    "ALERTIK_NTFY_TOKEN_FILE",
    "ALERTIK_NTFY_USER",
    "ALERTIK_NTFY_PASSWORD",
    "ALERTIK_NTFY_PASSWORD_FILE",
    "ALERTIK_GOTIFY_URL",
    "ALERTIK_GOTIFY_TOKEN",
    "ALERTIK_GOTIFY_TOKEN_FILE",
    "ALERTIK_GOTIFY_PRIORITY",
    "ALERTIK_PUSHOVER_USER",
    "ALERTIK_PUSHOVER_USER_FILE",
    "ALERTIK_PUSHOVER_TOKEN",
    "ALERTIK_PUSHOVER_TOKEN_FILE",
    "ALERTIK_PUSHOVER_PRIORITY",
    "ALERTIK_PUSHOVER_RETRY",
    "ALERTIK_PUSHOVER_EXPIRE",
    "ALERTIK_PUSHOVER_SOUND",
    "ALERTIK_PUSHOVER_API_URL",
    "ALERTIK_MATRIX_HOMESERVER",
    "ALERTIK_MATRIX_ROOM",
    "ALERTIK_MATRIX_ACCESS_TOKEN",
    "ALERTIK_MATRIX_ACCESS_TOKEN_FILE",
    "ALERTIK_MATRIX_MSGTYPE",
    "ALERTIK_EMAIL_HOST",
    "ALERTIK_EMAIL_PORT",
    "ALERTIK_EMAIL_SECURITY",
    "ALERTIK_EMAIL_USER",
    "ALERTIK_EMAIL_PASSWORD",
    "ALERTIK_EMAIL_PASSWORD_FILE",
    "ALERTIK_EMAIL_FROM",
    "ALERTIK_EMAIL_TO",
    "ALERTIK_APPRISE_URL",
    "ALERTIK_APPRISE_URL_FILE",
)
GENERATED = re.compile(
    r"EVENT\d+_(NOTIFIER|MATCH_TYPE|MATCH_STR|MASK_MSG)|STATIC_EVENT\d+_NOTIFIER"
    r"|(ALERTIK_)?GENERIC[1-4]_WEBHOOK_URL(_FILE)?"
)
FIELDS = ("NOTIFIER", "MATCH_TYPE", "MATCH_STR", "MASK_MSG")
# The variables a stage reads as numbers (FORWARD_PORT: or a service name).
NUMBERS = (
    "ENV_EVENTS",
    "STATIC_EVENTS_ENABLED",
    "FORWARD_PORT",
    "ALERTIK_DIGEST_AFTER",
    "ALERTIK_DRAIN_SECONDS",
    "ALERTIK_FORWARD_BUFFER",
    "ALERTIK_FORWARD_RESOLVE_EVERY",
    "ALERTIK_HTTP_CONNECT_TIMEOUT",
    "ALERTIK_HTTP_READ_TIMEOUT",
    "ALERTIK_LOG_BACKUPS",
    "ALERTIK_LOG_MAX_BYTES",
    "ALERTIK_MAX_MESSAGE_BYTES",
    "ALERTIK_OUTBOX_MAX",
    "ALERTIK_OUTBOX_MAX_AGE",
    "ALERTIK_RETRY_MAX_DELAY",
    "ALERTIK_RULE_KEYS_MAX",
    "ALERTIK_TCP_IDLE_TIMEOUT",
    "ALERTIK_TCP_MAX_CONNECTIONS",
    "ALERTIK_TCP_PORT",
    "ALERTIK_TLS_PORT",
    "ALERTIK_UDP_PORT",
)
# (The numbers of the destinations set by environment, ALERTIK_NTFY_PRIORITY
# and the like, are read only when an event names that destination; their
# ASCII digits are checked in tests/unit/test_destination_kinds.py.)
# The modules that read the environment (common/config.py's docstring), and
# tls.py, whose errors name the TLS files' variables.
CONFIG_MODULES = ("config", "settings", "converters", "events", "destinations", "tls")
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
    "/dev/zero", "/etc/hostname",
    "x" * 300, "0" * 40, "ABCDEFGHIJabcdefghij0123456789.-:+=^!/*?&",
    # Digits that are not ASCII, and what int() and float() also take.
    "²", "５１４０", "٣", "٣.٥", "1_000", "0,٠", "\u00a0" + "7",
    # Text that is not UTF-8 (os.environ's surrogate escapes), host names
    # that cannot be looked up at all, paths too long for a Unix socket.
    "caf\udce9", "\udcff", "a..b", "\u00ad", "/tmp/" + "r" * 120,
    "ipc:///tmp/" + "r" * 120, "#" * 40,
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
            "MASK_MSG": st.sampled_from(("hi", "@1", "@@", "@{node}", "caf\udce9")),
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
                cfg = config.load()
                sockets.Security.of(cfg.curve)
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                code = 2
        if code == 0:
            use_every_value(cfg)
    return code, err.getvalue()


def use_every_value(cfg: Config) -> None:
    """What the stages do with the configuration's values once running, short
    of sockets: an exception here is a stage that crashes after check."""
    now = time.time()
    ENCODER.encode(
        SyslogEvent(
            raw=b"x", received=now, sender="192.0.2.1", sender_port=1,
            node=cfg.ingest.node_name, seq=1,
        )
    )  # fmt: skip
    fields = {"sender": "192.0.2.1", "node": cfg.ingest.node_name}
    for rule in compile_rules(cfg.rules, cfg.static_rules).rules:
        groups = rule.regex.groups if rule.regex is not None else 0
        body = expand(rule.parts, (b"x",) * (groups + 1), fields)
        match = Match(rule=rule.name, notifier=rule.rule.notifier, body=body)
        text = alert_text(cfg, match, now)
        ENCODER.encode(
            Alert(
                id="1", notifier=match.notifier, text=text, rule=rule.name,
                received=now, sender="192.0.2.1", node=cfg.ingest.node_name,
            )
        )  # fmt: skip
        for dest in cfg.notify.destinations:
            if dest.kind == "email":
                mail.message(dest, text, "k")  # type: ignore[arg-type]
            elif services.service_of(dest).request is not None:
                services.request(dest, text, "k")
    if cfg.forwarder is not None:
        port = port_number(cfg.forwarder.port, cfg.forwarder.protocol)
        # The forwarder's look-up, without asking a DNS server; a name is the
        # network's business, retried at run time.
        with contextlib.suppress(socket.gaierror):
            socket.getaddrinfo(cfg.forwarder.host, port, flags=socket.AI_NUMERICHOST)
    for endpoint in msgspec.structs.astuple(cfg.endpoints):
        if endpoint.startswith("ipc://"):
            # What zmq_bind() refuses with ENAMETOOLONG.
            assert len(os.fsencode(endpoint[6:])) <= zmq.IPC_PATH_MAX_LEN, endpoint


def assert_numbers_are_ascii(code: int, env: dict[str, str]) -> None:
    """An accepted number is written in ASCII digits (or is a service name)."""
    if code == 0:
        for name in NUMBERS:
            value = env.get(name, "").strip()
            assert value.isascii(), f"{name}={value!r} was accepted"


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
    code, stderr = check_in_process(env)
    assert_start_up_contract(code, stderr)
    assert_numbers_are_ascii(code, env)


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
    folder = Path(config.__file__).parent
    source = "".join((folder / f"{m}.py").read_text() for m in CONFIG_MODULES)
    read = set(re.findall(r'"((?:ALERTIK|FORWARD|TELEGRAM|TEAMS)_[A-Z_]+)"', source))
    read |= {s.name for s in TABLE}
    read |= destinations.ENV_VARIABLES - {
        v for v in destinations.ENV_VARIABLES if GENERATED.fullmatch(v)
    }
    read -= NOT_SETTINGS
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
    ("notify", {"ALERTIK_NOTIFY_ADDR": "tcp://192.0.2.1:1"}, "ALERTIK_NOTIFY_ADDR"),
    ("notify", {"ALERTIK_NOTIFY_TAP": "tcp://192.0.2.1:1"}, "ALERTIK_NOTIFY_TAP"),
    (
        "forwarder",
        {"ALERTIK_FORWARDER_ADDR": "tcp://192.0.2.1:1"},
        "ALERTIK_FORWARDER_ADDR",
    ),
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


# --- values that passed check and crashed a stage later: now refused by check

HOOKED = {
    "ENV_EVENTS": "1",
    "EVENT0_NOTIFIER": "Generic1",
    "EVENT0_MATCH_TYPE": "substr",
    "EVENT0_MATCH_STR": "x",
    "EVENT0_MASK_MSG": "y",
    "GENERIC1_WEBHOOK_URL": "http://127.0.0.1:9/hook",
}
TELEGRAM = {
    **HOOKED,
    "EVENT0_NOTIFIER": "Telegram",
    "TELEGRAM_BOT_TOKEN": "1:A",
    "TELEGRAM_CHAT_ID": "-100",
}
FORWARD = {"FORWARD_HOST": "127.0.0.1", "FORWARD_PORT": "514"}
CRASHED_LATER = [
    ({**HOOKED, "EVENT0_MASK_MSG": "caf\udce9 login"}, "EVENT0_MASK_MSG"),
    ({**HOOKED, "ALERTIK_TIME_SUFFIX": " at %H:%M \udcff"}, "ALERTIK_TIME_SUFFIX"),
    ({**HOOKED, "ALERTIK_NODE_NAME": "r\udcfeuter"}, "ALERTIK_NODE_NAME"),
    ({**TELEGRAM, "TELEGRAM_CHAT_ID": "-100\udcff"}, "TELEGRAM_CHAT_ID"),
    ({**FORWARD, "FORWARD_HOST": "x" * 300}, "FORWARD_HOST"),
    ({**FORWARD, "FORWARD_HOST": "logs..example"}, "FORWARD_HOST"),
    ({**FORWARD, "FORWARD_PORT": "²"}, "FORWARD_PORT"),
    ({**FORWARD, "FORWARD_PORT": "٥١٤"}, "FORWARD_PORT"),
    ({"STATIC_EVENTS_ENABLED": "²", "STATIC_EVENT0_NOTIFIER": "Generic1"},
     "STATIC_EVENTS_ENABLED"),
    ({"ENV_EVENTS": "٣"}, "ENV_EVENTS"),
    ({"ALERTIK_UDP_PORT": "５１４０"}, "ALERTIK_UDP_PORT"),
    ({"ALERTIK_TCP_PORT": "٥١٤٠"}, "ALERTIK_TCP_PORT"),
    ({"ALERTIK_DRAIN_SECONDS": "٣"}, "ALERTIK_DRAIN_SECONDS"),
    ({"ALERTIK_LOG_BACKUPS": "1_0"}, "ALERTIK_LOG_BACKUPS"),
    ({"ALERTIK_RUN_DIR": "/tmp/" + "r" * 120}, "ALERTIK_RUN_DIR"),
    ({"ALERTIK_RUN_DIR": "/tmp/\udcff"}, "ALERTIK_RUN_DIR"),
    ({"ALERTIK_MATCHER_ADDR": "ipc:///tmp/" + "r" * 120}, "ALERTIK_MATCHER_ADDR"),
    ({"ALERTIK_CURVE_SECRET_KEY": "~" * 40}, "ALERTIK_CURVE_SECRET_KEY"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "variable"), CRASHED_LATER)
def test_a_value_a_stage_cannot_use_is_refused_by_check_naming_its_variable(
    extra: dict[str, str], variable: str
) -> None:
    code, stderr = check_in_process({"HOME": "/nonexistent", **extra})
    assert code == 2, stderr
    assert_start_up_contract(code, stderr)
    assert stderr.startswith(f"error: {variable}: ")


@pytest.mark.parametrize("stage", ["ingest", "matcher", "notify", "forwarder"])
def test_a_run_directory_too_long_for_its_sockets_stops_every_stage_at_start(
    tmp_path: Path, stage: str
) -> None:
    """Linux allows 107 bytes in a Unix socket's path: caught when the
    configuration is read, by check and by each stage, before any socket."""
    env = base_env(
        tmp_path,
        ALERTIK_LOG_FILE="-",
        FORWARD_HOST="127.0.0.1",
        FORWARD_PORT="9",
        ALERTIK_RUN_DIR=str(tmp_path / ("r" * 120)),
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
    (error,) = [line for line in out.splitlines() if "ALERTIK_RUN_DIR" in line]
    assert error.startswith("error: ALERTIK_RUN_DIR: "), error
    assert not (tmp_path / ("r" * 120)).exists()


def test_a_match_string_that_is_not_utf8_is_accepted_and_matches_its_bytes() -> None:
    """A match string is bytes to match; its undecodable bytes are meaningful."""
    cfg = config.load({**HOOKED, "EVENT0_MATCH_STR": "caf\udce9"})
    rules = compile_rules(cfg.rules, cfg.static_rules)
    assert [m.rule for m in rules.match(b"a caf\xe9 b", {})] == ["EVENT0"]
    assert rules.match("a café b".encode(), {}) == []
