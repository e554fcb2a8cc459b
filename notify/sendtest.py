"""``alertik send-test NOTIFIER [TEXT]``: send one real notification now.

It goes through the same path as an alert (payload builder, session, TLS,
timeouts, retries, pacing), bounded in total time, and prints what happened:
the HTTP status, and the start of the service's answer when it refused.
Exit status: 0 delivered, 1 not delivered, 2 configuration error.
"""

from __future__ import annotations

import sys
import threading
import time

from alertik.common.config import Config, ConfigError, load
from alertik.common.destinations import NOTIFIERS, Destination, destination
from alertik.common.lifecycle import setup_logging
from alertik.notify import services
from alertik.notify.delivery import Courier

USAGE = (
    "usage: alertik send-test NOTIFIER [TEXT]\n"
    f"  NOTIFIER: one of {', '.join(NOTIFIERS)}\n"
    "  TEXT: the message (default: a test text with the time)"
)
# A test answers within this, retries included: long enough for a couple of
# retries or a short 429 wait, short enough for someone at a terminal.
BUDGET_S = 30.0


def _destination(notifier: str) -> tuple[Config, Destination]:
    """The configuration and the notifier's destination, even if no event uses it."""
    cfg = load()
    for dest in cfg.notify.destinations:
        if dest.name == notifier:
            return cfg, dest
    return cfg, destination(notifier)


def main(argv: list[str]) -> int:
    """Send one test notification; 0 delivered, 1 not delivered, 2 config error."""
    if not 1 <= len(argv) <= 2 or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    notifier = argv[0]
    if notifier not in NOTIFIERS:
        print(
            f"error: {notifier!r} is not a notifier; use one of {', '.join(NOTIFIERS)}",
            file=sys.stderr,
        )
        return 2
    try:
        cfg, dest = _destination(notifier)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level)
    if len(argv) == 2:
        text = argv[1]
    else:
        text = f"alertik test notification from {cfg.ingest.node_name}" + (
            time.strftime(cfg.time_suffix)
        )
    try:
        courier = Courier(dest, cfg.notify, threading.Event())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    deadline = started + BUDGET_S
    attempts = 0
    try:
        for message in services.parts(dest.kind, text):
            outcome = courier.send(message, deadline=deadline)
            attempts += outcome.attempts
            if outcome.result != "delivered":
                break
    except KeyboardInterrupt:
        print(f"{courier.name}: interrupted", file=sys.stderr)
        return 1
    finally:
        courier.close()
    elapsed = time.monotonic() - started
    plural = "" if attempts == 1 else "s"
    if outcome.result == "delivered":
        status = (
            ""
            if outcome.status is None
            else f"{courier.service.protocol} {outcome.status}, "
        )
        note = f" ({outcome.detail})" if outcome.detail else ""
        print(
            f"{courier.name}: delivered{note}, {status}"
            f"{attempts} attempt{plural}, {elapsed:.2f} s"
        )
        return 0
    if outcome.result == "skipped":
        print(f"{courier.name}: NOT acted on: {outcome.detail}")
        return 1
    if outcome.result == "timeout":
        why = f"gave up after {attempts} attempt{plural} in {elapsed:.0f} s"
    else:
        why = "refused"
    print(f"{courier.name}: NOT delivered ({why}): {outcome.detail or 'no answer'}")
    return 1
