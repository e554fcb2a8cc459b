"""The log archive: every received message, one line each, with rotation.

As in alertik, the log doubles as an archive of the router's log; unlike
alertik it rotates, so a 5 MB tmpfs on /log never fills up.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time

log = logging.getLogger(__name__)


def _escape(text: str) -> str:
    """One line per message: trailing newlines go, inner ones are shown as \\n."""
    text = text.rstrip("\r\n")
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text


class Archive:
    """Writes ``[YYYY-MM-DD HH:MM:SS] sender text`` lines to a file or stderr."""

    def __init__(self, path: str | None, max_bytes: int, backups: int) -> None:
        self.path = path
        handler: logging.Handler
        if path:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            # delay: the file is opened on first write, so a read-only
            # directory shows up as a logged error, not a crash at start-up.
            handler = logging.handlers.RotatingFileHandler(
                path,
                maxBytes=max_bytes,
                backupCount=backups,
                encoding="utf-8",
                errors="replace",
                delay=True,
            )
        else:
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._handler = handler
        self._logger = logging.Logger("alertik.archive")
        self._logger.propagate = False
        self._logger.addHandler(handler)
        self._last_second = -1
        self._stamp = ""

    def _time(self, when: float) -> str:
        second = int(when)
        if second != self._last_second:
            self._last_second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
        return self._stamp

    def message(self, when: float, sender: str, text: str) -> None:
        """Archive one received message."""
        self._logger.info("[%s] %s %s", self._time(when), sender, _escape(text))

    def note(self, when: float, text: str) -> None:
        """Archive a line about what alertik did (an alert sent, a rule matched)."""
        self._logger.info("[%s] %s", self._time(when), _escape(text))

    def close(self) -> None:
        self._handler.close()
