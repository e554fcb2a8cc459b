"""Where the outbox's rows are: the file, or memory while the file fails.

Faults never stop notify; each lasts only as long as its cause:

* **The file cannot be used for a while** (a full or read-only disk, another
  process holding the write lock for longer than BUSY_TIMEOUT_S, an I/O
  error): the pending rows are copied to a database in memory, with a loud
  error, and alerts are stored and delivered from there. Every RETRY_S the
  outbox tries the file again; once it can write, it reconciles the file
  with memory (rows delivered meanwhile are deleted from it, progress is
  copied, alerts accepted meanwhile are added, duplicates skipped) and goes
  back to it, saying so. Deletions are written first and on their own, so a
  disk that has room for nothing else still learns what was delivered. Only
  while the fault lasts would a ``kill -9`` lose the alerts accepted during
  it, or deliver again those delivered during it.
* **The file is damaged** (a corrupt page; found by ``PRAGMA
  integrity_check`` at start, or by a failing query later): every row that
  can still be read is read back (``salvage``), the error log says how many
  alerts were saved and how many lost (per destination, when the file's index
  can tell), the damaged file is moved aside as ``outbox.sqlite3.broken-<time>``
  for a post-mortem, and a new database starts with the saved rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable

from alertik.common import statedir
from alertik.common.config import ConfigError
from alertik.notify import outboxdb
from alertik.notify.outboxdb import (
    INSERT_ROWS,
    LOCK_FILE,
    OUTBOX_FILE,
    T,
    connect,
    highest_seq,
    in_transaction,
    integrity,
    is_damaged,
    is_faulty,
    set_sequence,
)
from alertik.notify.salvage import OUTBOX_COLUMNS, salvage

log = logging.getLogger(__name__)

# While in memory, how often the file is tried again, and how long each try
# may wait for the lock (it holds up the receive loop meanwhile).
RETRY_S = 1.0
RETRY_BUSY_S = 0.1
# Where seqs start in memory when the file's highest is unknown (it could not
# be opened): far above anything a file reaches (2**40 alerts take 35 years at
# 1,000 a second), so rows added later from memory never take a file's seq.
UNKNOWN_SEQ_BASE = 1 << 40
# The suffix of a damaged file kept for a post-mortem: .broken-<unix time>.
BROKEN = ".broken-"


class Storage:
    """The database the outbox uses now, the counts of what it holds, and the
    way back to the file; safe to share between threads (under _lock)."""

    def __init__(self, state_dir: str, max_pages: int | None = None) -> None:
        self._state_dir = state_dir
        self._file = os.path.join(state_dir, OUTBOX_FILE)
        self._max_pages = max_pages
        self._lock = threading.Lock()
        self._closed = False
        self._lock_fd = -1  # the state directory's lock file, while held
        self._counts: dict[str, int] = {}
        self._max_seq = 0  # the highest seq ever given, on disk or in memory
        self._seq_known = False  # whether _max_seq has seen the file's
        # In use: the file's database, or one in memory while the file fails.
        self._db: sqlite3.Connection | None = None
        self._on_disk = False
        # In memory: the highest seq (and seen n) copied from the file, whose
        # rows the file still has unless memory deleted them; None if the
        # file's rows could not be read (then the file's rows wait there).
        self._copied: int | None = None
        self._seen_copied = 0
        self._gone: set[int] = set()  # seqs to delete from the file (see remove)
        self._verified = False  # the file passed integrity_check
        self._broken = ""  # the file is damaged: why (replaced at the next try)
        self._retry_at = 0.0
        self._fault = ""  # why we are in memory, for the log
        # While in memory, a thread tries the file every RETRY_S, so the
        # outbox goes back to it even when nothing else happens.
        self._retrier: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def path(self) -> str | None:
        """The database file, while it is in use (None while in memory)."""
        return self._file if self._on_disk else None

    @property
    def persistent(self) -> bool:
        """Whether rows survive a restart now (False while in memory)."""
        return self._on_disk

    # -- the file: opening, checking, falling back, coming back -----------

    def _attach(self) -> None:
        """Start using the file (raises if it cannot be used now)."""
        os.makedirs(self._state_dir, mode=0o700, exist_ok=True)
        if self._lock_fd < 0:
            self._lock_fd = statedir.lock(self._state_dir, LOCK_FILE, "notify")
        try:
            db = connect(self._file, self._max_pages)
        except sqlite3.DatabaseError as exc:
            if not is_damaged(exc):
                raise
            self._salvage(str(exc))
            self._retry()
            return
        try:
            why = "" if self._verified else integrity(db)
            if why:
                db.close()
                self._salvage(why)
                self._retry()
                return
            self._verified = True
            self._max_seq = max(self._max_seq, highest_seq(db))
            self._seq_known = True
            self._use(db, on_disk=True)
        except BaseException:
            if self._db is not db:
                db.close()
            raise

    def _use(self, db: sqlite3.Connection, on_disk: bool) -> None:
        """Switch to db and count its rows."""
        counts = dict(
            db.execute("SELECT notifier, COUNT(*) FROM outbox GROUP BY notifier")
        )
        old = self._db
        self._db = db
        self._on_disk = on_disk
        self._counts = counts
        if old is not None and old is not db:
            with contextlib.suppress(sqlite3.Error):
                old.close()

    def _to_memory(self, exc: BaseException, copy: bool) -> None:
        """Go on in memory, with the file's rows if copy (and they can be read)."""
        self._fault = str(exc)
        memory = connect(":memory:", None)
        self._copied = None
        if copy and self._db is not None and self._on_disk:
            try:
                rows = self._db.execute(
                    f"SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY seq"
                ).fetchall()
                seen = self._db.execute("SELECT * FROM seen ORDER BY n").fetchall()
                memory.executemany(INSERT_ROWS, rows)
                memory.executemany("INSERT INTO seen VALUES (?, ?, ?)", seen)
                self._copied = self._max_seq
                self._seen_copied = int(seen[-1][0]) if seen else 0
            except sqlite3.Error as read_exc:
                memory.execute("DELETE FROM outbox")
                memory.execute("DELETE FROM seen")
                if is_damaged(read_exc):
                    self._broken = str(read_exc)
                else:
                    log.error(
                        "outbox: cannot read the pending alerts back (%s); they "
                        "stay in %s until it can be used again",
                        read_exc,
                        self._file,
                    )
        if self._db is not None and self._on_disk:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if not self._seq_known:
            self._max_seq = max(self._max_seq, UNKNOWN_SEQ_BASE)
        set_sequence(memory, "outbox", self._max_seq)
        self._use(memory, on_disk=False)
        self._retry_at = time.monotonic() + RETRY_S
        self._start_retrier()
        log.error(
            "outbox: cannot write %s (%s); keeping alerts in memory until it can "
            "be written again (tried every %g s): they are delivered, but lost if "
            "notify stops before that",
            self._file,
            exc,
            RETRY_S,
        )
        if self._broken:
            self._salvage(self._broken)

    def _salvage(self, why: str) -> None:
        """Read what the damaged file still holds into memory, saying what was
        lost; the file is replaced at the next try."""
        self._broken = why
        self._verified = False
        if self._db is None or self._on_disk:
            memory = connect(":memory:", None)
            if self._db is not None:
                self._db.close()
            self._db = None
            self._use(memory, on_disk=False)
            self._copied = None
            self._fault = why
        assert self._db is not None
        found = salvage(self._file)
        memory = self._db
        known = {r[0] for r in memory.execute("SELECT seq FROM outbox")}
        rows = [r for r in found.rows if r[0] not in known]
        memory.executemany(INSERT_ROWS, rows)
        memory.executemany(
            "INSERT OR IGNORE INTO seen (alert_id, notifier) VALUES (?, ?)",
            found.seen,
        )
        if rows:
            self._max_seq = max(self._max_seq, max(r[0] for r in rows))
        set_sequence(memory, "outbox", self._max_seq)
        self._use(memory, on_disk=False)
        self._copied = None
        self._retry_at = 0.0  # replace the file as soon as possible
        self._start_retrier()
        if found.error:
            outcome = f"nothing could be read from it ({found.error})"
        elif found.lost is not None:
            lost = sum(found.lost.values()) + found.garbled
            outcome = (
                f"LOST {lost} alerts that could not be read "
                f"({self.describe(dict(found.lost)) if found.lost else 'garbled'})"
                if lost
                else "nothing was lost"
            )
        else:
            outcome = (
                f"an unknown number of alerts is LOST ({found.gaps} unreadable "
                "stretches, and its index cannot tell which)"
            )
        log.error(
            "outbox: %s is DAMAGED (%s): read back %d pending alerts (%s); %s",
            self._file,
            why,
            len(found.rows),
            self.describe(dict(found.counts())),
            outcome,
        )

    def _start_retrier(self) -> None:
        if self._retrier is None or not self._retrier.is_alive():
            self._retrier = threading.Thread(
                target=self._retry_while_in_memory, name="outbox-retry", daemon=True
            )
            self._retrier.start()

    def _retry_while_in_memory(self) -> None:
        while not self._closing.wait(RETRY_S):
            with self._lock:
                if self._closed or self._on_disk:
                    return
                if time.monotonic() >= self._retry_at:
                    self._retry()

    def _retry(self) -> None:
        """Try to go back to the file: reconcile it with memory, then use it."""
        self._retry_at = time.monotonic() + RETRY_S
        memory = self._db
        assert memory is not None and not self._on_disk
        disk: sqlite3.Connection | None = None
        try:
            os.makedirs(self._state_dir, mode=0o700, exist_ok=True)
            if self._lock_fd < 0:
                self._lock_fd = statedir.lock(self._state_dir, LOCK_FILE, "notify")
            if self._broken:
                self._set_aside()
            disk = connect(self._file, self._max_pages, RETRY_BUSY_S)
            if not self._verified:
                why = integrity(disk)
                if why:
                    disk.close()
                    disk = None
                    self._salvage(why)
                    return
                self._verified = True
            self._max_seq = max(self._max_seq, highest_seq(disk))
            self._seq_known = True
            moved = self._reconcile(disk, memory)
        except (OSError, sqlite3.Error, ConfigError) as exc:
            if disk is not None:
                disk.close()
            if isinstance(exc, sqlite3.Error) and is_damaged(exc):
                self._broken = str(exc)
            why = str(exc)
            if why != self._fault:
                self._fault = why
                log.error(
                    "outbox: %s still cannot be used (%s); alerts stay in memory",
                    self._file,
                    why,
                )
            return
        disk.execute(f"PRAGMA busy_timeout={int(outboxdb.BUSY_TIMEOUT_S * 1000)}")
        self._use(disk, on_disk=True)
        self._copied = None
        self._fault = ""
        log.warning(
            "outbox: %s can be used again; %d alerts moved back from memory, "
            "%d pending in all",
            self._file,
            moved,
            self.total(),
        )

    def _set_aside(self) -> None:
        """Move the damaged file (and its WAL) aside, for a post-mortem."""
        aside = f"{self._file}{BROKEN}{int(time.time())}"
        os.replace(self._file, aside)
        for suffix in ("-wal", "-shm"):
            try:
                if suffix == "-wal":
                    os.replace(self._file + suffix, aside + suffix)
                else:
                    os.unlink(self._file + suffix)
            except FileNotFoundError:
                pass
        log.error(
            "outbox: moved the damaged %s to %s; a new one starts with the "
            "alerts read back",
            self._file,
            aside,
        )
        self._broken = ""
        self._verified = True  # the new file starts sound
        self._copied = None
        self._gone.clear()

    def _reconcile(self, disk: sqlite3.Connection, memory: sqlite3.Connection) -> int:
        """Make the file hold what memory holds; the number of rows added.

        Deletions and progress go first, in a transaction of their own: they
        need (almost) no room, and they are what keeps a delivered alert from
        being delivered again after a restart.
        """
        copied = self._copied
        if self._gone:
            gone = sorted(self._gone)
            in_transaction(
                disk,
                lambda db: db.executemany(
                    "DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in gone]
                ),
                write=True,
            )
            self._gone.clear()
        if copied is not None:

            def settle(db: sqlite3.Connection) -> None:
                kept = {
                    r[0]
                    for r in memory.execute(
                        "SELECT seq FROM outbox WHERE seq <= ?", (copied,)
                    )
                }
                gone = [
                    (r[0],)
                    for r in db.execute(
                        "SELECT seq FROM outbox WHERE seq <= ?", (copied,)
                    )
                    if r[0] not in kept
                ]
                db.executemany("DELETE FROM outbox WHERE seq = ?", gone)
                db.executemany(
                    "UPDATE outbox SET parts_done = ? WHERE seq = ? AND parts_done < ?",
                    [
                        (done, seq, done)
                        for seq, done in memory.execute(
                            "SELECT seq, parts_done FROM outbox "
                            "WHERE seq <= ? AND parts_done > 0",
                            (copied,),
                        )
                    ],
                )

            in_transaction(disk, settle, write=True)
        above = copied if copied is not None else -1
        seen_above = self._seen_copied if copied is not None else -1

        def add(db: sqlite3.Connection) -> int:
            repeated = set()
            for alert_id, notifier in memory.execute(
                "SELECT alert_id, notifier FROM seen WHERE n > ? ORDER BY n",
                (seen_above,),
            ):
                cur = db.execute(
                    "INSERT OR IGNORE INTO seen (alert_id, notifier) VALUES (?, ?)",
                    (alert_id, notifier),
                )
                if cur.rowcount == 0:
                    repeated.add((alert_id, notifier))
            rows = [
                r
                for r in memory.execute(
                    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE seq > ? ORDER BY seq",
                    (above,),
                )
                if (r[1], r[2]) not in repeated
            ]
            # A seq taken already would be a bug (see UNKNOWN_SEQ_BASE): it
            # raises, and the rows stay in memory.
            db.executemany(INSERT_ROWS, rows)
            set_sequence(db, "outbox", self._max_seq)
            return len(rows)

        return in_transaction(disk, add, write=True)

    def _transaction(
        self, work: Callable[[sqlite3.Connection], T], *, write: bool = True
    ) -> T:
        """Run work in one transaction: on the file, or in memory while the
        file fails (trying the file again every RETRY_S)."""
        if not self._on_disk and time.monotonic() >= self._retry_at:
            self._retry()
        db = self._db
        assert db is not None
        try:
            return in_transaction(db, work, write)
        except sqlite3.DatabaseError as exc:
            if not self._on_disk or not is_faulty(exc):
                raise
            if is_damaged(exc):
                self._broken = str(exc)
            self._to_memory(exc, copy=True)
        assert self._db is not None
        return in_transaction(self._db, work, write)

    def count(self, notifier: str) -> int:
        """Rows waiting for notifier."""
        return self._counts.get(notifier, 0)

    def counts(self) -> dict[str, int]:
        """Rows waiting, per notifier (only those with any)."""
        return {n: c for n, c in self._counts.items() if c}

    def total(self) -> int:
        """Rows waiting for all notifiers."""
        return sum(self._counts.values())

    @staticmethod
    def describe(counts: dict[str, int]) -> str:
        """``Telegram 3, Slack 1`` for a log line."""
        return ", ".join(f"{n} {c}" for n, c in counts.items() if c) or "none"

    def close(self) -> None:
        """Close the database; later calls do nothing (rows stay for next time).

        In memory, the file is tried once more first; what still cannot be
        written is lost, and the log says how much."""
        self._closing.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self._on_disk:
                self._retry()
                if not self._on_disk and self.total():
                    log.error(
                        "outbox: %s still cannot be used (%s): the %d alerts "
                        "pending in memory are LOST (%s)",
                        self._file,
                        self._fault,
                        self.total(),
                        self.describe(self.counts()),
                    )
            try:
                if self._db is not None:
                    self._db.close()
            except sqlite3.Error as exc:
                log.error("outbox: closing %s failed: %s", self.path or "memory", exc)
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = -1
        if self._retrier is not None:
            self._retrier.join(RETRY_S)
