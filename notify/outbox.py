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

Where the rows are kept, and what happens when the file cannot be used or
is damaged, is ``storage.py``'s part (an ``Outbox`` is a ``Storage``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from alertik.common.config import ConfigError
from alertik.common.schema import Alert
from alertik.notify.salvage import OUTBOX_COLUMNS
from alertik.notify.storage import Storage

log = logging.getLogger(__name__)

# Alert ids remembered for duplicate detection. The matcher resends only what
# it had in flight when it restarted, so recent ids are enough; 100,000 ids
# take a few MB.
SEEN_MAX = 100_000
# Trim the id table once per this many stored alerts, not on every insert.
SEEN_TRIM_EVERY = 1000


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
    last_seq: int = 0  # the highest seq given to a stored alert


def _entry(row: tuple[int, str, str, str, float, int]) -> Entry:
    return Entry(*row)


class Outbox(Storage):
    """The queue of alerts waiting for delivery; safe to share between threads."""

    def __init__(
        self,
        state_dir: str,
        max_count: int,
        max_age: float,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(state_dir, max_pages)
        self.max_count = max_count
        self.max_age = max_age
        self._since_trim = 0

    @classmethod
    def open(
        cls,
        state_dir: str,
        max_count: int,
        max_age: float,
        *,
        max_pages: int | None = None,
    ) -> Outbox:
        """The outbox in state_dir; in memory for now if that cannot be used.

        Raises ConfigError only if another notify holds the state directory.
        max_pages caps the database size (for testing a full disk).
        """
        outbox = cls(state_dir, max_count, max_age, max_pages)
        with outbox._lock:
            try:
                outbox._attach()
            except ConfigError:
                raise
            except (OSError, sqlite3.Error) as exc:
                outbox._to_memory(exc, copy=False)
        if outbox.total():
            log.info(
                "outbox: %d alerts pending from before (%s)",
                outbox.total(),
                outbox.describe(outbox.counts()),
            )
        return outbox

    def add(self, alerts: Sequence[Alert], now: float | None = None) -> Added:
        """Store alerts (duplicates once), then discard the oldest beyond the cap."""
        now = time.time() if now is None else now
        result = Added()

        def work(db: sqlite3.Connection) -> None:
            result.stored.clear()
            result.duplicates = 0
            result.last_seq = 0
            for alert in alerts:
                cur = db.execute(
                    "INSERT OR IGNORE INTO seen (alert_id, notifier) VALUES (?, ?)",
                    (alert.id, alert.notifier),
                )
                if cur.rowcount == 0:
                    result.duplicates += 1
                    continue
                cur = db.execute(
                    "INSERT INTO outbox (alert_id, notifier, text, queued_at) "
                    "VALUES (?, ?, ?, ?)",
                    (alert.id, alert.notifier, alert.text, now),
                )
                result.last_seq = max(result.last_seq, cur.lastrowid or 0)
                result.stored[alert.notifier] = result.stored.get(alert.notifier, 0) + 1
            excess = self.total() + sum(result.stored.values()) - self.max_count
            result.discarded = self._discard_oldest(db, excess) if excess > 0 else []

        with self._lock:
            if self._closed:
                return result
            self._transaction(work)
            self._max_seq = max(self._max_seq, result.last_seq)
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
            f"SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY seq LIMIT ?", (count,)
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
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE queued_at < ? ORDER BY seq",
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
                        f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE notifier = ? "
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
            if not self._on_disk and self._copied is None and removed < len(seqs):
                # Rows the file holds but memory never had (handed out before
                # the fault): the file must learn they are done.
                self._gone.update(seqs)
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

    def oldest(self) -> dict[str, float]:
        """When the oldest row waiting for each notifier was stored (wall clock)."""

        def work(db: sqlite3.Connection) -> dict[str, float]:
            found = {}
            for notifier in waiting:
                row = db.execute(
                    "SELECT queued_at FROM outbox WHERE notifier = ? "
                    "ORDER BY seq LIMIT 1",
                    (notifier,),
                ).fetchone()
                if row is not None:
                    found[notifier] = float(row[0])
            return found

        with self._lock:
            if self._closed:
                return {}
            waiting = [n for n, c in self._counts.items() if c]
            if not waiting:
                return {}
            return self._transaction(work, write=False)
