"""Where alerts wait when notify cannot take them: bounded, on disk, in order.

The matcher never waits for notify: the archive and the rules must keep up
with the router whatever happens to delivery. An alert that notify's queue
cannot take at once (notify frozen, busy, restarting or gone) is written
here, and every later alert goes behind it so the order holds; each loop
turn hands notify what it will take from the head.

One sqlite3 database in WAL mode under ALERTIK_STATE_DIR, so alerts waiting
here survive ``kill -9`` of the matcher (its restart sends them; notify keeps
each alert id once). At most ``max_count`` alerts wait: past that the oldest
are dropped, counted and logged as errors. If the state directory cannot be
used the spool lives in memory, with the same bound, and says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable

from alertik.common import statedir
from alertik.common.throttle import Throttled

log = logging.getLogger(__name__)

SPOOL_FILE = "matcher-spool.sqlite3"
# Held (flock) while a matcher uses the spool: two matchers sharing it would
# both send every alert in it.
LOCK_FILE = "matcher-spool.lock"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spool "
    "(n INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL)"
)
# Alerts read from the head per look: one query for a burst.
READ_BATCH = 500
# After the disk failed, how often the spool tries it again (only while
# nothing waits in memory, so the two never need reconciling).
DISK_RETRY_SECONDS = 30.0

Send = Callable[[bytes], bool]  # True when notify's queue took the alert


class Spool:
    """A FIFO of encoded alerts, durable when it can be."""

    def __init__(self, state_dir: str, max_count: int) -> None:
        self.max_count = max_count
        self.dropped = Throttled(
            log, f"alerts DROPPED: the matcher spool is full ({max_count} waiting)"
        )
        self._memory: deque[bytes] = deque()
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._count = 0
        self._retry_at = 0.0
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, SPOOL_FILE)
        self._open_disk()
        if self._count:
            log.warning(
                "%d alerts from before the restart wait for notify in the spool",
                self._count,
            )

    def _open_disk(self) -> None:
        try:
            os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            self._lock_fd = statedir.lock(self.state_dir, LOCK_FILE, "matcher")
            self._db = statedir.open_db(self.path, SCHEMA)
            self._count = self._db.execute("SELECT count(*) FROM spool").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            self.close_db()
            self._retry_at = time.monotonic() + DISK_RETRY_SECONDS
            log.error(
                "cannot keep waiting alerts in %s (%s): they wait in memory until "
                "it works again, and a restart of the matcher would lose them",
                self.path,
                exc,
            )

    def __len__(self) -> int:
        return self._count

    @property
    def durable(self) -> bool:
        return self._db is not None

    def add(self, payloads: list[bytes]) -> None:
        """Queue alerts behind those already waiting (oldest dropped past the cap)."""
        if not payloads:
            return
        db = self._db
        if db is not None:
            try:
                with db:
                    db.executemany(
                        "INSERT INTO spool (payload) VALUES (?)",
                        [(p,) for p in payloads],
                    )
            except sqlite3.Error as exc:
                self._to_memory(exc)
                return self.add(payloads)
        else:
            self._memory.extend(payloads)
        self._count += len(payloads)
        over = self._count - self.max_count
        if over > 0:
            self._drop_oldest(over)

    def send_head(self, send: Send) -> int:
        """Hand waiting alerts to send, oldest first, until it refuses; how many."""
        sent = 0
        if self._db is None and not self._count and time.monotonic() >= self._retry_at:
            self._open_disk()
            if self._db is not None:
                log.info("the matcher spool is back on disk at %s", self.path)
        while self._count:
            if self._db is None:
                while self._memory and send(self._memory[0]):
                    self._memory.popleft()
                    sent += 1
                self._count = len(self._memory)
                return sent
            try:
                rows = self._db.execute(
                    "SELECT n, payload FROM spool ORDER BY n LIMIT ?", (READ_BATCH,)
                ).fetchall()
                taken = 0
                for _, payload in rows:
                    if not send(payload):
                        break
                    taken += 1
                if taken:
                    with self._db:
                        self._db.execute(
                            "DELETE FROM spool WHERE n <= ?", (rows[taken - 1][0],)
                        )
            except sqlite3.Error as exc:
                self._to_memory(exc)
                continue
            sent += taken
            self._count -= taken
            if taken < len(rows) or not rows:
                break
        return sent

    def _drop_oldest(self, count: int) -> None:
        if self._db is not None:
            with self._db:
                self._db.execute(
                    "DELETE FROM spool WHERE n IN "
                    "(SELECT n FROM spool ORDER BY n LIMIT ?)",
                    (count,),
                )
        else:
            for _ in range(count):
                self._memory.popleft()
        self._count -= count
        self.dropped.hit(n=count)

    def _to_memory(self, exc: sqlite3.Error) -> None:
        """The disk failed under us: keep what it holds readable, go on in memory."""
        kept: list[bytes] = []
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                kept = [
                    row[0]
                    for row in self._db.execute("SELECT payload FROM spool ORDER BY n")
                ]
        log.error(
            "the matcher spool %s failed (%s): %d waiting alerts move to memory",
            self.path,
            exc,
            len(kept),
        )
        self.close_db()
        self._retry_at = time.monotonic() + DISK_RETRY_SECONDS
        self._memory.extend(kept)
        self._count = len(self._memory)

    def close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        if self._count and self._db is None:
            log.error(
                "%d alerts waiting for notify are lost with this matcher (the spool "
                "was in memory)",
                self._count,
            )
        self.dropped.flush()
        self.close_db()
