"""How long ``alertik run`` takes to start: to the UDP port bound, to an alert.

Usage: python bench/startup.py [--runs N] [--rules N] [--python]

Starts ``alertik run`` (the console script beside this interpreter, as a user
types it; ``--python`` runs ``python -m alertik run`` instead) N times with a
fresh run and state directory each time, 16 realistic rules (``--rules``) and a
generic webhook on 127.0.0.1, and measures from the moment it is started:

* **bound**: until the kernel lists the UDP port as bound, read from
  ``/proc/net/udp`` and ``/proc/net/udp6`` every millisecond (not from a log
  line, which comes later and through a pipe);
* **first alert**: one datagram that raises an alert is sent the moment the
  port is bound; until the webhook has it. A datagram sent to a bound port
  waits in the kernel until a stage reads it, so this is the time until
  alertik can deliver the first alert of a router that was already sending.

Prints the medians (and the spread) as Markdown table rows. The machine is
shared: quote the median of several runs, and the load (the first line).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

import harness as h

# How often /proc/net/udp is read while waiting for the port.
POLL_SECONDS = 0.001
# Longest any single start may take before the run counts as failed.
TIMEOUT_SECONDS = 60.0


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that nobody holds right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def udp_bound(port: int) -> bool:
    """Whether some socket is bound to this UDP port (IPv4 or IPv6)."""
    wanted = f":{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                if any(wanted in line.split(None, 2)[1] + " " for line in f):
                    return True
        except (OSError, IndexError):
            continue
    return False


def command(use_python: bool) -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "alertik")
    if use_python or not os.path.exists(script):
        return [sys.executable, "-P", "-m", "alertik", "run"]
    return [script, "run"]


def one_start(argv: list[str], rules: int) -> tuple[float, float]:
    """(seconds to the port bound, seconds to the first alert) of one start."""
    work = h.scratch_dir("alertik-bench-startup-")
    hook = h.Webhook()
    port = free_udp_port()
    env = h.clean_env(
        work,
        ALERTIK_UDP_PORT=str(port),
        GENERIC1_WEBHOOK_URL=hook.url,
        **h.events_env(h.rule_set(rules)),
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while not udp_bound(port):
            if proc.poll() is not None:
                raise RuntimeError(f"alertik run exited {proc.returncode}")
            if time.monotonic() - started > TIMEOUT_SECONDS:
                raise RuntimeError("the UDP port was never bound")
            time.sleep(POLL_SECONDS)
        bound = time.monotonic() - started
        sender.sendto(h.datagram(1, 1), ("127.0.0.1", port))
        if hook.wait(1, TIMEOUT_SECONDS) < 1:
            raise RuntimeError("the first alert never arrived")
        # Both clocks are CLOCK_MONOTONIC, in this process and the webhook's.
        first = hook.arrived[0][1] / 1e9 - started
        return bound, first
    finally:
        sender.close()
        stop(proc)
        hook.close()
        h.remove(work)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait; SIGKILL the whole session if it will not go."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def spread(values: list[float]) -> str:
    return (
        f"{h.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, "
        f"{len(values)} runs)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts (default 5)")
    parser.add_argument("--rules", type=int, default=16, help="rules (default 16)")
    parser.add_argument(
        "--python", action="store_true", help="python -m alertik run, not the script"
    )
    args = parser.parse_args()
    argv = command(args.python)
    print(f"# {h.machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"# command: {' '.join(os.path.basename(a) for a in argv)}")
    bound: list[float] = []
    first: list[float] = []
    for i in range(args.runs):
        b, f = one_start(argv, args.rules)
        bound.append(b)
        first.append(f)
        print(f"  run {i + 1}: bound {b:.3f} s, first alert {f:.3f} s", file=sys.stderr)
    print("| measure | median |")
    print("|---|---|")
    print(f"| `alertik run` to the UDP port bound | {spread(bound)} |")
    print(f"| `alertik run` to the first alert at the webhook | {spread(first)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
