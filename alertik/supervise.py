"""supervisord, starting its programs at once: ``python -m alertik.supervise``.

supervisord's main loop waits for its poll (up to a second) before it first
starts the programs, and at that moment nothing can wake the poll: no program
runs yet, and alertik's supervisord serves no socket. Every start of alertik
waited a second for nothing. This runs supervisord unchanged but for that
first poll, which returns at once; every later one waits as before.

Like the keeper, it imports nothing of alertik: it is the parent of every
stage and lives as long as they do.
"""

from __future__ import annotations

from typing import Any

from supervisor import poller, supervisord


def _first_poll_at_once(cls: Any) -> None:
    original = cls.poll
    first = [True]

    def poll(self: Any, timeout: float) -> Any:
        if first:
            first.clear()
            timeout = 0
        return original(self, timeout)

    cls.poll = poll


def main() -> None:
    # poller.Poller is the class supervisord picked for this system.
    _first_poll_at_once(poller.Poller)
    supervisord.main()


if __name__ == "__main__":
    main()
