"""``alertik run`` as a service: whatever its output is, whoever runs it, it
never pretends to be alive.

Each test starts the real command (keeper, supervisord, stages) with its
standard output as a socket, a file or a pipe, as root or as another user.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import (
    Proc,
    WebhookServer,
    base_env,
    children_of,
    events_env,
    send_udp,
    stage_pids,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.e2e

LOGIN = b"system,error,critical login failure for user admin from 192.0.2.7 via ssh"
RULE = ("Generic1", "substr", "login failure", "failed login")
# Every line alertik writes: a stage's, supervisord's or the keeper's.
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def alertik(*args: str) -> list[str]:
    return [sys.executable, "-m", "alertik", *args]


class Started:
    """`alertik run` with its output going wherever the test says."""

    def __init__(self, argv: list[str], env: dict[str, str], **popen: object) -> None:
        self.popen = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True, **popen
        )  # type: ignore[call-overload]

    def kill(self) -> None:
        for pid in [self.popen.pid, *children_of(self.popen.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(5)


@pytest.fixture
def started() -> Iterator[Callable[..., Started]]:
    runs: list[Started] = []

    def start(argv: list[str], env: dict[str, str], **popen: object) -> Started:
        runs.append(Started(argv, env, **popen))
        return runs[-1]

    yield start
    for run in runs:
        run.kill()


def port_in(text: str) -> int:
    found = re.search(r"listening on udp \S*:(\d+)", text)
    return int(found.group(1)) if found else 0


def check_output(text: str) -> None:
    """Readable: whole lines, each once, no CRIT on a normal run."""
    lines = [line for line in text.splitlines() if line]
    assert lines, "no output at all"
    garbled = [line for line in lines if not LINE.match(line)]
    assert not garbled, garbled
    bodies = [line.split(" ", 2)[2] for line in lines]  # without the time
    repeated = {b for b in bodies if bodies.count(b) > 1 and "spawned" not in b}
    assert not repeated, repeated
    assert " CRIT " not in text


def deliver_and_stop(run: Started, port: int, webhook: WebhookServer) -> None:
    send_udp(port, LOGIN)
    (request,) = webhook.wait(1)
    assert request.json()["text"].startswith("failed login, at: ")
    run.popen.send_signal(signal.SIGTERM)
    assert run.popen.wait(20) == 0


def test_with_its_output_a_socket_as_under_systemd_it_runs_and_writes_each_line_once(
    tmp_path: Path, started: Callable[..., Started], webhook: WebhookServer
) -> None:
    """systemd gives a service a socket (the journal) as its standard output:
    supervisord could not reopen /dev/stdout there and alertik crashed."""
    env = base_env(tmp_path, GENERIC1_WEBHOOK_URL=webhook.url, **events_env(RULE))
    ours, theirs = socket.socketpair()
    received: list[bytes] = []
    reader = threading.Thread(
        target=lambda: received.extend(iter(lambda: ours.recv(65536), b"")),
        daemon=True,
    )
    reader.start()
    with theirs:
        run = started(alertik("run"), env, stdout=theirs, stderr=theirs)
    port = wait_for(lambda: port_in(b"".join(received).decode()), what="the port")
    wait_for(lambda: b"success: ingest entered RUNNING" in b"".join(received))
    deliver_and_stop(run, port, webhook)
    reader.join(5)
    ours.close()
    check_output(b"".join(received).decode())


def test_with_its_output_in_a_file_every_line_stays_whole_and_appears_once(
    tmp_path: Path, started: Callable[..., Started], webhook: WebhookServer
) -> None:
    env = base_env(tmp_path, GENERIC1_WEBHOOK_URL=webhook.url, **events_env(RULE))
    out = tmp_path / "alertik.out"
    with out.open("wb") as sink:
        run = started(alertik("run"), env, stdout=sink, stderr=subprocess.STDOUT)
    port = wait_for(lambda: port_in(out.read_text()), what="the port")
    wait_for(lambda: "success: ingest entered RUNNING" in out.read_text())
    deliver_and_stop(run, port, webhook)
    check_output(out.read_text())


NON_ROOT = 10001


@pytest.mark.skipif(
    subprocess.run(
        ["unshare", "-U", f"--map-user={NON_ROOT}", "true"], capture_output=True
    ).returncode
    != 0,
    reason="user namespaces are not available here",
)
def test_as_a_user_without_a_name_or_privileges_it_runs_and_keeps_the_outbox_on_disk(
    tmp_path: Path, started: Callable[..., Started], webhook: WebhookServer
) -> None:
    """`--user 10001` in a container: no name, no root. In a user namespace
    the process is uid 10001 with no privileges over this host."""
    env = base_env(tmp_path, GENERIC1_WEBHOOK_URL=webhook.url, **events_env(RULE))
    out = tmp_path / "alertik.out"
    argv = ["unshare", "-U", f"--map-user={NON_ROOT}", f"--map-group={NON_ROOT}"]
    check = subprocess.run([*argv, "id", "-u"], capture_output=True, text=True)
    assert check.stdout.strip() == str(NON_ROOT)
    with out.open("wb") as sink:
        run = started([*argv, *alertik("run")], env, stdout=sink, stderr=sink)
    port = wait_for(lambda: port_in(out.read_text()), what="the port")
    notify = wait_for(
        lambda: re.search(r"notify listening on .*", out.read_text()), what="notify"
    ).group(0)
    assert "outbox in memory" not in notify
    assert (tmp_path / "state" / "outbox.sqlite3").exists()
    wait_for(lambda: "success: ingest entered RUNNING" in out.read_text())
    deliver_and_stop(run, port, webhook)
    check_output(out.read_text())


def test_a_udp_port_already_taken_stops_run_at_once_naming_the_variable(
    tmp_path: Path,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        env = base_env(tmp_path, ALERTIK_UDP_PORT=str(taken.getsockname()[1]))
        began = time.monotonic()
        proc = subprocess.run(alertik("run"), env=env, capture_output=True, text=True,
                              timeout=15)  # fmt: skip
    assert time.monotonic() - began < 15
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: ALERTIK_UDP_PORT: cannot listen on udp")
    assert "Address already in use" in proc.stderr


def test_a_stage_that_cannot_start_stops_everything_with_one_line_naming_it(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """The TCP port is bound by ingest itself: taken, ingest cannot start;
    supervisord gives up on it (FATAL) and alertik run must not stay up
    without it, looking alive and receiving nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = base_env(tmp_path, ALERTIK_TCP_PORT=str(taken.getsockname()[1]))
        run = spawn("run", env=env)
        assert run.popen.wait(30) == 1
    verdict = [line for line in run.output.splitlines() if "stopping alertik:" in line]
    assert len(verdict) == 1, run.output
    assert "ingest cannot start: " in verdict[0]
    assert "ALERTIK_TCP_PORT: cannot listen on tcp" in verdict[0]


def test_health_fails_within_ten_seconds_of_a_frozen_stage_and_recovers(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    env = base_env(tmp_path)
    run = spawn("run", env=env)
    udp_port_of(run)

    def health() -> subprocess.CompletedProcess[str]:
        return subprocess.run(alertik("health"), env=env, capture_output=True,
                              text=True, timeout=10)  # fmt: skip

    wait_for(lambda: health().returncode == 0, 15, "healthy")
    assert health().stdout.startswith("healthy: ingest, matcher, notify")
    matcher = stage_pids(run.popen.pid)["matcher"]
    os.kill(matcher, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        failed = wait_for(
            lambda: health().returncode == 1 and health(), 10, "unhealthy"
        )
        assert time.monotonic() - frozen_at < 10
        assert f"matcher (pid {matcher}) has not answered" in failed.stdout
        assert failed.stdout.count("\n") == 1
    finally:
        os.kill(matcher, signal.SIGCONT)
    wait_for(lambda: health().returncode == 0, 10, "healthy again")
    assert run.terminate() == 0
    stopped = health()
    assert stopped.returncode == 1
    assert "alertik run is not answering" in stopped.stdout


def test_sighup_reloads_the_stages_instead_of_restarting_them(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    env = base_env(tmp_path)
    run = spawn("run", env=env)
    run.wait_line("success: ingest entered RUNNING state")
    healthy = [sys.executable, "-m", "alertik", "health"]
    wait_for(lambda: subprocess.run(healthy, env=env).returncode == 0, 15, "health")
    before = stage_pids(run.popen.pid)
    run.popen.send_signal(signal.SIGHUP)
    for pid in before.values():
        run.wait_line(f"[{pid}] INFO reloading (SIGHUP)")
    assert stage_pids(run.popen.pid) == before
    assert run.terminate() == 0


@pytest.mark.parametrize("problem", ["someone else's", "writable by others", "a link"])
def test_a_run_directory_others_could_tamper_with_is_refused(
    tmp_path: Path, problem: str
) -> None:
    """supervisord writes its pid file there: in a directory another local
    user controls, a planted link would make root overwrite any file."""
    run_dir = tmp_path / "run"
    if problem == "a link":
        (tmp_path / "elsewhere").mkdir()
        run_dir.symlink_to(tmp_path / "elsewhere")
    else:
        run_dir.mkdir()
        if problem == "someone else's":
            os.chown(run_dir, 65534, 65534) if os.geteuid() == 0 else pytest.skip(
                "only root can give a directory away"
            )
        else:
            run_dir.chmod(0o777)
    proc = subprocess.run(alertik("run"), env=base_env(tmp_path), capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ALERTIK_RUN_DIR: ")
    assert not (run_dir / "supervisord.pid").exists()
