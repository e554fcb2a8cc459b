"""Status files: each running stage says, every second, that it is alive.

A stage's loop rewrites ``<run dir>/status-<stage>.json`` (pid, when it
started, when it last wrote, its counters) about once a second. A stage that
is frozen (SIGSTOP, a deadlock, a loop that never returns) stops rewriting it,
so its age tells ``alertik health`` what supervisord's RUNNING cannot. The
file is replaced atomically (write, then rename), so a reader never sees half
of one; the run directory is memory (tmpfs) in a container, so this costs no
flash writes.
"""

from __future__ import annotations

import logging
import os
import time

import msgspec

log = logging.getLogger(__name__)


class Status(msgspec.Struct, frozen=True, kw_only=True):
    stage: str
    pid: int
    started: float  # wall-clock seconds since the epoch
    updated: float
    counters: dict[str, int]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Status)


def path(run_dir: str, stage: str) -> str:
    return os.path.join(run_dir, f"status-{stage}.json")


class Reporter:
    """Writes one stage's status file; a failure to write is logged once."""

    def __init__(self, run_dir: str, stage: str) -> None:
        self.path = path(run_dir, stage)
        self.stage = stage
        self.started = time.time()
        self._failed = False

    def write(self, counters: dict[str, int]) -> None:
        data = _ENCODER.encode(
            Status(
                stage=self.stage,
                pid=os.getpid(),
                started=self.started,
                updated=time.time(),
                counters=counters,
            )
        )
        temp = f"{self.path}.{os.getpid()}.tmp"
        try:
            # O_NOFOLLOW: a link planted in the run directory is not followed.
            fd = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600
            )
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
            self._failed = False
        except OSError as exc:
            if not self._failed:
                log.warning(
                    "cannot write %s (%s): alertik health will report this stage "
                    "as not responding",
                    self.path,
                    exc.strerror or exc,
                )
            self._failed = True

    def remove(self) -> None:
        """Say this stage is gone (at a clean stop)."""
        for name in (self.path, f"{self.path}.{os.getpid()}.tmp"):
            try:
                os.unlink(name)
            except OSError:
                pass


def read(run_dir: str, stage: str) -> Status | None:
    """The last status a stage wrote, or None if there is none (or it is bad)."""
    try:
        with open(path(run_dir, stage), "rb") as f:
            return _DECODER.decode(f.read())
    except (OSError, msgspec.DecodeError):
        return None
