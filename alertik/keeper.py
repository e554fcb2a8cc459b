"""What ``alertik run`` becomes once the configuration is checked: the keeper.

The keeper is the parent of supervisord and stays small (it imports no part
of alertik), because it lives as long as the container. It does what
supervisord cannot:

* **Holds the UDP socket.** ``alertik run`` binds it before anything else
  starts and hands it to each new ingest over a Unix socket in the run
  directory (``listen.sock``, SCM_RIGHTS). While ingest restarts (a crash,
  ``kill -9``), datagrams queue in the kernel instead of being refused.
* **Owns the output.** supervisord and the stages write into a pipe that the
  keeper copies to its own standard output, whatever that is (a terminal, a
  pipe, a file, systemd's journal socket), one writer, each line once.
* **Fails whole.** A stage that cannot start (supervisord gives up: FATAL) or
  that keeps crashing for more than CRASH_LOOP_SECONDS stops everything with
  one line naming the stage and its last error, and a non-zero exit status, so
  systemd, Docker or RouterOS restart the whole container instead of leaving
  it alive and deaf.
* **Signals.** SIGTERM/SIGINT stop supervisord (stages drain front to back);
  SIGHUP is passed to every running stage, which reloads.
* **Knows who is alive.** Every stage sends it a heartbeat a second
  (``keeper.sock``, see ``common/status.py``); ``alertik health`` asks it.
* **Never leaves orphans.** supervisord dies with the keeper (PDEATHSIG); if
  supervisord dies, its stages notice their parent is gone and stop, and the
  keeper (their subreaper) reaps them before it exits non-zero.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time

# A stage that crashed again and again (each run shorter than this) for this
# long is in a loop supervisord will not end by itself.
CRASH_LOOP_SECONDS = 60.0
# A stage that exits with a configuration error (status 2) this many times in
# a row cannot start, whether or not supervisord counted the attempts as
# failed starts (a slow exit can outlast its startsecs).
CONFIG_ERROR_TRIES = 3
# After supervisord died on its own: how long the stages get to stop.
ORPHANS_WAIT_SECONDS = 15.0
# The request an ingest sends over listen.sock, and the name of what it gets.
UDP_REQUEST = b"udp"
# Where stages send heartbeats and `alertik health` asks (common/status.py).
KEEPER_SOCKET = "keeper.sock"
STAGES = ("ingest", "matcher", "notify", "forwarder", "web")

_SPAWNED = re.compile(r"spawned: '(\w+)' with pid (\d+)")
_EXITED = re.compile(r"exited: (\w+) \((.*); (not )?expected\)")
_FATAL = re.compile(r"gave up: (\w+) entered FATAL state")
_STAGE_LINE = re.compile(r" \S+\[(\d+)\] (ERROR|CRITICAL) (.*)")
# Linux prctl options (include/uapi/linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Keeper:
    def __init__(self, argv: list[str], run_dir: str, udp_fd: int | None) -> None:
        self.argv = argv
        self.run_dir = run_dir
        self.udp_fd = udp_fd
        self.sel = selectors.DefaultSelector()
        self.pids: dict[str, int] = {}  # running stages
        self.spawned_at: dict[str, float] = {}
        self.loop_since: dict[str, float] = {}  # first crash of a crash loop
        self.last_error: dict[int, str] = {}  # pid -> its last error line
        self.last_pid: dict[str, int] = {}  # stage -> its latest pid
        self.spawns: dict[str, int] = {}  # stage -> times supervisord started it
        self.config_errors: dict[str, int] = {}  # stage -> exits with status 2
        self.failure = ""  # why the keeper is stopping everything
        self.stopping = False
        self.children_left = True
        self._partial = b""
        self.beats: dict[str, tuple[float, bytes]] = {}  # stage -> (when, status)
        self.serving: dict[str, int] = {}  # stage -> pid that sent a heartbeat
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._signals: list[int] = []

    # -- output ------------------------------------------------------------

    def say(self, level: str, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        ms = int(time.time() * 1000) % 1000
        line = f"{stamp},{ms:03d} alertik.run[{os.getpid()}] {level} {text}\n"
        self._write(line.encode("utf-8", "replace"))

    def _write(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(1, data) :]
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                return  # nobody reads our output any more; keep running

    def _copy_output(self, fd: int) -> bool:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        self._write(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-4096:]
        for raw in lines:
            self._watch(raw.decode("utf-8", "replace"))
        return True

    # -- what supervisord says -------------------------------------------

    def _watch(self, line: str) -> None:
        now = time.monotonic()
        if m := _SPAWNED.search(line):
            stage, pid = m.group(1), int(m.group(2))
            self.pids[stage] = self.last_pid[stage] = pid
            self.spawns[stage] = self.spawns.get(stage, 0) + 1
            self.spawned_at[stage] = now
        elif m := _STAGE_LINE.search(line):
            self.last_error[int(m.group(1))] = m.group(3)
        elif m := _EXITED.search(line):
            stage, how, unexpected = m.group(1), m.group(2), m.group(3)
            pid = self.pids.pop(stage, 0)
            errors = (
                self.config_errors.get(stage, 0) + 1 if how == "exit status 2" else 0
            )
            self.config_errors[stage] = errors
            if errors >= CONFIG_ERROR_TRIES and not self.stopping:
                self._fail(stage, "cannot start", pid)
            elif unexpected and not self.stopping:
                ran = now - self.spawned_at.get(stage, now)
                if ran >= CRASH_LOOP_SECONDS:
                    self.loop_since.pop(stage, None)
                first = self.loop_since.setdefault(stage, now)
                if now - first > CRASH_LOOP_SECONDS:
                    self._fail(stage, f"keeps crashing ({how})", pid)
        elif m := _FATAL.search(line):
            stage = m.group(1)
            self._fail(stage, "cannot start", self.last_pid.get(stage, 0))

    def _fail(self, stage: str, what: str, pid: int) -> None:
        if self.failure:
            return
        reason = self.last_error.get(pid, "see its log above")
        self.failure = f"{stage} {what}: {reason}"
        self.say("ERROR", f"stopping alertik: {self.failure}")
        self._stop_supervisord()

    # -- the UDP socket for ingest -----------------------------------------

    def _bind(self, name: str, kind: socket.SocketKind) -> socket.socket:
        """A Unix socket of kind bound to name in the run directory, replacing
        any old one, usable by this user alone."""
        path = os.path.join(self.run_dir, name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, kind)
        old = os.umask(0o077)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        return sock

    def _listen(self) -> socket.socket | None:
        if self.udp_fd is None:
            return None
        server = self._bind("listen.sock", socket.SOCK_STREAM)
        server.listen(8)
        server.setblocking(False)
        return server

    def _hand_over(self, server: socket.socket) -> None:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return
        with conn:
            conn.settimeout(2.0)
            try:
                if conn.recv(16) == UDP_REQUEST and self.udp_fd is not None:
                    socket.send_fds(conn, [UDP_REQUEST], [self.udp_fd])
            except OSError as exc:
                self.say("WARNING", f"could not hand the UDP socket over: {exc}")

    # -- heartbeats ------------------------------------------------------------

    def _bind_heartbeats(self) -> socket.socket:
        sock = self._bind(KEEPER_SOCKET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        return sock

    def _heartbeat(self, sock: socket.socket, env: dict[str, str]) -> None:
        while True:
            try:
                data, sender = sock.recvfrom(1 << 20)
            except (BlockingIOError, InterruptedError):
                return
            if data.startswith(b"?"):
                with contextlib.suppress(OSError):
                    sock.sendto(self._answer(env), sender)
                continue
            stage, _, status = data.partition(b"\n")
            name = stage.decode("ascii", "replace")
            self.beats[name] = (time.monotonic(), status)
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.serving[name] = int(json.loads(status)["pid"])

    def _answer(self, env: dict[str, str]) -> bytes:
        now = time.monotonic()
        stages = {}
        for stage, (when, raw) in self.beats.items():
            try:
                status = json.loads(raw)
            except ValueError:
                continue
            running = self.pids.get(stage)
            stages[stage] = {"age": now - when, "status": status, "pid": running}
        expected = [
            s for s in STAGES if env.get(f"ALERTIK_START_{s.upper()}") == "true"
        ]
        return json.dumps(
            {
                "stages": stages,
                "expected": expected,
                "failure": self.failure,
                "spawns": self.spawns,
            }
        ).encode()

    # -- signals and children ------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def _stop_supervisord(self) -> None:
        if not self.stopping:
            self.stopping = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:
                # Only to stages that are serving (a heartbeat came from that
                # very process): one still starting has no handler yet, and
                # SIGHUP would kill it; it reads everything afresh anyway.
                ready = {
                    stage: pid
                    for stage, pid in self.pids.items()
                    if self.serving.get(stage) == pid
                }
                starting = sorted(set(self.pids) - set(ready))
                self.say(
                    "INFO",
                    f"reload: passing SIGHUP to {', '.join(sorted(ready)) or 'none'}"
                    + (f" ({', '.join(starting)} still starting)" if starting else ""),
                )
                for pid in ready.values():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGHUP)
            elif signum == signal.SIGCHLD:
                continue
            elif self.stopping:
                # A second stop request: let supervisord hurry the stages.
                os.kill(self.proc.pid, signal.SIGTERM)
            else:
                self._stop_supervisord()

    def _reap(self) -> int | None:
        """Reap every child that ended; supervisord's exit status once it has.

        Stages left behind by a dead supervisord become our children (we are
        their subreaper); self.children_left says whether any remain.
        """
        status = None
        while True:
            try:
                pid, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children_left = False
                return status
            if pid == 0:
                self.children_left = True
                return status
            if pid == self.proc.pid:
                status = os.waitstatus_to_exitcode(raw)

    # -- the loop --------------------------------------------------------------

    def run(self, env: dict[str, str]) -> int:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, self._on_signal)
        server = self._listen()
        beats = self._bind_heartbeats()
        env = {**env, "ALERTIK_KEEPER_PID": str(os.getpid())}
        if server is not None:
            env = {**env, "ALERTIK_LISTEN_SOCKET": server.getsockname()}
        out_r, out_w = os.pipe()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            env=env,
            preexec_fn=_die_with_parent,
        )
        os.close(out_w)
        os.set_blocking(out_r, False)
        self.sel.register(out_r, selectors.EVENT_READ, "output")
        self.sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        if server is not None:
            self.sel.register(server, selectors.EVENT_READ, "listen")
        self.sel.register(beats, selectors.EVENT_READ, "beats")
        status: int | None = None
        output_open = True
        orphans_until = 0.0
        # Until supervisord has ended, its output is all copied and no stage
        # is left (those a dead supervisord left get ORPHANS_WAIT_SECONDS to
        # stop: while one lives it holds the UDP port and the state
        # directory, and a new alertik run could not start).
        while status is None or (
            (output_open or self.children_left) and time.monotonic() < orphans_until
        ):
            for key, _ in self.sel.select(1.0):
                if key.data == "output" and not self._copy_output(out_r):
                    self.sel.unregister(out_r)
                    output_open = False
                elif key.data == "wake":
                    os.read(self._wake_r, 512)
                elif key.data == "listen" and server is not None:
                    self._hand_over(server)
                elif key.data == "beats":
                    self._heartbeat(beats, env)
            self._handle_signals()
            if status is None:
                status = self._reap()
                if status is not None:
                    orphans_until = time.monotonic() + ORPHANS_WAIT_SECONDS
                    if not self.stopping:
                        self.failure = f"supervisord ended on its own ({status})"
                        self.say("ERROR", f"stopping alertik: {self.failure}")
            else:
                self._reap()
        if server is not None:
            server.close()
        beats.close()
        if self.failure:
            return 1
        return 0 if status == 0 else 1


def main() -> int:
    env = dict(os.environ)
    udp = env.pop("ALERTIK_KEEPER_UDP_FD", "")
    keeper = Keeper(sys.argv[1:], env["ALERTIK_RUN_DIR"], int(udp) if udp else None)
    return keeper.run(env)


if __name__ == "__main__":
    sys.exit(main())
