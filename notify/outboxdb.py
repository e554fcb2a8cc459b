"""The outbox's sqlite3 database: its file, schema, connections and checks.

Helpers of ``storage.py``, which decides which database the outbox uses (the
file, or one in memory while the file fails) and moves rows between them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from alertik.notify.salvage import OUTBOX_COLUMNS

OUTBOX_FILE = "outbox.sqlite3"
# Held (flock) while a notify uses the state directory: two notify processes
# on one outbox would both deliver every alert.
LOCK_FILE = "outbox.lock"
# How long a write waits for the database lock (another connection, such as a
# test reading the file) before it counts as a failure. Past it alerts go to
# memory for a while (see storage.py): better than holding up intake.
BUSY_TIMEOUT_S = 1.0
# sqlite's primary error codes for a damaged file.
DAMAGE = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    notifier TEXT NOT NULL,
    text TEXT NOT NULL,
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
# Whole rows, in OUTBOX_COLUMNS order (copies between the file and memory).
INSERT_ROWS = (
    f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES "
    f"({', '.join('?' * len(OUTBOX_COLUMNS.split(',')))})"
)

T = TypeVar("T")


def connect(
    path: str, max_pages: int | None, timeout: float | None = None
) -> sqlite3.Connection:
    """A connection with the schema in place; autocommit, shared by threads."""
    db = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_S if timeout is None else timeout,
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
        _drop_unread_columns(db)
        if max_pages is not None:
            db.execute(f"PRAGMA max_page_count={int(max_pages)}")
        # A write up front: a read-only file or directory shows up now.
        db.execute("BEGIN IMMEDIATE")
        db.execute("COMMIT")
    except BaseException:
        db.close()
        raise
    return db


# Columns outboxes before version 0.2 wrote and nothing ever read.
UNREAD_COLUMNS = ("rule", "received", "sender", "node")


def _drop_unread_columns(db: sqlite3.Connection) -> None:
    """An older outbox keeps its rows; the columns nothing read go."""
    present = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    for column in UNREAD_COLUMNS:
        if column in present:
            db.execute(f"ALTER TABLE outbox DROP COLUMN {column}")


def is_damaged(exc: BaseException) -> bool:
    """Whether a database error means the file itself is damaged."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF in DAMAGE)
    return type(exc) is sqlite3.DatabaseError


def is_faulty(exc: BaseException) -> bool:
    """Whether an error is the file's fault (full, locked, damaged...), not a
    mistake in our SQL."""
    return isinstance(exc, sqlite3.OperationalError) or is_damaged(exc)


def integrity(db: sqlite3.Connection) -> str:
    """'' if the database is sound, else what is wrong with it."""
    try:
        found = [str(r[0]) for r in db.execute("PRAGMA integrity_check(20)")]
        # Reading the counts touches the table and its index, as start does.
        db.execute("SELECT notifier, COUNT(*) FROM outbox GROUP BY notifier")
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not is_damaged(exc):
            raise
        return str(exc)
    return "" if found == ["ok"] else "; ".join(found[:3])


def in_transaction(
    db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T], write: bool
) -> T:
    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
    return result


def set_sequence(db: sqlite3.Connection, table: str, at_least: int) -> None:
    """Make the table's AUTOINCREMENT go on above at_least."""
    cur = db.execute(
        "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?",
        (at_least, table),
    )
    if cur.rowcount == 0:
        db.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, at_least)
        )


def highest_seq(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    top = db.execute("SELECT MAX(seq) FROM outbox").fetchone()[0]
    return max(int(row[0]) if row else 0, int(top or 0))
