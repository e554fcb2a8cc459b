"""Stage lifecycle: logging set-up, the stop flag, and main()'s exit codes."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from alertik.common import sockets
from alertik.common.config import Config, ConfigError, load

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s"

# SIGTERM: supervisord and docker stop; SIGINT: Ctrl-C in a terminal.
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopFlag:
    """Set by the first SIGTERM/SIGINT; a second one asks to skip the drain."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.force = False
        self.signal_name = ""

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: only records; the loops notice within POLL_MS."""
        if self._event.is_set():
            self.force = True
        self.signal_name = signal.Signals(signum).name
        self._event.set()


@contextmanager
def capture_signals(stop: StopFlag) -> Iterator[None]:
    """Install the stop handlers for the duration, then restore the old ones."""
    previous = {sig: signal.signal(sig, stop.handle) for sig in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def setup_logging(level: str = "INFO") -> None:
    """One line per record on stderr, with logger name and pid."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def run_stage(name: str, run: Callable[[Config, StopFlag], None]) -> int:
    """A stage's main(): load config, log, handle signals, run; an exit code."""
    try:
        cfg = load()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level)
    stop = StopFlag()
    with capture_signals(stop):
        try:
            sockets.configure_security(cfg.curve)
            run(cfg, stop)
        except ConfigError as exc:
            log.error("%s: configuration error: %s", name, exc)
            return 2
        except Exception:
            log.exception("%s crashed", name)
            return 1
    return 0
