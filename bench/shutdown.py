"""How long alertik takes to stop under a flood, and what a stop loses.

Two scenarios, each run --runs times (127.0.0.1 only):

* ``run``: ``alertik run`` with ALERTIK_DRAIN_SECONDS=1, two threads flooding
  its UDP port, SIGTERM while the flood goes on (the case of issue 11). It
  prints the time from SIGTERM to exit, and, from the stages' "stopped"
  lines, what ingest passed on (received - dropped) against what the matcher
  handled.
* ``handoff``: ingest and matcher started alone; a 2 s flood, then SIGTERM to
  ingest 1 s after it ends (the matcher is still catching up), and to the
  matcher once ingest is gone.

"lost" is what ingest passed on that the matcher never handled: messages
the kernel dropped before ingest read them are not in either count.

    python bench/shutdown.py [--runs 5] [--only run|handoff]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

LINE = b"<30>flood line system,info"


def environment(root: str) -> dict[str, str]:
    os.makedirs(os.path.join(root, "run"), mode=0o700)
    return dict(
        os.environ,
        ALERTIK_DRAIN_SECONDS="1",
        ALERTIK_UDP_PORT="0",
        ALERTIK_BIND="127.0.0.1",
        ALERTIK_RUN_DIR=os.path.join(root, "run"),
        ALERTIK_STATE_DIR=os.path.join(root, "state"),
        ALERTIK_LOG_FILE=os.path.join(root, "log.txt"),
        PYTHONUNBUFFERED="1",
    )


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "alertik", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(proc: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(pattern, line)
        if found:
            return found
    raise SystemExit(f"alertik exited before printing {pattern!r}")


class Flood:
    """Two threads sending LINE to port as fast as they can."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stopped = False
        self.threads = [threading.Thread(target=self._send) for _ in range(2)]
        for thread in self.threads:
            thread.start()

    def _send(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not self.stopped:
                s.sendto(LINE, ("127.0.0.1", self.port))

    def stop(self) -> None:
        self.stopped = True
        for thread in self.threads:
            thread.join()


def counts(output: str) -> tuple[int, int]:
    """(passed on by ingest, handled by the matcher) from the stopped lines."""
    ingest = re.search(r"stopped: received=(\d+) dropped=(\d+)", output)
    matcher = re.search(r"stopped: handled=(\d+)", output)
    assert ingest and matcher, output[-2000:]
    return int(ingest[1]) - int(ingest[2]), int(matcher[1])


def run_once() -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as root:
        proc = start(environment(root), "run")
        port = 0
        matcher = False
        while not (port and matcher):  # the two lines come in either order
            found = wait_for(proc, r"on udp \S*:(\d+)|matcher entered RUNNING")
            if found[1]:
                port = int(found[1])
            else:
                matcher = True
        flood = Flood(port)
        time.sleep(2)
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout is not None
        rest = proc.stdout.read()
        proc.wait()
        took = time.monotonic() - stopping
        flood.stop()
        passed, handled = counts(rest)
        return took, passed, handled


def handoff_once() -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as root:
        env = environment(root)
        matcher = start(env, "matcher")
        wait_for(matcher, "listening on")
        ingest = start(env, "ingest")
        port = int(wait_for(ingest, r"listening on udp \S*:(\d+)")[1])
        flood = Flood(port)
        time.sleep(2)
        flood.stop()
        time.sleep(1)
        ingest.send_signal(signal.SIGTERM)
        assert ingest.stdout is not None and matcher.stdout is not None
        said = ingest.stdout.read()
        ingest.wait()
        stopping = time.monotonic()
        matcher.send_signal(signal.SIGTERM)
        said += matcher.stdout.read()
        matcher.wait()
        passed, handled = counts(said)
        return time.monotonic() - stopping, passed, handled


def report(name: str, results: list[tuple[float, int, int]]) -> None:
    lost = [passed - handled for _, passed, handled in results]
    times = [took for took, _, _ in results]
    print(
        f"{name}: {len(results)} runs; stop took median "
        f"{statistics.median(times):.2f} s "
        f"(max {max(times):.2f}); runs that lost messages: "
        f"{sum(1 for n in lost if n)}; lost per run: {lost}; "
        f"passed on per run: median {statistics.median(r[1] for r in results):,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("run", "handoff"))
    args = parser.parse_args()
    if args.only in (None, "run"):
        report(
            "alertik run, SIGTERM during a flood",
            [run_once() for _ in range(args.runs)],
        )
    if args.only in (None, "handoff"):
        report(
            "ingest stopped 1 s after a flood",
            [handoff_once() for _ in range(args.runs)],
        )


if __name__ == "__main__":
    main()
