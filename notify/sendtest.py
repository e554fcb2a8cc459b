"""``alertik send-test NAME [TEXT]``: send one real notification now.

NAME is a configured destination (a rules file's, or one set by environment)
or one of alertik's notifier names whose variables are set. It goes through
the same path as an alert (payload builder, session, TLS, timeouts, retries,
pacing), bounded in total time, and prints what happened: the status, and
the start of the service's answer when it refused.

For the RouterOS address-list action, without TEXT it only reads the list
(URL, certificate and login checked, nothing changed); with TEXT, an address,
it adds that address through the same path as an alert.
Exit status: 0 delivered, 1 not delivered, 2 configuration error.
"""

from __future__ import annotations

import re
import sys
import threading
import time

from alertik.common.config import Config, ConfigError, load
from alertik.common.destinations import (
    NOTIFIERS,
    AddressListDestination,
    Destination,
    destination,
)
from alertik.common.lifecycle import setup_logging
from alertik.common.schema import Alert
from alertik.notify import routeros, services
from alertik.notify.delivery import Courier

USAGE = (
    "usage: alertik send-test NAME [TEXT]\n"
    "  NAME: a configured destination, or one of "
    f"{', '.join(NOTIFIERS)}\n"
    "  TEXT: the message (default: a test text with the time); for a\n"
    "        routeros-address-list destination, an address to add"
)
# A test answers within this, retries included: long enough for a couple of
# retries or a short 429 wait, short enough for someone at a terminal.
BUDGET_S = 30.0
# A refused connection is tried this often before giving up: nothing listens
# there now, and someone at a terminal wants to know that, not to wait.
REFUSED_TRIES = 2
# How requests words a refused connection (ECONNREFUSED's text, any platform).
_REFUSED = re.compile(r"Connection refused|\[Errno 111\]|\[WinError 10061\]")


def _destination(name: str) -> tuple[Config, Destination]:
    """The configuration and the named destination, even if no rule uses it;
    KeyError if there is none of that name."""
    cfg = load()
    for dest in cfg.notify.destinations:
        if dest.name == name:
            return cfg, dest
    if name not in NOTIFIERS:
        raise KeyError(name)
    return cfg, destination(name)


def _order(address: str) -> Alert:
    """A test alert for an action: the address given, rule "send-test"."""
    return Alert(
        id="send-test",
        notifier="send-test",
        text=f"alertik send-test of {address}",
        rule="send-test",
        received=time.time(),
        sender="",
        node="",
        address=address,
    )


def main(argv: list[str]) -> int:
    """Send one test notification; 0 delivered, 1 not delivered, 2 config error."""
    if not 1 <= len(argv) <= 2 or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    notifier = argv[0]
    try:
        cfg, dest = _destination(notifier)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyError:
        print(
            f"error: {notifier!r} is not a configured destination nor a notifier; "
            f"use a destination's name or one of {', '.join(NOTIFIERS)}",
            file=sys.stderr,
        )
        return 2
    setup_logging(cfg.log_level)
    if isinstance(dest, AddressListDestination):
        if len(argv) == 1:
            ok, what = routeros.check(dest, cfg.notify)
            print(
                f"{dest.shown()}: {what}" if ok else f"{dest.shown()}: NOT OK: {what}"
            )
            return 0 if ok else 1
        argv = [notifier, services.routeros_order(_order(argv[1]))]
    if len(argv) == 2:
        text = argv[1]
    else:
        text = f"alertik test notification from {cfg.ingest.node_name}" + (
            time.strftime(cfg.time_suffix)
        )
    halt = threading.Event()
    try:
        courier = Courier(dest, cfg.notify, halt)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    refused = 0

    def watch(attempt: int, verdict: services.Verdict) -> None:
        nonlocal refused
        refused = refused + 1 if _REFUSED.search(verdict.reason) else 0
        if refused >= REFUSED_TRIES:
            halt.set()

    started = time.monotonic()
    deadline = started + BUDGET_S
    attempts = 0
    try:
        for message in services.parts(dest.kind, text):
            outcome = courier.send(message, deadline=deadline, on_retry=watch)
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
    if refused >= REFUSED_TRIES:
        why = (
            f"connection refused {refused} times: nothing listens at that address; "
            "is the address right and the service up?"
        )
    elif outcome.result == "timeout":
        why = f"gave up after {attempts} attempt{plural} in {elapsed:.0f} s"
    else:
        why = "refused"
    print(f"{courier.name}: NOT delivered ({why}): {outcome.detail or 'no answer'}")
    return 1
