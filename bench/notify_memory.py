"""Memory of the notify stage with and without an Apprise destination.

Starts ``python -m alertik notify`` three times on loopback, each with one
destination set by environment: a generic webhook, the same plus ntfy, and an
Apprise destination (``json://127.0.0.1:9/...``: never contacted, since no
alert is sent). Once notify logs that it is listening, and again after a
second, it reads the process's resident memory (VmRSS). (That Apprise is
imported only with an Apprise destination is a test:
tests/integration/test_apprise.py.)

    python bench/notify_memory.py            # prints one line per case

Needs Apprise for the third case (pip install 'alertik[apprise]').
"""

from __future__ import annotations

import sys
import tempfile
import time

import harness as h

from tests.support import Proc, memory

CASES = {
    "generic webhook": {
        "GENERIC1_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "EVENT0_NOTIFIER": "Generic1",
    },
    "ntfy": {
        "ALERTIK_NTFY_URL": "http://127.0.0.1:9",
        "ALERTIK_NTFY_TOPIC": "bench",
        "EVENT0_NOTIFIER": "Ntfy",
    },
    "apprise": {
        "ALERTIK_APPRISE_URL": "json://127.0.0.1:9/bench",
        "EVENT0_NOTIFIER": "Apprise",
    },
}
RUNS = 3


def measure(extra: dict[str, str]) -> int:
    """notify's VmRSS in KiB, a second after it started listening."""
    with tempfile.TemporaryDirectory() as tmp:
        env = h.clean_env(
            tmp,
            ALERTIK_LOG_FILE="-",
            ALERTIK_NOTIFY_ADDR="tcp://127.0.0.1:*",
            ALERTIK_NOTIFY_TAP="tcp://127.0.0.1:*",
            ENV_EVENTS="1",
            EVENT0_MATCH_TYPE="substr",
            EVENT0_MATCH_STR="x",
            EVENT0_MASK_MSG="x",
            **extra,
        )
        proc = Proc([sys.executable, "-m", "alertik", "notify"], env)
        try:
            proc.wait_line("notify listening on", 30)
            time.sleep(1.0)  # workers started, sessions made
            return memory(proc.popen.pid).rss // 1024
        finally:
            proc.terminate(10)


def main() -> int:
    first = None
    for name, extra in CASES.items():
        rss = sorted(measure(extra) for _ in range(RUNS))
        median = rss[len(rss) // 2] / 1024
        first = median if first is None else first
        runs = ", ".join(f"{r / 1024:.1f}" for r in rss)
        print(
            f"notify with {name:16s} VmRSS median {median:6.1f} MiB "
            f"({median - first:+5.1f}; runs: {runs})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
