"""alertik.supervise: supervisord's poll, without its one-second naps."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from supervisor import poller

from alertik import supervise


class Options:
    """What supervisor's PollPoller asks of its options: a logger."""

    class logger:  # supervisor's attribute name
        @staticmethod
        def blather(*_: Any) -> None:
            pass


@pytest.fixture
def patched() -> Iterator[Any]:
    """A PollPoller patched as alertik.supervise patches supervisord's, with
    a Python handler for SIGCHLD as supervisord installs; both undone after."""
    cls = type("Poller", (poller.PollPoller,), {})
    supervise._poll_without_naps(cls)
    before = signal.signal(signal.SIGCHLD, lambda *_: None)
    try:
        yield cls(Options())
    finally:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, before)


def test_the_first_poll_returns_at_once(patched: Any) -> None:
    started = time.monotonic()
    assert patched.poll(5) == ([], [])
    assert time.monotonic() - started < 1


def test_a_signal_ends_the_poll_and_is_not_reported_as_a_descriptor(
    patched: Any,
) -> None:
    """A child's exit (SIGCHLD) used to wait out the rest of supervisord's
    one-second poll, since Python resumes a poll a signal interrupted."""
    patched.poll(0)  # the first poll, which sets up the wake-up pipe
    read, write = os.pipe()
    try:
        patched.register_readable(read)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGCHLD))
        timer.start()
        started = time.monotonic()
        assert patched.poll(30) == ([], [])
        assert time.monotonic() - started < 10
        timer.join()
        # The descriptors supervisord registered are still reported.
        os.write(write, b"x")
        assert patched.poll(30) == ([read], [])
    finally:
        os.close(read)
        os.close(write)
