"""The pure parts of the split set-up: keygen, the tap's JSON, endpoint checks."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess

import msgspec
import pytest
import zmq

from alertik import keygen, tap
from alertik.common import sockets
from alertik.common.config import ConfigError, load
from alertik.common.schema import ENCODER, Alert, Delivery, SyslogEvent


def test_a_new_key_pair_matches_and_pastes_without_escaping() -> None:
    for _ in range(20):
        public, secret = keygen.new_keypair()
        assert len(public) == len(secret) == 40
        assert keygen.public_of(secret) == public
        assert not set("$?!") & set(public + secret)


def test_keygen_prints_env_lines_a_stage_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert keygen.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    quoted = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
    assert all(v[0] == v[-1] == "'" for v in quoted.values())
    values = {k: v[1:-1] for k, v in quoted.items()}
    assert set(values) == {"ALERTIK_CURVE_SECRET_KEY", "ALERTIK_CURVE_PUBLIC_KEY"}
    secret = values["ALERTIK_CURVE_SECRET_KEY"]
    assert keygen.public_of(secret) == values["ALERTIK_CURVE_PUBLIC_KEY"]
    cfg = load({"ALERTIK_CURVE_SECRET_KEY": secret, "HOME": "/nonexistent"})
    assert (
        sockets.Security.of(cfg.curve).public.decode()
        == values["ALERTIK_CURVE_PUBLIC_KEY"]
    )


@pytest.mark.parametrize(
    "text",
    [
        "{secret}",
        "{secret}\n",
        "# a comment\nALERTIK_CURVE_SECRET_KEY={secret}\nALERTIK_CURVE_PUBLIC_KEY=x\n",
    ],
)
def test_keygen_public_reads_a_bare_key_or_keygens_own_output(
    text: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    public, secret = zmq.curve_keypair()
    monkeypatch.setattr("sys.stdin", io.StringIO(text.format(secret=secret.decode())))
    assert keygen.main(["--public"]) == 0
    assert capsys.readouterr().out == public.decode() + "\n"


# Every Z85 digit, and so every character a shell might act on (& * ( < > ...).
ALL_DIGITS = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#"
)


def test_keygens_output_sourced_by_sh_gives_the_keys_back_exactly(
    tmp_path: pathlib.Path,
) -> None:
    secret, public = ALL_DIGITS[:40], ALL_DIGITS[45:] + ALL_DIGITS[:18]
    env_file = tmp_path / "keys.env"
    env_file.write_text(keygen.render(public, secret))
    shown = subprocess.run(
        [
            "sh",
            "-euc",
            '. "$1"; printf "%s\\n%s\\n" "$ALERTIK_CURVE_SECRET_KEY" '
            '"$ALERTIK_CURVE_PUBLIC_KEY"',
            "sh",
            str(env_file),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        check=True,
    )
    assert shown.stdout == f"{secret}\n{public}\n"
    assert shown.stderr == ""
    assert keygen.secret_from(env_file.read_text()) == secret


def test_a_quote_in_a_value_survives_the_shell_too() -> None:
    line = keygen.quote("it's")
    shown = subprocess.run(
        ["sh", "-c", f'v={line}; printf %s "$v"'], capture_output=True, text=True
    )
    assert shown.stdout == "it's"


@pytest.mark.parametrize("quote", ["'", '"'])
def test_keygen_public_takes_a_quoted_secret_key(quote: str) -> None:
    public, secret = zmq.curve_keypair()
    text = f"{quote}{secret.decode()}{quote}\n"
    assert keygen.public_of(keygen.secret_from(text)) == public.decode()


def test_the_secret_key_may_contain_an_equals_sign() -> None:
    key = "=" * 5 + "a" * 35
    assert keygen.secret_from(f"ALERTIK_CURVE_SECRET_KEY={key}\n") == key
    assert keygen.secret_from(key) == key


@pytest.mark.parametrize("junk", ["", "short", "~" * 40, "é" * 40])
def test_keygen_public_refuses_what_is_not_a_secret_key(
    junk: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(junk))
    assert keygen.main(["--public"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ALERTIK_CURVE_SECRET_KEY", "~" * 40),
        ("ALERTIK_CURVE_SERVER_KEY", " " * 39 + "x"),
        ("ALERTIK_CURVE_ALLOWED_CLIENTS", "~" * 40),
    ],
)
def test_a_key_that_is_not_z85_names_its_variable(variable: str, value: str) -> None:
    _, secret = keygen.new_keypair()
    env = {"HOME": "/nonexistent", "ALERTIK_CURVE_SECRET_KEY": secret, variable: value}
    with pytest.raises(ConfigError) as info:
        load(env)
    assert info.value.variable == variable
    assert "alertik keygen" in str(info.value)


@pytest.mark.parametrize("quote", ["'", '"'])
def test_a_key_left_in_its_quotes_is_refused_with_the_fix(quote: str) -> None:
    _, secret = keygen.new_keypair()
    with pytest.raises(ConfigError) as info:
        load(
            {"HOME": "/nonexistent", "ALERTIK_CURVE_SECRET_KEY": quote + secret + quote}
        )
    assert info.value.variable == "ALERTIK_CURVE_SECRET_KEY"
    assert "remove them" in str(info.value)
    assert secret not in str(info.value)


@pytest.mark.parametrize(
    ("endpoint", "host", "loopback"),
    [
        ("tcp://127.0.0.1:5551", "127.0.0.1", True),
        ("tcp://127.0.0.1:*", "127.0.0.1", True),
        ("tcp://127.3.2.1:5551", "127.3.2.1", True),
        ("tcp://[::1]:5551", "::1", True),
        ("tcp://localhost:5551", "localhost", True),
        ("tcp://lo:5551", "lo", True),
        ("tcp://*:5551", "*", False),
        ("tcp://0.0.0.0:5551", "0.0.0.0", False),
        ("tcp://[::]:5551", "::", False),
        ("tcp://192.0.2.10:5551", "192.0.2.10", False),
        ("tcp://eth0:5551", "eth0", False),
        ("tcp://192.0.2.1:0;192.0.2.10:5551", "192.0.2.10", False),
        ("ipc:///run/alertik/matcher", None, True),
        ("inproc://matcher", None, True),
    ],
)
def test_only_loopback_tcp_endpoints_count_as_private(
    endpoint: str, host: str | None, loopback: bool
) -> None:
    assert sockets.endpoint_host(endpoint) == host
    assert sockets.is_loopback(endpoint) is loopback


def test_a_tapped_event_shows_its_text_and_keeps_its_exact_bytes_in_base64() -> None:
    event = SyslogEvent(
        raw=b"login failure caf\xe9",
        received=1700000000.5,
        sender="192.0.2.1",
        sender_port=40000,
        node="router-a",
        seq=7,
        pid=42,
    )
    line = tap.to_json(ENCODER.encode(event))
    shown = json.loads(line)
    assert list(shown)[:2] == ["type", "text"]
    assert shown["type"] == "SyslogEvent"
    assert shown["text"] == "login failure caf\ufffd"
    assert shown["raw"] == "bG9naW4gZmFpbHVyZSBjYWbp"
    assert shown["sender"] == "192.0.2.1" and shown["node"] == "router-a"
    assert b"\n" not in line


@pytest.mark.parametrize(
    "message",
    [
        Alert(
            id="router-a/42/7/EVENT0",
            notifier="Generic1",
            text="Failed login\nsecond line",
            rule="EVENT0",
            received=1700000000.5,
            sender="192.0.2.1",
            node="router-a",
        ),
        Delivery(id="x", notifier="Slack", outcome="delivered", attempts=1),
    ],
)
def test_alerts_and_deliveries_are_printed_with_their_own_fields(
    message: Alert | Delivery,
) -> None:
    line = tap.to_json(ENCODER.encode(message))
    shown = json.loads(line)
    assert shown == {"type": type(message).__name__, **msgspec.to_builtins(message)}
    assert b"\n" not in line


def test_junk_on_a_tap_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        tap.to_json(b"\xc1 not msgpack")


def test_the_tap_endpoint_is_the_addr_the_run_dir_or_the_configured_one() -> None:
    cfg = load({"HOME": "/nonexistent", "ALERTIK_RUN_DIR": "/run/a"})
    assert tap.endpoint_for("matcher", cfg, None, "tcp://h:1") == "tcp://h:1"
    assert (
        tap.endpoint_for("matcher", cfg, "/run/b", None) == "ipc:///run/b/tap-matcher"
    )
    assert tap.endpoint_for("notify", cfg, None, None) == "ipc:///run/a/tap-notify"


@pytest.mark.parametrize(
    ("bound", "read"),
    [
        ("tcp://*:5560", "tcp://127.0.0.1:5560"),
        ("tcp://0.0.0.0:5560", "tcp://127.0.0.1:5560"),
        ("tcp://[::]:5560", "tcp://[::1]:5560"),
        ("tcp://192.0.2.10:5560", "tcp://192.0.2.10:5560"),
    ],
)
def test_a_tap_bound_on_every_address_is_read_on_loopback(
    bound: str, read: str
) -> None:
    cfg = load({"HOME": "/nonexistent", "ALERTIK_INGEST_TAP": bound})
    assert tap.endpoint_for("ingest", cfg, None, None) == read


def test_a_tap_on_a_random_port_needs_the_port_it_got() -> None:
    cfg = load({"HOME": "/nonexistent", "ALERTIK_INGEST_TAP": "tcp://127.0.0.1:*"})
    with pytest.raises(ValueError, match="--addr"):
        tap.endpoint_for("ingest", cfg, None, None)


def test_the_tap_says_each_connection_problem_once_per_attempt_to_connect(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = tap.Status("tcp://192.0.2.10:5561")
    # libzmq retries every 100 ms and reports every failure.
    for _ in range(5):
        status.event(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        status.event(zmq.EVENT_DISCONNECTED)
    status.event(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    status.event(zmq.EVENT_DISCONNECTED)
    for _ in range(5):
        status.event(zmq.EVENT_DISCONNECTED)
    assert capsys.readouterr().err.splitlines() == [
        "tap: tcp://192.0.2.10:5561 refused this host's CURVE key "
        "(see ALERTIK_CURVE_*)",
        "tap: connected to tcp://192.0.2.10:5561",
        "tap: disconnected from tcp://192.0.2.10:5561; reconnecting",
        "tap: tcp://192.0.2.10:5561 closed the connection during the handshake: "
        "check that both ends use CURVE and that ALERTIK_CURVE_SERVER_KEY is its "
        "public key",
    ]


def test_the_tap_says_once_that_there_is_no_such_socket_then_that_nobody_is_bound(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tap-ingest"
    status = tap.Status(f"ipc://{path}", "ingest")
    for _ in range(5):
        status.event(zmq.EVENT_CONNECT_RETRIED)
    path.touch()  # a socket file left behind
    for _ in range(5):
        status.event(zmq.EVENT_CONNECT_RETRIED)
    status.event(zmq.EVENT_CONNECTED)
    status.event(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    assert capsys.readouterr().err.splitlines() == [
        f"tap: nothing to read at ipc://{path}: no such socket; no ingest runs "
        "with this run directory (ALERTIK_RUN_DIR, or --run-dir); waiting for one",
        f"tap: nothing to read at ipc://{path}: the socket is there but nobody "
        "is bound to it (did ingest stop?); waiting for one",
        f"tap: connected to ipc://{path}",
    ]


def test_a_tap_refused_by_its_peer_is_not_told_that_nothing_listens(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = tap.Status("tcp://192.0.2.10:5561", "matcher")
    for _ in range(3):  # the connection is made, the handshake fails
        status.event(zmq.EVENT_CONNECTED)
        status.event(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        status.event(zmq.EVENT_DISCONNECTED)
        status.event(zmq.EVENT_CONNECT_RETRIED)
    status.event(zmq.EVENT_CONNECT_RETRIED)  # then nothing listens any more
    assert capsys.readouterr().err.splitlines() == [
        "tap: tcp://192.0.2.10:5561 refused this host's CURVE key "
        "(see ALERTIK_CURVE_*)",
        "tap: nothing to read at tcp://192.0.2.10:5561: nothing listens there; "
        "waiting for it",
    ]
