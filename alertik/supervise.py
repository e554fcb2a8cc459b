"""supervisord, without its one-second naps: ``python -m alertik.supervise``.

supervisord's main loop sleeps in its poller for up to a second at a time,
and two moments of alertik's life waited out that second for nothing:

* before it first starts the programs nothing can wake the poll (no program
  runs yet, and alertik's supervisord serves no socket): every start of
  alertik waited a second. That first poll returns at once here.
* a stage that exits closes its output pipe (which wakes the poll) a moment
  before it can be reaped; the SIGCHLD that follows does not end the poll
  (Python retries a poll interrupted by a signal, PEP 475), so supervisord
  saw the exit up to a second later: each stage of an ordered stop, and each
  restart after a crash, waited for it. Here every signal supervisord
  handles (SIGCHLD, SIGTERM, SIGHUP...) also writes a byte to a pipe the
  poll watches (``signal.set_wakeup_fd``), so it is acted on at once.

supervisord runs unchanged otherwise. Like the keeper, this imports nothing
of alertik: it is the parent of every stage and lives as long as they do.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from typing import Any

from supervisor import poller, supervisord


def _poll_without_naps(cls: Any) -> None:
    original = cls.poll
    first = [True]
    # The wake-up pipe's read end, made at the first poll: supervisord closes
    # the descriptors it does not know about before it runs its loop.
    wake: list[int] = []

    def watch(self: Any) -> None:
        inner: Any = getattr(self, "_poller", None)
        if inner is None or not hasattr(inner, "register"):
            return  # not the poll(2) poller; keep the one-second naps
        read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        inner.register(read, select.POLLIN)
        wake.append(read)

    def poll(self: Any, timeout: float) -> Any:
        if first:
            first.clear()
            watch(self)
            timeout = 0
        readables, writables = original(self, timeout)
        if wake and wake[0] in readables:
            readables.remove(wake[0])
            with contextlib.suppress(BlockingIOError):
                while os.read(wake[0], 512):
                    pass
        return readables, writables

    cls.poll = poll


def main() -> None:
    # poller.Poller is the class supervisord picked for this system.
    _poll_without_naps(poller.Poller)
    supervisord.main()


if __name__ == "__main__":
    main()
