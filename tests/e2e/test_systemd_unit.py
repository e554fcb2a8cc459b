"""contrib/alertik.service: systemd accepts it, and its command works the way
systemd runs it.

No systemd runs here, so the second test does what the unit tells systemd to
do: the environment from ``Environment=`` and an ``EnvironmentFile=`` read by
systemd's rules, the run, state and logs directories with their modes, the
journal's socket as standard output and error, a user of its own (uid 10001
in a user namespace), no new privileges and, where the kernel can, no memory
both writable and executable; then ``ExecReload=``, and ``KillSignal=`` to
the main process alone (``KillMode=mixed``) within ``TimeoutStopSec=``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO, WebhookServer, children_of, send_udp, wait_for

pytestmark = pytest.mark.e2e

UNIT = REPO / "contrib" / "alertik.service"
# Where the unit expects alertik (docs/SERVICE.md installs it there).
INSTALLED = "/opt/alertik/bin/alertik"
SCRIPT = str(Path(sys.executable).with_name("alertik"))
USER_ID = 10001
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
# prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): what MemoryDenyWriteExecute=
# asks of the kernel (systemd does it with seccomp), then exec the command.
MDWE = (
    "import ctypes, os, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0):\n"
    "    sys.exit(125)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def unit_entries(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value it is given, in order."""
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return entries


def read_env_file(text: str) -> dict[str, str]:
    """Variables of an EnvironmentFile=, by the rules systemd.exec(5) gives.

    Comments start with # or ;. A value in single quotes is taken as written;
    in double quotes, a backslash escapes ", \\, $ and `; unquoted, a
    backslash keeps the next character and leading and trailing blanks go.
    """
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, rest = line.partition("=")
        rest = rest.strip()
        if rest[:1] == "'" and rest.endswith("'") and len(rest) >= 2:
            value = rest[1:-1]
        elif rest[:1] == '"' and rest.endswith('"') and len(rest) >= 2:
            value = re.sub(r'\\([\\"$`])', r"\1", rest[1:-1])
        else:
            value = re.sub(r"\\(.)", r"\1", rest)
        env[key.strip()] = value
    return env


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own check of the file: every key known, every value parsed,
    the command executable (our alertik in place of /opt/alertik's)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    env_file = tmp_path / "alertik.env"
    env_file.write_text("")
    text = UNIT.read_text()
    assert INSTALLED in text and "/etc/alertik/alertik.env" in text
    unit = tmp_path / "alertik.service"
    unit.write_text(
        text.replace(INSTALLED, SCRIPT).replace(
            "/etc/alertik/alertik.env", str(env_file)
        )
    )
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "alertik.service" not in proc.stdout + proc.stderr, proc.stderr


def test_the_env_file_reader_follows_systemds_quoting_rules() -> None:
    assert read_env_file(
        '# comment\n; comment\nA=\'x\\d $y\'\nB="a\\"b \\$c"\nC= p\\\\q\\d \n'
    ) == {"A": "x\\d $y", "B": 'a"b $c', "C": "p\\qd"}


def user_namespaces() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(
            ["unshare", "-U", f"--map-user={USER_ID}", "true"], capture_output=True
        ).returncode
        == 0
    )


class Journal:
    """The read end of the socket a service's output goes to."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.data = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := self.ours.recv(65536):
            self.data += chunk

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def close(self) -> None:
        self.theirs.close()
        self._reader.join(5)
        self.ours.close()


@pytest.fixture
def journal() -> Iterator[Journal]:
    out = Journal()
    yield out
    out.close()


def service_environment(
    entries: dict[str, list[str]], roots: dict[str, Path], env_file: str
) -> dict[str, str]:
    """What systemd gives the command: its own few variables, Environment=
    with specifiers expanded, then EnvironmentFile= (which wins)."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/",
        "USER": "alertik",
        "LOGNAME": "alertik",
        "SHELL": "/usr/sbin/nologin",
        "INVOCATION_ID": "0" * 32,
    }
    for assignment in entries.get("Service.Environment", []):
        key, _, value = assignment.partition("=")
        for spec, root in roots.items():
            value = value.replace(spec, str(root))
        env[key] = value
    env.update(read_env_file(env_file))
    return env


def make_directories(entries: dict[str, list[str]], roots: dict[str, Path]) -> None:
    """RuntimeDirectory= and friends, as systemd makes them before the start."""
    for kind, spec in (("Runtime", "%t"), ("State", "%S"), ("Logs", "%L")):
        for name in entries.get(f"Service.{kind}Directory", []):
            mode = int(entries.get(f"Service.{kind}DirectoryMode", ["0755"])[0], 8)
            path = roots[spec] / name
            path.mkdir(parents=True)
            path.chmod(mode)


def command(entries: dict[str, list[str]]) -> list[str]:
    """ExecStart=, our alertik for /opt/alertik's, inside what the unit asks:
    its own user, no new privileges, no writable-and-executable memory."""
    (start,) = entries["Service.ExecStart"]
    argv = shlex.split(start)
    assert argv[0] == INSTALLED
    argv[0] = SCRIPT
    if entries.get("Service.MemoryDenyWriteExecute") == ["yes"]:
        argv = [sys.executable, "-c", MDWE, *argv]
    if entries.get("Service.NoNewPrivileges") == ["yes"]:
        argv = ["setpriv", "--no-new-privs", *argv]
    user = ["unshare", "-U", f"--map-user={USER_ID}", f"--map-group={USER_ID}"]
    return [*user, *argv]


@pytest.mark.skipif(not user_namespaces(), reason="no user namespaces here")
def test_the_units_command_runs_delivers_reloads_and_stops_as_systemd_runs_it(
    tmp_path: Path, webhook: WebhookServer, journal: Journal
) -> None:
    """1. The directories, environment and output systemd would give; the
    EnvironmentFile= holds a regex with backslashes, in single quotes;
    2. ExecStart= as uid 10001, no new privileges, no W+X memory;
    3. a failed login arrives over UDP; then ExecReload=; then KillSignal=
    to the main process only.
    Result: the alert is delivered (the backslashes survived), the outbox is
    on disk and the archive in the logs directory; every stage reloads; it
    stops within TimeoutStopSec= with status 0 and leaves no process
    behind; the journal got every line whole and once."""
    entries = unit_entries(UNIT.read_text())
    roots = {"%t": tmp_path / "run", "%S": tmp_path / "lib", "%L": tmp_path / "log"}
    make_directories(entries, roots)
    env_text = "\n".join(
        [
            "# as in /etc/alertik/alertik.env",
            "ENV_EVENTS='1'",
            "EVENT0_NOTIFIER='Generic1'",
            "EVENT0_MATCH_TYPE='regex'",
            r"EVENT0_MATCH_STR='login failure for user (\S+) from ([0-9.]+)'",
            "EVENT0_MASK_MSG='failed login as @1 from @2'",
            f"GENERIC1_WEBHOOK_URL='{webhook.url}'",
            "ALERTIK_UDP_PORT='0'",
            "ALERTIK_BIND='127.0.0.1'",
            "ALERTIK_NODE_NAME='test-node'",
        ]
    )
    env = service_environment(entries, roots, env_text)
    assert env["ALERTIK_STATE_DIR"] == str(roots["%S"] / "alertik")
    umask = int(entries["Service.UMask"][0], 8)
    with journal.theirs:
        main = subprocess.Popen(
            command(entries),
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=journal.theirs.fileno(),
            stderr=journal.theirs.fileno(),
            start_new_session=True,
            umask=umask,
        )
    try:
        found = wait_for(
            lambda: re.search(r"listening on udp \S*:(\d+)", journal.text),
            30,
            "the UDP port",
        )
        wait_for(lambda: "success: notify entered RUNNING" in journal.text, 30)
        send_udp(
            int(found.group(1)),
            b"system,error,critical login failure for user admin from 192.0.2.7 "
            b"via ssh",
        )
        (request,) = webhook.wait(1)
        assert request.json()["text"].startswith(
            "failed login as admin from 192.0.2.7, at: "
        )
        assert "in memory" not in journal.text, journal.text
        assert (roots["%S"] / "alertik" / "outbox.sqlite3").exists()
        archive = (roots["%L"] / "alertik" / "log.txt").read_text()
        assert "login failure for user admin" in archive

        (reload,) = entries["Service.ExecReload"]
        subprocess.run(
            shlex.split(reload.replace("$MAINPID", str(main.pid))), check=True
        )
        # Each of the three stages says so as it takes the signal.
        wait_for(lambda: journal.text.count(" INFO reloading (SIGHUP)") == 3)

        (kill_signal,) = entries["Service.KillSignal"]
        assert entries["Service.KillMode"] == ["mixed"]
        stop_seconds = float(entries["Service.TimeoutStopSec"][0])
        began = time.monotonic()
        main.send_signal(signal.Signals[kill_signal])
        assert main.wait(stop_seconds) == 0
        assert time.monotonic() - began < stop_seconds
        assert children_of(main.pid) == []
    except BaseException:
        print(journal.text)  # shown with the failure
        raise
    finally:
        if main.poll() is None:
            for pid in [main.pid, *children_of(main.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            main.wait(5)
    journal.close()
    lines = [line for line in journal.text.splitlines() if line]
    assert not [line for line in lines if not LINE.match(line)], journal.text
    bodies = [line.split(" ", 2)[2] for line in lines]
    assert len(bodies) == len(set(bodies)), journal.text
    assert " CRIT " not in journal.text


def test_a_configuration_error_ends_with_the_status_the_unit_does_not_restart(
    tmp_path: Path,
) -> None:
    """Restart=on-failure would start a broken configuration again and again;
    RestartPreventExitStatus= must name the status alertik gives it, and not
    the one it gives when a stage fails (which a restart may mend)."""
    entries = unit_entries(UNIT.read_text())
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ALERTIK_RUN_DIR": str(tmp_path / "run"),
        "ALERTIK_STATE_DIR": str(tmp_path / "state"),
        "ENV_EVENTS": "1",
        "EVENT0_NOTIFIER": "Generic1",
        "EVENT0_MATCH_TYPE": "glob",
        "EVENT0_MATCH_STR": "x",
        "EVENT0_MASK_MSG": "x",
        "GENERIC1_WEBHOOK_URL": "http://127.0.0.1:9/hook",
    }
    proc = subprocess.run(
        [SCRIPT, "run"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.stderr.startswith("error: EVENT0_MATCH_TYPE: ")
    assert entries["Service.Restart"] == ["on-failure"]
    assert entries["Service.RestartPreventExitStatus"][0].split() == [
        str(proc.returncode)
    ]
    assert proc.returncode != 1
