"""notify's outbox when its database is damaged, locked or on a full disk.

* A damaged ``outbox.sqlite3`` (a page of junk, the header intact) must not
  keep notify from starting: it reads back what it can, says what was lost,
  and delivers the rest and every new alert.
* A write lock held by another process, or a disk that fills up, sends alerts
  to memory only while it lasts: notify goes back to the file by itself,
  takes out of it what was delivered meanwhile and puts in what was accepted,
  so a later ``kill -9`` neither loses an alert nor delivers one twice.

Each test runs ``alertik run`` (supervisord and every stage) and prints what
was sent, delivered, duplicated and lost, so ``pytest -s -m fault`` gives the
figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from alertik.common.schema import Alert
from alertik.notify.outbox import Outbox
from alertik.notify.outboxdb import OUTBOX_FILE
from tests.support import (
    REPO,
    Proc,
    Reply,
    Request,
    WebhookServer,
    base_env,
    children_of,
    events_env,
    send_udp,
    stage_pids,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.fault

PAGE = 4096
RULE = ("Generic1", "regex", r"MARK ([a-z0-9]+)", "alert @1")


class Service:
    """The webhook's answers, switched by the test: 200, or 503 (retry)."""

    def __init__(self, webhook: WebhookServer) -> None:
        self.up = False
        self.delivered: list[str] = []  # texts answered 200, repeats included
        self._lock = threading.Lock()
        webhook.replies = self.reply

    def reply(self, req: Request) -> Reply:
        with self._lock:
            if not self.up:
                return Reply(status=503)
            self.delivered.append(req.json()["text"].split(", at: ")[0])
            return Reply()

    def count(self) -> Counter[str]:
        with self._lock:
            return Counter(self.delivered)


@pytest.fixture
def runs() -> Iterator[list[Proc]]:
    """``alertik run`` processes, killed with all their stages at teardown."""
    procs: list[Proc] = []
    yield procs
    for proc in procs:
        for pid in [proc.popen.pid, *children_of(proc.popen.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()


def start(runs: list[Proc], env: dict[str, str], mount: str = "") -> Proc:
    """``alertik run``, in a private mount namespace prepared by mount if given."""
    alertik = [sys.executable, "-m", "alertik", "run"]
    args = alertik
    if mount:
        args = [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"set -e; {mount}; exec {shlex.join(alertik)}",
        ]
    runs.append(Proc(args, env, REPO))
    run = runs[-1]
    for stage in ("notify", "matcher", "ingest"):
        run.wait_line(f"success: {stage} entered RUNNING state")
    return run


def notify_pid(run: Proc) -> int:
    pid = stage_pids(run.popen.pid).get("notify")
    if pid is None:
        pytest.fail(f"no notify under supervisord:\n{run.output}")
    return pid


def distinct(run: Proc, needle: str) -> int:
    """Distinct output lines holding needle (supervisord repeats each)."""
    return len({line for line in run.output.splitlines() if needle in line})


READ_TEXTS = """
import json, sqlite3, sys
try:
    db = sqlite3.connect(sys.argv[1], timeout=5)
    print(json.dumps([r[0] for r in db.execute("SELECT text FROM outbox")]))
except sqlite3.Error:
    print("null")
"""


def waiting(path: Path, namespace_of: int = 0) -> list[str] | None:
    """The texts of the alerts waiting in the outbox file at path, read by
    another process (in the mount namespace of process namespace_of if
    given); None while it cannot be read."""
    args = [sys.executable, "-c", READ_TEXTS, str(path)]
    if namespace_of:
        args = ["nsenter", "-t", str(namespace_of), "-m", *args]
    out = subprocess.run(args, capture_output=True, timeout=10, check=True)
    texts = json.loads(out.stdout)
    return None if texts is None else [t.split(", at: ")[0] for t in texts]


# -- a damaged file ---------------------------------------------------------


def damaged_outbox(state: Path, count: int) -> None:
    """An outbox with count alerts pending for Generic1, then one page of its
    table in the middle overwritten with junk (the header intact)."""
    box = Outbox.open(str(state), 100_000, 86400.0)
    box.add(
        [
            Alert(
                id=f"old-{i}",
                notifier="Generic1",
                text=f"alert old{i}, at: 2026-01-01 00:00:00",
                rule="EVENT0",
                received=0.0,
                sender="192.0.2.1",
                node="test-node",
            )
            for i in range(count)
        ]
    )
    box.close()
    path = state / OUTBOX_FILE
    data = path.read_bytes()
    pages = [n for n in range(0, len(data), PAGE) if b"alert old" in data[n : n + PAGE]]
    with open(path, "r+b") as f:
        f.seek(pages[len(pages) // 2])
        f.write(b"\xff" * 128)


def test_a_damaged_outbox_still_starts_delivers_what_it_can_and_says_what_is_lost(
    tmp_path: Path, runs: list[Proc], webhook: WebhookServer
) -> None:
    """1. the state directory holds an outbox with 300 alerts pending, one
       page of it junk;
    2. ``alertik run``; then 5 new alert lines.
    Result: notify stays up (it never exits); its log says the file is
    damaged and how many alerts were lost; every other old alert and every
    new one is delivered once."""
    service = Service(webhook)
    service.up = True
    damaged_outbox(tmp_path / "state", 300)
    env = base_env(
        tmp_path, GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook", **events_env(RULE)
    )
    run = start(runs, env)
    send_udp(udp_port_of(run), *[b"MARK new%d" % i for i in range(5)])
    new = {f"alert new{i}" for i in range(5)}
    wait_for(lambda: new <= set(service.count()), 20, "the new alerts delivered")
    line = run.wait_line("is DAMAGED")
    m = re.search(r"read back (\d+) pending alerts .*LOST (\d+) alerts", line)
    assert m, line
    salvaged, lost = int(m.group(1)), int(m.group(2))
    wait_for(lambda: len(service.count()) >= salvaged + 5, 20, "every alert")
    assert run.terminate() == 0
    got = service.count()
    old = [t for t in got if t.startswith("alert old")]
    print(
        f"\ndamaged outbox: 300 alerts pending, {salvaged} read back and "
        f"delivered ({len(old)}), {lost} reported lost; 5 new sent, "
        f"{len(new & set(got))} delivered; {sum(got.values()) - len(got)} "
        "delivered twice"
    )
    assert salvaged + lost == 300 and 0 < lost < 300
    assert len(old) == salvaged and new <= set(got)
    assert max(got.values()) == 1
    assert "exited: notify" not in run.output.split("SIGTERM")[0]
    assert list((tmp_path / "state").glob(f"{OUTBOX_FILE}.broken-*"))


# -- a fault that passes ----------------------------------------------------


def namespaces_work() -> bool:
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


class Lock:
    """Another process's write lock on the outbox (sqlite3 in a shell)."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import select, sqlite3, sys\n"
                "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "db.execute('BEGIN IMMEDIATE')\n"
                "print('locked', flush=True)\n"
                "select.select([sys.stdin], [], [], 60)\n",  # until released
                str(path),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"locked\n"

    def release(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        assert self.proc.wait(10) == 0
        self.proc.stdout.close()


class Full:
    """A filler file taking every free byte of the tmpfs the state is on."""

    def __init__(self, disk: Path) -> None:
        self.path = disk / "fill"
        with open(self.path, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass

    def release(self) -> None:
        self.path.unlink()


@pytest.mark.parametrize("fault", ["locked", "full"])
def test_a_passing_fault_costs_no_alert_and_delivers_none_twice_across_kill_9(
    tmp_path: Path, runs: list[Proc], webhook: WebhookServer, fault: str
) -> None:
    """1. the webhook answers 503; alerts a0-a9 wait in the outbox file;
    2. another process holds the database's write lock (or the disk fills);
       alerts b0-b9 arrive and go to memory;
    3. the webhook answers 200: a* and b* are delivered from memory;
    4. the lock is released (the disk freed); the webhook answers 503 again;
    5. alerts c0-c9 arrive; notify is killed with SIGKILL and restarted by
       supervisord; the webhook answers 200.
    Result: notify goes back to the file by itself; every alert is delivered
    exactly once."""
    if fault == "full" and not NAMESPACES:
        pytest.skip("cannot mount a tmpfs here")
    service = Service(webhook)
    disk = tmp_path / "disk"
    disk.mkdir()
    env = base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook",
        ALERTIK_STATE_DIR=str(disk / "state"),
        DISK=str(disk),
        **events_env(RULE),
    )
    mount = ""
    if fault == "full":
        mount = 'mount -t tmpfs -o size=1m,mode=700 tmpfs "$DISK"; mkdir "$DISK/state"'
    run = start(runs, env, mount)
    # The disk as notify sees it (inside its mount namespace, if any).
    inside = Path(f"/proc/{run.popen.pid}/root") / str(disk).lstrip("/")
    outbox = disk / "state" / OUTBOX_FILE
    port = udp_port_of(run)

    def stored() -> set[str]:
        return set(waiting(outbox, run.popen.pid if mount else 0) or ())

    def send(group: str) -> set[str]:
        send_udp(port, *[b"MARK %s%d" % (group.encode(), i) for i in range(10)])
        return {f"alert {group}{i}" for i in range(10)}

    a = send("a")
    wait_for(lambda: stored() == a, 10, "a* in the outbox file")
    holder: Lock | Full = Lock(outbox) if fault == "locked" else Full(inside)
    send("b")
    run.wait_line("keeping alerts in memory")
    service.up = True
    wait_for(lambda: len(service.count()) == 20, 20, "a* and b* delivered")
    service.up = False
    holder.release()
    c = send("c")
    # Delivered a* and b* leave the file, c* come into it.
    wait_for(lambda: stored() == c, 10, "only c* in the outbox file")
    os.kill(notify_pid(run), signal.SIGKILL)
    running = "success: notify entered RUNNING state"
    wait_for(lambda: distinct(run, running) >= 2, 20, "notify restarted")
    service.up = True
    wait_for(lambda: len(service.count()) == 30, 20, "c* delivered")
    assert run.terminate() == 0
    got = service.count()
    sent = {f"alert {g}{i}" for g in "abc" for i in range(10)}
    twice = sum(n - 1 for n in got.values())
    print(
        f"\n{fault}: 30 alerts sent, {len(got)} delivered, {twice} delivered "
        f"twice, {len(sent - set(got))} lost"
    )
    assert set(got) == sent
    assert twice == 0
    assert distinct(run, "can be used again") == 1
