"""Apprise destinations (``pip install 'alertik[apprise]'``): any service Apprise
knows, by its URL.

This module is imported only by a notify that has an ``apprise`` destination:
Apprise and its plugins cost megabytes in every process that imports them
(see docs/DESTINATIONS.md for the figures). Delivery still goes through our
courier: pacing, retries with backoff, the outbox and digests. Apprise says
only whether a notification went out, so a failure is retried like a refused
connection, with Apprise's own reason (from its log, scrubbed) in ours.

Apprise logs what it does, URLs and tokens included: its records never reach
our log. The ones of one attempt are kept and, scrubbed by the courier, become
the error text of a failed attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from alertik.common.config import ConfigError, NotifyConfig
from alertik.common.destinations import AppriseDestination
from alertik.notify.services import Attempt, Verdict

# How many of Apprise's own lines one failure keeps.
KEPT_LINES = 3


class _Collector(logging.Handler):
    """Keeps the records Apprise logs during one attempt."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.lines.append(record.getMessage())


# Apprise's logger is shared by the whole process: one attempt at a time.
_LOCK = threading.Lock()


def load() -> Any:
    """The apprise module, or a ConfigError saying how to install it."""
    try:
        import apprise
    except ImportError:
        raise ConfigError(
            "ALERTIK_APPRISE_URL",
            "an apprise destination needs Apprise: pip install 'alertik[apprise]'",
        ) from None
    logger = logging.getLogger("apprise")
    logger.propagate = False
    # A logger without handlers would fall back to printing on stderr.
    logger.handlers[:] = [logging.NullHandler()]
    logger.setLevel(logging.INFO)
    return apprise


class AppriseTransport:
    """Sends one destination's messages through Apprise."""

    def __init__(self, dest: AppriseDestination, cfg: NotifyConfig) -> None:
        apprise = load()
        self._apprise = apprise.Apprise()
        if not self._apprise.add(dest.url):
            raise ConfigError(
                "ALERTIK_APPRISE_URL",
                f"{dest.name}: Apprise does not understand this URL; check its "
                "scheme and parts against Apprise's documentation",
            )
        self._logger = logging.getLogger("apprise")

    def close(self) -> None:
        self._apprise.clear()

    def attempt(self, text: str, key: str) -> Attempt:
        started = time.monotonic()
        collector = _Collector()
        with _LOCK:
            self._logger.addHandler(collector)
            try:
                sent = self._apprise.notify(body=text)
            except Exception as exc:  # a plugin's bug: retried, not fatal
                sent = False
                collector.lines.append(f"{type(exc).__name__}: {exc}")
            finally:
                self._logger.removeHandler(collector)
        elapsed = time.monotonic() - started
        if sent:
            return Attempt(None, {}, b"", "", elapsed, verdict=Verdict("delivered"))
        why = "; ".join(collector.lines[-KEPT_LINES:]) or "no reason given"
        return Attempt(None, {}, b"", f"Apprise could not send: {why}", elapsed)
