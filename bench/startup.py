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
import socket
import sys
import time

import harness as h

from tests.support import Proc, WebhookProcess, events_env

# How often /proc/net/udp is read while waiting for the port.
POLL_SECONDS = 0.001
# Longest any single start may take before the run counts as failed.
TIMEOUT_SECONDS = 60.0


def command(use_python: bool) -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "alertik")
    if use_python or not os.path.exists(script):
        return [sys.executable, "-P", "-m", "alertik", "run"]
    return [script, "run"]


def one_start(argv: list[str], rules: int) -> tuple[float, float]:
    """(seconds to the port bound, seconds to the first alert) of one start."""
    work = h.scratch_dir("alertik-bench-startup-")
    hook = WebhookProcess()
    port = h.free_udp_port()
    env = h.clean_env(
        work,
        ALERTIK_UDP_PORT=str(port),
        GENERIC1_WEBHOOK_URL=hook.url + "/hook",
        **events_env(*h.rule_set(rules)),
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    proc = Proc(argv, env)
    started = proc.started
    try:
        while not h.udp_bound(port):
            if proc.popen.poll() is not None:
                raise RuntimeError(
                    f"alertik run exited {proc.popen.returncode}:\n{proc.output}"
                )
            if time.monotonic() - started > TIMEOUT_SECONDS:
                raise RuntimeError("the UDP port was never bound")
            time.sleep(POLL_SECONDS)
        bound = time.monotonic() - started
        sender.sendto(h.datagram(1, 1), ("127.0.0.1", port))
        if not hook.collect(1, TIMEOUT_SECONDS):
            raise RuntimeError("the first alert never arrived")
        # Both clocks are CLOCK_MONOTONIC, in this process and the webhook's.
        first = hook.requests[0].at - started
        return bound, first
    finally:
        sender.close()
        h.stop(proc, 30)
        hook.close()
        h.remove(work)


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
