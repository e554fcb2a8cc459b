"""The TLS files: ``alertik cert`` makes them, the configuration checks them.

``alertik cert`` runs as a user runs it (a subprocess, the openssl command);
what it makes is then used by a real TLS server and checked by clients as
RouterOS (chain only) and as a careful relay (chain and host name) check it.
Each wrong certificate, key or CA file stops the configuration with one line
naming its variable, before any stage would start.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alertik.common import config
from alertik.common.config import ConfigError
from alertik.common.tls import fingerprint, server_context
from tests.support import base_env
from tests.tls_support import (
    Pair,
    connect_tls,
    make_client_ca,
    make_pair,
    routeros_context,
    strict_context,
)


def alertik_cert(
    *args: str, cwd: Path, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = base_env(cwd)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "alertik", "cert", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class OneShotServer:
    """A TLS server on 127.0.0.1 that accepts connections with a context."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                conn.close()

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def serving() -> Iterator[list[OneShotServer]]:
    servers: list[OneShotServer] = []
    yield servers
    for s in servers:
        s.close()


# -- alertik cert ---------------------------------------------------------------


def test_cert_makes_a_pair_that_routeros_and_careful_clients_accept(
    tmp_path: Path, serving: list[OneShotServer]
) -> None:
    proc = alertik_cert("alertik.lan", "localhost", "127.0.0.1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cert, key = tmp_path / "alertik-tls.crt", tmp_path / "alertik-tls.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".alertik-cert")]
    server = OneShotServer(server_context(str(cert), str(key)))
    serving.append(server)
    with connect_tls(server.port, routeros_context(str(cert))) as tls:
        assert tls.version() == "TLSv1.2"
    for name in ("localhost", "127.0.0.1"):
        with connect_tls(
            server.port, strict_context(str(cert)), server_name=name
        ) as tls:
            assert tls.version() == "TLSv1.3"
    with pytest.raises(ssl.SSLCertVerificationError):
        connect_tls(server.port, strict_context(str(cert)), server_name="other.lan")


def test_cert_prints_the_settings_and_the_routeros_commands_for_its_pair(
    tmp_path: Path,
) -> None:
    proc = alertik_cert("alertik.lan", "192.0.2.10", "--port", "7514", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    cert, key = tmp_path / "alertik-tls.crt", tmp_path / "alertik-tls.key"
    assert f"ALERTIK_TLS_CERT={cert}\n" in out
    assert f"ALERTIK_TLS_KEY={key}\n" in out
    assert "ALERTIK_TLS_PORT=7514\n" in out
    assert '/certificate import file-name=alertik-tls.crt passphrase=""' in out
    action = re.search(r"/system logging action add [^\n]*\\\n[^\n]*", out)
    assert action, out
    for part in (
        "target=remote",
        "remote=192.0.2.10",
        "remote-port=7514",
        "remote-protocol=tls",
        "remote-log-format=cef",
        "check-certificate=yes",
    ):
        assert part in action.group(), part
    assert "/system logging add topics=info action=alertik-tls" in out
    assert fingerprint(str(cert)) in out
    # What it prints is what the configuration accepts.
    env = {"HOME": "/nonexistent"}
    for line in out.splitlines():
        if line.startswith("ALERTIK_TLS_"):
            name, _, value = line.partition("=")
            env[name] = value
    assert config.load(env).ingest.tls_port == 7514


def test_cert_refuses_to_replace_files_unless_forced(tmp_path: Path) -> None:
    assert alertik_cert("localhost", cwd=tmp_path).returncode == 0
    cert = tmp_path / "alertik-tls.crt"
    before = fingerprint(str(cert))
    again = alertik_cert("localhost", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.startswith("error: ") and "--force" in again.stderr
    assert fingerprint(str(cert)) == before
    forced = alertik_cert("localhost", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert fingerprint(str(cert)) != before


@pytest.mark.parametrize("name", ["two words", "under_score.lan", "x-.lan", "a" * 64])
def test_cert_refuses_a_name_that_is_no_host_name_or_address(
    tmp_path: Path, name: str
) -> None:
    proc = alertik_cert(name, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "neither" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_cert_without_the_openssl_command_says_so_and_writes_nothing(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = alertik_cert("localhost", cwd=tmp_path, path=str(empty))
    assert proc.returncode == 1
    assert proc.stderr == (
        "error: the openssl command is not installed; install it "
        "(apt-get install openssl) and run alertik cert again\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_cert_days_set_the_validity(tmp_path: Path) -> None:
    assert alertik_cert("localhost", "--days", "30", cwd=tmp_path).returncode == 0
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.load_verify_locations(cafile=str(tmp_path / "alertik-tls.crt"))
    (info,) = probe.get_ca_certs()
    lifetime = ssl.cert_time_to_seconds(
        str(info["notAfter"])
    ) - ssl.cert_time_to_seconds(str(info["notBefore"]))
    assert lifetime == 30 * 86400


# -- the configuration checks the files ------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return make_pair(tmp_path_factory.mktemp("pair"), "localhost", "127.0.0.1")


def tls_env(**extra: str) -> dict[str, str]:
    return {"HOME": "/nonexistent", "ALERTIK_TLS_PORT": "6514", **extra}


def refused(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        config.load(env)
    assert "\n" not in str(caught.value)
    return caught.value


def test_a_tls_port_with_a_usable_pair_is_accepted(pair: Pair) -> None:
    cfg = config.load(tls_env(ALERTIK_TLS_CERT=pair.cert, ALERTIK_TLS_KEY=pair.key))
    assert (cfg.ingest.tls_port, cfg.ingest.tls_cert, cfg.ingest.tls_key) == (
        6514,
        pair.cert,
        pair.key,
    )


def test_a_certificate_file_that_holds_its_key_too_needs_no_key_variable(
    pair: Pair, tmp_path: Path
) -> None:
    both = tmp_path / "both.pem"
    both.write_text(Path(pair.cert).read_text() + Path(pair.key).read_text())
    cfg = config.load(tls_env(ALERTIK_TLS_CERT=str(both)))
    assert cfg.ingest.tls_key == ""


def test_a_tls_port_without_a_certificate_is_refused() -> None:
    exc = refused(tls_env())
    assert exc.variable == "ALERTIK_TLS_CERT"
    assert "alertik cert" in exc.problem


@pytest.fixture(scope="module")
def wrong_files(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Files by name: the good pair, and what a wrong setting may point at."""
    folder = tmp_path_factory.mktemp("wrong")
    other = make_pair(folder / "other", "localhost")
    junk = folder / "junk.pem"
    junk.write_text("not PEM at all\n")
    encrypted = folder / "encrypted.pem"
    subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            pair.key,
            "-aes128",
            "-passout",
            "pass:secret",
            "-out",
            str(encrypted),
        ],
        check=True,
        capture_output=True,
    )
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    return {
        "fifo": str(fifo),
        "cert": pair.cert,
        "key": pair.key,
        "other_key": other.key,
        "junk": str(junk),
        "encrypted": str(encrypted),
        "missing": str(folder / "missing.pem"),
        "folder": str(folder),
    }


@pytest.mark.parametrize(
    ("files", "variable", "says"),
    [
        ({"ALERTIK_TLS_CERT": "{missing}"}, "ALERTIK_TLS_CERT", "cannot read"),
        ({"ALERTIK_TLS_CERT": "{folder}"}, "ALERTIK_TLS_CERT", "is a directory"),
        ({"ALERTIK_TLS_CERT": "{fifo}"}, "ALERTIK_TLS_CERT", "not a regular file"),
        (
            {"ALERTIK_TLS_CERT": "{cert}", "ALERTIK_TLS_KEY": "/dev/zero"},
            "ALERTIK_TLS_KEY",
            "not a regular file",
        ),
        ({"ALERTIK_TLS_CERT": "{key}"}, "ALERTIK_TLS_CERT", "no PEM certificate"),
        (
            {"ALERTIK_TLS_CERT": "{cert}"},
            "ALERTIK_TLS_CERT",
            "holds no PEM private key",
        ),
        (
            {"ALERTIK_TLS_CERT": "{cert}", "ALERTIK_TLS_KEY": "{missing}"},
            "ALERTIK_TLS_KEY",
            "cannot read",
        ),
        (
            {"ALERTIK_TLS_CERT": "{cert}", "ALERTIK_TLS_KEY": "{junk}"},
            "ALERTIK_TLS_KEY",
            "holds no PEM private key",
        ),
        (
            {"ALERTIK_TLS_CERT": "{cert}", "ALERTIK_TLS_KEY": "{other_key}"},
            "ALERTIK_TLS_KEY",
            "does not belong to the certificate",
        ),
        (
            {"ALERTIK_TLS_CERT": "{cert}", "ALERTIK_TLS_KEY": "{encrypted}"},
            "ALERTIK_TLS_KEY",
            "is encrypted",
        ),
        (
            {
                "ALERTIK_TLS_CERT": "{cert}",
                "ALERTIK_TLS_KEY": "{key}",
                "ALERTIK_TLS_CLIENT_CA": "{junk}",
            },
            "ALERTIK_TLS_CLIENT_CA",
            "no PEM CA certificates",
        ),
    ],
)
def test_each_unusable_tls_file_is_refused_naming_its_variable(
    wrong_files: dict[str, str], files: dict[str, str], variable: str, says: str
) -> None:
    names = wrong_files
    exc = refused(tls_env(**{k: v.format(**names) for k, v in files.items()}))
    assert exc.variable == variable
    assert says in exc.problem
    assert "secret" not in str(exc)


def test_a_client_ca_file_is_accepted_and_asks_clients_for_a_certificate(
    pair: Pair, tmp_path: Path
) -> None:
    ca, _ = make_client_ca(tmp_path / "ca")
    cfg = config.load(
        tls_env(
            ALERTIK_TLS_CERT=pair.cert,
            ALERTIK_TLS_KEY=pair.key,
            ALERTIK_TLS_CLIENT_CA=ca,
        )
    )
    ingest = cfg.ingest
    ctx = server_context(ingest.tls_cert, ingest.tls_key, ingest.tls_client_ca)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert server_context(pair.cert, pair.key).verify_mode == ssl.CERT_NONE


def test_tls_files_without_a_tls_port_start_but_are_warned_about(pair: Pair) -> None:
    env = {"HOME": "/nonexistent", "ALERTIK_TLS_CERT": pair.cert}
    assert config.load(env).ingest.tls_port is None
    (warning,) = config.warnings(env)
    assert warning.variable == "ALERTIK_TLS_CERT"
    assert "ALERTIK_TLS_PORT is off" in warning.problem
    assert config.warnings({**env, "ALERTIK_TLS_PORT": "6514"}) == []


def test_check_refuses_an_unusable_key_in_one_line_and_exit_2(
    pair: Pair, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.key"
    empty.write_bytes(b"")
    env = base_env(
        tmp_path,
        ALERTIK_TLS_PORT="6514",
        ALERTIK_TLS_CERT=pair.cert,
        ALERTIK_TLS_KEY=str(empty),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "alertik", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: ALERTIK_TLS_KEY: {empty} holds no PEM private key; "
        "make a certificate and key with `alertik cert`\n"
    )
