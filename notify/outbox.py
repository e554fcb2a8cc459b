"""The durable outbox: every alert notify accepted, kept until it is delivered.

One sqlite3 database in WAL mode under ALERTIK_STATE_DIR, one row per (alert,
destination). A row is written before delivery is tried and deleted only
after the destination took it or refused it for good, so ``kill -9``, a
container restart or an outage of hours loses nothing; rows come back in the
order they were stored.

Bounds: at most ``max_count`` rows and none older than ``max_age`` seconds;
past either, the oldest rows are discarded and handed back so the caller can
say so. A second table remembers recent alert ids, so an alert the matcher
sends again (after its own restart) is stored once.

If the state directory cannot be written (read-only, full, broken), the outbox
logs an error and carries on in memory: alerts are still delivered, but a
restart of notify would lose the ones pending.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from alertik.common.config import ConfigError
from alertik.common.schema import Alert

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"
# Held (flock) while a notify uses the state directory: two notify processes
# on one outbox would both deliver every alert.
LOCK_FILE = "outbox.lock"
# Alert ids remembered for duplicate detection. The matcher resends only what
# it had in flight when it restarted, so recent ids are enough; 100,000 ids
# take a few MB.
SEEN_MAX = 100_000
# Trim the id table once per this many stored alerts, not on every insert.
SEEN_TRIM_EVERY = 1000
# How long a write waits for the database lock (another connection, such as a
# test reading the file) before it counts as a failure.
BUSY_TIMEOUT_S = 5.0


def _lock(state_dir: str) -> int:
    """Take the state directory's lock; a ConfigError if another notify has it."""
    fd = os.open(os.path.join(state_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            "ALERTIK_STATE_DIR",
            f"{state_dir} is in use by another notify; give each alertik "
            "instance its own state directory",
        ) from None
    return fd


SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    notifier TEXT NOT NULL,
    text TEXT NOT NULL,
    rule TEXT NOT NULL,
    received REAL NOT NULL,
    sender TEXT NOT NULL,
    node TEXT NOT NULL,
    queued_at REAL NOT NULL,
    parts_done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_by_notifier ON outbox (notifier, seq);
CREATE TABLE IF NOT EXISTS seen (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    notifier TEXT NOT NULL,
    UNIQUE (alert_id, notifier)
);
"""
_COLUMNS = "seq, alert_id, notifier, text, queued_at, parts_done"

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One queued (alert, destination) row."""

    seq: int
    alert_id: str
    notifier: str
    text: str
    queued_at: float
    parts_done: int = 0  # parts of a split text already delivered


@dataclass
class Added:
    """What ``Outbox.add`` did with a batch of alerts."""

    stored: dict[str, int] = field(default_factory=dict)  # per notifier
    duplicates: int = 0
    discarded: list[Entry] = field(default_factory=list)  # oldest, to make room


def _entry(row: tuple[int, str, str, str, float, int]) -> Entry:
    return Entry(*row)


def _connect(path: str, max_pages: int | None) -> sqlite3.Connection:
    """A connection with the schema in place; autocommit, shared by threads."""
    db = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_S,
        check_same_thread=False,
        isolation_level=None,
    )
    try:
        if path != ":memory:":
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode ({mode})")
            # WAL with NORMAL survives the process being killed (the OS keeps
            # what was written); only a power cut can lose the last commits.
            db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        if max_pages is not None:
            db.execute(f"PRAGMA max_page_count={int(max_pages)}")
        # A write up front: a read-only file or directory shows up now.
        db.execute("BEGIN IMMEDIATE")
        db.execute("COMMIT")
    except BaseException:
        db.close()
        raise
    return db


class Outbox:
    """The queue of alerts waiting for delivery; safe to share between threads."""

    def __init__(
        self,
        db: sqlite3.Connection,
        path: str | None,
        max_count: int,
        max_age: float,
    ) -> None:
        self.path = path
        self.max_count = max_count
        self.max_age = max_age
        self._db = db
        self._lock = threading.Lock()
        self._closed = False
        self._lock_fd = -1  # the state directory's lock file, while open
        self._since_trim = 0
        self._counts: dict[str, int] = {}
        for notifier, count in db.execute(
            "SELECT notifier, COUNT(*) FROM outbox GROUP BY notifier"
        ):
            self._counts[notifier] = count

    @classmethod
    def open(
        cls,
        state_dir: str,
        max_count: int,
        max_age: float,
        *,
        max_pages: int | None = None,
    ) -> Outbox:
        """The outbox in state_dir, or one in memory if that cannot be written.

        max_pages caps the database size (for testing a full disk).
        """
        path = os.path.join(state_dir, OUTBOX_FILE)
        lock = -1
        try:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            lock = _lock(state_dir)
            try:
                db = _connect(path, max_pages)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise
                # Not a database at all: keep the file for a post-mortem and
                # start afresh rather than never storing anything again.
                aside = f"{path}.broken-{int(time.time())}"
                os.replace(path, aside)
                log.error(
                    "outbox: %s is damaged (%s); moved it to %s", path, exc, aside
                )
                db = _connect(path, max_pages)
        except (OSError, sqlite3.Error) as exc:
            if lock >= 0:
                os.close(lock)
            log.error(
                "outbox: cannot write %s (%s); keeping alerts in memory instead: "
                "they are delivered, but lost if notify stops before that",
                path,
                exc,
            )
            return cls(_connect(":memory:", None), None, max_count, max_age)
        outbox = cls(db, path, max_count, max_age)
        outbox._lock_fd = lock
        if outbox.total():
            log.info(
                "outbox: %d alerts pending from before (%s)",
                outbox.total(),
                outbox.describe(outbox.counts()),
            )
        return outbox

    @property
    def persistent(self) -> bool:
        """Whether rows survive a restart (False after falling back to memory)."""
        return self.path is not None

    def _fail_over(self, exc: sqlite3.Error) -> None:
        """Move to an in-memory database, taking the pending rows along."""
        log.error(
            "outbox: cannot write %s any more (%s); keeping alerts in memory from "
            "now on: they are delivered, but lost if notify stops before that",
            self.path,
            exc,
        )
        memory = _connect(":memory:", None)
        try:
            rows = self._db.execute("SELECT * FROM outbox ORDER BY seq").fetchall()
            memory.executemany(
                "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            seen = self._db.execute("SELECT * FROM seen ORDER BY n").fetchall()
            memory.executemany("INSERT INTO seen VALUES (?, ?, ?)", seen)
        except sqlite3.Error as read_exc:
            log.error(
                "outbox: cannot read the pending alerts back (%s); they stay in "
                "%s for the next start",
                read_exc,
                self.path,
            )
            self._counts = {}
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        self._db = memory
        self.path = None

    def _transaction(
        self, work: Callable[[sqlite3.Connection], T], *, write: bool = True
    ) -> T:
        """Run work in one transaction, falling over to memory once on failure."""
        for _ in range(2):
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = work(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        try:
                            db.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass
                    raise
                return result
            except sqlite3.OperationalError as exc:
                if self.path is None:
                    raise
                self._fail_over(exc)
        raise AssertionError("unreachable")

    def add(self, alerts: Sequence[Alert], now: float | None = None) -> Added:
        """Store alerts (duplicates once), then discard the oldest beyond the cap."""
        now = time.time() if now is None else now
        result = Added()

        def work(db: sqlite3.Connection) -> None:
            result.stored.clear()
            result.duplicates = 0
            for alert in alerts:
                cur = db.execute(
                    "INSERT OR IGNORE INTO seen (alert_id, notifier) VALUES (?, ?)",
                    (alert.id, alert.notifier),
                )
                if cur.rowcount == 0:
                    result.duplicates += 1
                    continue
                db.execute(
                    "INSERT INTO outbox (alert_id, notifier, text, rule, received, "
                    "sender, node, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        alert.id,
                        alert.notifier,
                        alert.text,
                        alert.rule,
                        alert.received,
                        alert.sender,
                        alert.node,
                        now,
                    ),
                )
                result.stored[alert.notifier] = result.stored.get(alert.notifier, 0) + 1
            excess = self.total() + sum(result.stored.values()) - self.max_count
            result.discarded = self._discard_oldest(db, excess) if excess > 0 else []

        with self._lock:
            if self._closed:
                return result
            self._transaction(work)
            for notifier, count in result.stored.items():
                self._counts[notifier] = self._counts.get(notifier, 0) + count
            self._forget(result.discarded)
            self._since_trim += sum(result.stored.values())
            if self._since_trim >= SEEN_TRIM_EVERY:
                self._since_trim = 0
                self._transaction(self._trim_seen)
        return result

    @staticmethod
    def _discard_oldest(db: sqlite3.Connection, count: int) -> list[Entry]:
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM outbox ORDER BY seq LIMIT ?", (count,)
        ).fetchall()
        if rows:
            db.execute("DELETE FROM outbox WHERE seq <= ?", (rows[-1][0],))
        return [_entry(r) for r in rows]

    @staticmethod
    def _trim_seen(db: sqlite3.Connection) -> None:
        db.execute(
            "DELETE FROM seen WHERE n <= (SELECT MAX(n) FROM seen) - ?", (SEEN_MAX,)
        )

    def _forget(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            self._counts[entry.notifier] -= 1

    def expire(self, now: float | None = None) -> list[Entry]:
        """Discard and return the rows older than max_age."""
        now = time.time() if now is None else now
        cutoff = now - self.max_age

        def work(db: sqlite3.Connection) -> list[Entry]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE queued_at < ? ORDER BY seq",
                (cutoff,),
            ).fetchall()
            if rows:
                db.execute("DELETE FROM outbox WHERE queued_at < ?", (cutoff,))
            return [_entry(r) for r in rows]

        with self._lock:
            if self._closed:
                return []
            expired = self._transaction(work)
            self._forget(expired)
        return expired

    def pending(self, notifier: str, limit: int) -> list[Entry]:
        """The oldest rows waiting for notifier, in the order they were stored."""
        with self._lock:
            if self._closed:
                return []
            rows = self._transaction(
                lambda db: [
                    _entry(r)
                    for r in db.execute(
                        f"SELECT {_COLUMNS} FROM outbox WHERE notifier = ? "
                        "ORDER BY seq LIMIT ?",
                        (notifier, limit),
                    )
                ],
                write=False,
            )
            if len(rows) < limit:
                # Short read: that is the true count. Keeps a worker from
                # spinning on a count that drifted.
                self._counts[notifier] = len(rows)
            return rows

    def remove(self, notifier: str, seqs: Sequence[int]) -> int:
        """Delete rows that are done with; rows already gone are ignored."""
        if not seqs:
            return 0

        def work(db: sqlite3.Connection) -> int:
            marks = ",".join("?" * len(seqs))
            cur = db.execute(
                f"DELETE FROM outbox WHERE notifier = ? AND seq IN ({marks})",
                (notifier, *seqs),
            )
            return cur.rowcount

        with self._lock:
            if self._closed:
                return 0
            removed = self._transaction(work)
            self._counts[notifier] = self._counts.get(notifier, 0) - removed
        return removed

    def set_progress(self, seq: int, parts_done: int) -> None:
        """Record that the first parts_done parts of a split text went out."""
        with self._lock:
            if self._closed:
                return
            self._transaction(
                lambda db: db.execute(
                    "UPDATE outbox SET parts_done = ? WHERE seq = ?", (parts_done, seq)
                )
            )

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
        """Close the database; later calls do nothing (rows stay for next time)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.close()
            except sqlite3.Error as exc:
                log.error("outbox: closing %s failed: %s", self.path or "memory", exc)
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = -1
