"""The alertik image under a flood: its memory, from the container's cgroup.

Starts the image with podman or docker (as root, host network, so that
everything stays on 127.0.0.1), the realistic 16 rules sending to a local
webhook, the log archive on a 5 MB tmpfs at /log as on a router, and
optionally a hard memory limit. Then it measures the container's memory
(cgroup v2 ``memory.current``, or v1 ``memory.usage_in_bytes``) at idle and
while ``bench/harness.py``'s sender floods ingest at 50,000 datagrams/s, one
in 1,000 raising an alert, and says whether every alert reached the webhook
and whether the OOM killer ran.

    python bench/container.py localhost/alertik:amd64 --memory 96m

Prints its figures to stdout; nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import harness as h

from tests.support import WebhookProcess, events_env

UID = 10001
ALERT_EVERY = 1000


class Cgroup:
    """The memory figures of the cgroup a process is in (v2 or v1)."""

    def __init__(self, pid: int) -> None:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
        v1 = [
            path for _, controllers, path in lines if "memory" in controllers.split(",")
        ]
        if v1:
            self.v2 = False
            self.dir = "/sys/fs/cgroup/memory" + v1[0]
        else:
            self.v2 = True
            self.dir = "/sys/fs/cgroup" + next(p for i, _, p in lines if i == "0")

    def _read(self, name: str) -> str:
        with open(os.path.join(self.dir, name)) as f:
            return f.read()

    def current(self) -> int:
        return int(self._read("memory.current" if self.v2 else "memory.usage_in_bytes"))

    def peak(self) -> int | None:
        try:
            return int(
                self._read("memory.peak" if self.v2 else "memory.max_usage_in_bytes")
            )
        except OSError:
            return None

    def reset_peak(self) -> None:
        if not self.v2:
            with open(os.path.join(self.dir, "memory.max_usage_in_bytes"), "w") as f:
                f.write("0")

    def stat(self) -> dict[str, int]:
        """anon, file and shmem bytes (v1's rss, cache and shmem)."""
        fields = dict(
            (k, int(v))
            for k, v in (
                line.split() for line in self._read("memory.stat").splitlines()
            )
        )
        if self.v2:
            return {k: fields.get(k, 0) for k in ("anon", "file", "shmem")}
        return {
            "anon": fields.get("total_rss", 0),
            "file": fields.get("total_cache", 0),
            "shmem": fields.get("total_shmem", 0),
        }

    def oom_kills(self) -> int:
        text = self._read("memory.events" if self.v2 else "memory.oom_control")
        found = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(found.group(1)) if found else 0


class Sampler(threading.Thread):
    """Samples the cgroup's memory every 50 ms; keeps the highest seen, in all
    and of anonymous memory (what a limit cannot reclaim without swap)."""

    def __init__(self, cgroup: Cgroup) -> None:
        super().__init__(daemon=True)
        self.cgroup = cgroup
        self.highest = 0
        self.highest_anon = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.highest = max(self.highest, self.cgroup.current())
                self.highest_anon = max(self.highest_anon, self.cgroup.stat()["anon"])
            except OSError:
                return
            self.stop.wait(0.05)


def mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1048576:.1f} MiB"


def engine_run(args: argparse.Namespace, port: int, hook_url: str) -> str:
    env = events_env(*h.REALISTIC)
    env.update(
        GENERIC1_WEBHOOK_URL=hook_url,
        ALERTIK_UDP_PORT=str(port),
        ALERTIK_BIND="127.0.0.1",
        ALERTIK_NODE_NAME="bench",
    )
    owner = "U" if os.path.basename(args.engine) == "podman" else f"uid={UID},gid={UID}"
    argv = [
        args.engine,
        "run",
        "-d",
        "--network",
        "host",
        "--tmpfs",
        f"/log:size=5m,{owner}",
    ]
    if args.memory:
        argv += ["--memory", args.memory, "--memory-swap", args.memory]
    argv += args.run_arg
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    argv.append(args.image)
    # From /tmp: podman 4.3's conmon leaves a file named "oom" in its working
    # directory when the OOM killer strikes.
    out = subprocess.run(
        argv, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir()
    ).stdout
    return out.strip().splitlines()[-1]


def engine(args: argparse.Namespace, *words: str) -> str:
    return subprocess.run([args.engine, *words], capture_output=True, text=True).stdout


def wait_listening(args: argparse.Namespace, container: str, timeout: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        logs = subprocess.run(
            [args.engine, "logs", container], capture_output=True, text=True
        )
        if "listening on udp" in logs.stdout + logs.stderr:
            return time.monotonic() - began
        time.sleep(0.1)
    raise SystemExit(
        f"alertik did not start within {timeout:g} s:\n{logs.stdout}{logs.stderr}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--engine", default="podman", help="podman (default) or docker")
    parser.add_argument(
        "--memory", help="hard memory limit, e.g. 96m (none by default)"
    )
    parser.add_argument("--rate", type=int, default=50_000, help="datagrams/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="flood length")
    parser.add_argument(
        "--idle", type=float, default=5.0, help="seconds settled at idle"
    )
    parser.add_argument(
        "--run-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for `run`, e.g. --run-arg=--cap-add=NET_ADMIN",
    )
    args = parser.parse_args()

    hook = WebhookProcess()
    sender = h.Sender()
    port = h.free_udp_port()
    container = engine_run(args, port, hook.url + "/hook")
    try:
        wait_listening(args, container, 60)
        pid = int(engine(args, "inspect", "--format", "{{.State.Pid}}", container))
        cgroup = Cgroup(pid)
        # Warm-up: every stage has imported what it needs and seen an alert.
        sender.send(port, 1, 2000, 4000.0, 100)
        hook.collect(20, 30)
        time.sleep(args.idle)
        idle, idle_stat = cgroup.current(), cgroup.stat()
        print(
            f"image {args.image}, limit {args.memory or 'none'}, "
            f"{' '.join(args.run_arg) or 'no extra run arguments'}"
        )
        print(
            f"idle: {mib(idle)} (anon {mib(idle_stat['anon'])}, "
            f"file {mib(idle_stat['file'])}, shmem {mib(idle_stat['shmem'])})"
        )

        cgroup.reset_peak()
        sampler = Sampler(cgroup)
        sampler.start()
        first, count = 1_000_000, int(args.rate * args.seconds)
        hook.forget()
        drops = h.udp_drops(port)
        sent, elapsed, _, _ = sender.send(port, first, count, args.rate, ALERT_EVERY)
        expected = len([s for s in range(first, first + count) if s % ALERT_EVERY == 0])
        hook.collect(expected, 60)
        time.sleep(1)
        sampler.stop.set()
        sampler.join()
        try:
            flood_stat: dict[str, int] | None = cgroup.stat()
            peak, kills = cgroup.peak(), cgroup.oom_kills()
        except OSError:  # the container is gone (the OOM killer took pid 1)
            flood_stat, peak, kills = None, None, None
        state = engine(
            args,
            "inspect",
            "--format",
            "{{.State.Status}}, exit code {{.State.ExitCode}}, "
            "OOM-killed {{.State.OOMKilled}}",
            container,
        ).strip()
        seqs = {s for s, _ in h.arrivals(hook.requests) if s >= first}
        logs = engine(args, "logs", container)
        restarts = len(
            re.findall(r"exited: \w+ \(terminated by SIG|exited: \w+ \(exit", logs)
        )
        print(
            f"flood: {sent:,} datagrams at {sent / elapsed:,.0f}/s; "
            f"alerts at the webhook {len(seqs)}/{expected}; "
            f"kernel drops at ingest's socket {h.udp_drops(port) - drops:,}"
        )
        after = (
            "the cgroup is gone"
            if flood_stat is None
            else f"after: anon {mib(flood_stat['anon'])}, file "
            f"{mib(flood_stat['file'])}, shmem {mib(flood_stat['shmem'])}"
        )
        print(
            f"flood: highest {mib(max(sampler.highest, peak or 0))} "
            f"(sampled {mib(sampler.highest)}, cgroup peak {mib(peak)}), anon at "
            f"most {mib(sampler.highest_anon)}; {after}"
        )
        print(
            f"OOM kills: {'unknown' if kills is None else kills}; "
            f"stage exits: {restarts}; container: {state}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        return 0 if len(seqs) == expected and kills == 0 else 1
    finally:
        engine(args, "stop", "-t", "45", container)
        engine(args, "rm", "-f", container)
        sender.close()
        hook.close()


if __name__ == "__main__":
    sys.exit(main())
