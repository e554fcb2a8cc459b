"""What each stage imports by the time it is running, from ``-X importtime``.

Usage: python bench/imports.py [--top N] [STAGE ...]

Runs each stage alone in the foreground (``python -X importtime -m alertik
STAGE``) with 16 realistic rules, a generic webhook URL and a forward target,
waits until it says where it listens (so whatever it imports while starting
counts), stops it, and prints per stage the number of modules imported and
the top-level packages that cost the most import time, and, for the parent
of all of them, ``supervisord``. Import times are noisy on a shared machine;
the module counts are not.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter

import harness as h

from tests.support import Proc, events_env

STAGES = ("ingest", "matcher", "notify", "forwarder")
_IMPORT = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def imported(argv: list[str], env: dict[str, str], ready: str | None) -> list[str]:
    """The output lines of a process (its importtime lines among them), once it
    printed ready and was stopped, or (ready None) once it exited."""
    proc = Proc([sys.executable, "-X", "importtime", *argv], env)
    try:
        if ready is not None:
            proc.wait_line(ready, 30)
        else:
            proc.popen.wait(30)
    finally:
        proc.terminate(20)
    return proc.lines


def report(name: str, lines: list[str], top: int) -> None:
    by_package: Counter[str] = Counter()
    modules = 0
    for line in lines:
        found = _IMPORT.match(line)
        if found is None:
            continue
        modules += 1
        package = found.group(4).split(".")[0]
        by_package[package] += int(found.group(1))
    costly = ", ".join(
        f"{package} {us / 1000:.1f}" for package, us in by_package.most_common(top)
    )
    print(f"| {name} | {modules} | {costly} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", default=STAGES, metavar="STAGE")
    parser.add_argument("--top", type=int, default=8, help="packages shown")
    args = parser.parse_args()
    work = h.scratch_dir("alertik-bench-imports-")
    env = h.clean_env(
        work,
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/hook",
        FORWARD_HOST="127.0.0.1",
        FORWARD_PORT="9",
        **events_env(*h.rule_set(16)),
    )
    print(f"# {h.machine()}; load average {os.getloadavg()[0]:.1f}")
    print("| process | modules | self import time by package, ms |")
    print("|---|---:|---|")
    try:
        for stage in args.stages:
            lines = imported(["-m", "alertik", stage], env, " listening on ")
            report(stage, lines, args.top)
        lines = imported(["-c", "import supervisor.supervisord"], env, None)
        report("supervisord (its imports)", lines, args.top)
    finally:
        h.remove(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
