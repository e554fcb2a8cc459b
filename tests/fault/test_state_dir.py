"""The state directory and the log archive on a full or read-only file system.

Neither may cost an alert or stop a stage: notify keeps its outbox in memory
(and says so), the matcher counts the archive lines it cannot write (and says
so, throttled), and every alert still reaches the webhook.

The file systems are real: a small tmpfs, mounted (full, or read-only) in a
private mount namespace (``unshare -m``) in which ``alertik run`` then runs,
so nothing outside the test sees the mount. Where that is not allowed, the
read-only case falls back to a directory without write permission (which
root ignores, so then it is skipped), and the full case to /dev/full for the
archive.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    REPO,
    Proc,
    WebhookServer,
    base_env,
    children_of,
    events_env,
    send_udp,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.fault

LINES = [b"system,error MARK one", b"dhcp,info nothing", b"MARK two\x00\xff"]


def namespaces_work() -> bool:
    """Whether this process may mount a tmpfs in a private mount namespace."""
    try:
        probe = subprocess.run(
            ["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


NAMESPACES = namespaces_work()


@pytest.fixture
def runs() -> Iterator[list[Proc]]:
    """Processes to kill at teardown: supervisord first, then its stages."""
    procs: list[Proc] = []
    yield procs
    for proc in procs:
        stages = children_of(proc.popen.pid)
        for pid in [proc.popen.pid, *stages]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()


def start(runs: list[Proc], env: dict[str, str], mount: str, disk: Path) -> Proc:
    """``alertik run``, in a private mount namespace when mount is given: the
    shell command mount prepares disk (a tmpfs) before alertik starts."""
    alertik = [sys.executable, "-m", "alertik", "run"]
    if mount:
        script = f"set -e; {mount}; exec {shlex.join(alertik)}"
        args = ["unshare", "-m", "sh", "-c", script]
    else:
        args = alertik
    env = {**env, "DISK": str(disk)}
    runs.append(Proc(args, env, REPO))
    return runs[-1]


def deliver_through(run: Proc, webhook: WebhookServer) -> None:
    """Send LINES; both MARK alerts arrive; then stop cleanly."""
    port = udp_port_of(run)
    for stage in ("notify", "matcher", "ingest"):
        run.wait_line(f"success: {stage} entered RUNNING state")
    send_udp(port, *LINES)
    texts = sorted(r.json()["text"].split(", at: ")[0] for r in webhook.wait(2))
    assert texts == ["mark", "mark"]
    wait_for(lambda: "archive lines lost" in run.output, 15, "the archive's error line")
    assert run.terminate() == 0
    assert_no_stage_failed(run.output)


def assert_no_stage_failed(out: str) -> None:
    """No traceback, and supervisord saw each stage exit only at SIGTERM."""
    assert "Traceback" not in out
    assert not re.search(r"exited: \w+ \((?!exit status 0;)", out), out


def env_for(tmp_path: Path, webhook: WebhookServer, disk: Path) -> dict[str, str]:
    return base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook",
        ALERTIK_STATE_DIR=str(disk / "state"),
        ALERTIK_LOG_FILE=str(disk / "log" / "log.txt"),
        **events_env(("Generic1", "substr", "MARK", "mark")),
    )


@pytest.mark.skipif(not NAMESPACES, reason="cannot mount a tmpfs here")
def test_a_full_disk_costs_no_alert_and_stops_no_stage(
    tmp_path: Path, runs: list[Proc], webhook: WebhookServer
) -> None:
    """1. a 256 KiB tmpfs holds the state directory and the archive, and a
       file fills it up before alertik starts;
    2. send two alert lines and one other.
    Result: both alerts arrive; notify says its outbox is in memory; the
    matcher says archive lines are lost; no stage exits until SIGTERM."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = (
        'mount -t tmpfs -o size=256k,mode=700 tmpfs "$DISK"; '
        'mkdir "$DISK/state" "$DISK/log"; '
        'dd if=/dev/zero of="$DISK/fill" bs=4k 2>/dev/null || true'
    )
    run = start(runs, env_for(tmp_path, webhook, disk), mount, disk)
    run.wait_line("keeping alerts in memory")
    deliver_through(run, webhook)
    assert "No space left on device" in run.output


@pytest.mark.skipif(not NAMESPACES, reason="cannot mount a tmpfs here")
def test_a_disk_that_fills_up_while_running_costs_no_alert(
    tmp_path: Path, runs: list[Proc], webhook: WebhookServer
) -> None:
    """1. the state directory and the archive start on an empty 1 MiB tmpfs;
    2. one alert goes through; then the tmpfs is filled from outside;
    3. more alerts.
    Result: every alert arrives; notify moves its outbox to memory and the
    matcher counts lost archive lines, both saying so; no stage exits."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = (
        'mount -t tmpfs -o size=1m,mode=700 tmpfs "$DISK"; '
        'mkdir "$DISK/state" "$DISK/log"'
    )
    run = start(runs, env_for(tmp_path, webhook, disk), mount, disk)
    port = udp_port_of(run)
    for stage in ("notify", "matcher", "ingest"):
        run.wait_line(f"success: {stage} entered RUNNING state")
    send_udp(port, b"MARK before")
    webhook.wait(1)
    # The namespace's tmpfs, seen from outside through supervisord's root.
    inside = Path(f"/proc/{run.popen.pid}/root") / str(disk).lstrip("/")
    with open(inside / "fill", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    # Long enough to need new pages: the archive's last page may have room.
    lines = [b"MARK after %d " % i + b"x" * 1000 for i in range(20)]
    send_udp(port, *lines)
    texts = [r.json()["text"] for r in webhook.wait(21)]
    assert len(texts) == 21
    wait_for(lambda: "archive lines lost" in run.output, 15, "the archive's error")
    assert run.terminate() == 0
    assert_no_stage_failed(run.output)
    assert "No space left on device" in run.output


@pytest.mark.skipif(
    not NAMESPACES and os.geteuid() == 0,
    reason="root writes to read-only directories, and cannot mount here",
)
def test_a_read_only_disk_costs_no_alert_and_stops_no_stage(
    tmp_path: Path, runs: list[Proc], webhook: WebhookServer
) -> None:
    """1. the state directory and the archive are on a read-only file system
       (a tmpfs mounted ro; without mounts, a directory without write bits);
    2. send two alert lines and one other.
    Result: both alerts arrive; both stages say what they cannot write."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if NAMESPACES:
        mount = 'mount -t tmpfs -o ro,size=64k,mode=700 tmpfs "$DISK"'
    else:
        mount = ""
        disk.chmod(0o500)
    run = start(runs, env_for(tmp_path, webhook, disk), mount, disk)
    run.wait_line("keeping alerts in memory")
    deliver_through(run, webhook)


def test_an_archive_on_a_full_device_costs_no_alert(
    tmp_path: Path, runs: list[Proc], webhook: WebhookServer
) -> None:
    """The archive is /dev/full (every write fails with ENOSPC): alerts still
    arrive and the matcher reports the lost lines once, not per line."""
    env = base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook",
        ALERTIK_LOG_FILE="/dev/full",
        **events_env(("Generic1", "substr", "MARK", "mark")),
    )
    run = start(runs, env, "", tmp_path)
    deliver_through(run, webhook)
    assert run.output.count("archive lines lost") <= 2  # stdout and stderr
