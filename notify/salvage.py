"""Reading back what a damaged outbox database still holds.

When a page of ``outbox.sqlite3`` is corrupt, any query that touches it
fails ("database disk image is malformed"), and a plain ``SELECT *`` stops at
the first bad page. Python's sqlite3 module has no bindings for sqlite's
recovery extension, so this reads the tables the way that extension starts:
by key. Rows are read in key order from the b-tree; when a read fails, the
next key whose seek succeeds is found by galloping and bisecting (a seek past
the bad page does not touch it), and reading goes on from there. What lies
between is an unreadable stretch.

The index ``outbox_by_notifier`` holds (notifier, seq) of every row in pages
of its own, so when it can still be read it says exactly which rows were lost
and for which destination. Rows whose columns do not have the types they were
written with (a page that is damaged but still parses) are dropped and
counted too.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Keys are sqlite's signed 64-bit integers.
KEY_MIN = -(1 << 63)
KEY_MAX = (1 << 63) - 1

OUTBOX_COLUMNS = "seq, alert_id, notifier, text, queued_at, parts_done"
_NUMBER = (int, float)
# The types each outbox column was written with, in OUTBOX_COLUMNS order.
_OUTBOX_TYPES: tuple[tuple[type, ...], ...] = (
    (int,),
    (str,),
    (str,),
    (str,),
    _NUMBER,
    (int,),
)
_SEEN_TYPES: tuple[tuple[type, ...], ...] = ((int,), (str,), (str,))


@dataclass
class Salvaged:
    """What could be read from a damaged outbox, and what could not."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)  # OUTBOX_COLUMNS
    seen: list[tuple[str, str]] = field(default_factory=list)  # (alert_id, notifier)
    gaps: int = 0  # unreadable stretches of the outbox table
    garbled: int = 0  # rows read with columns of the wrong type
    # Rows the index lists but that could not be read, per notifier; None
    # when the index could not be read either (how many is then unknown).
    lost: Counter[str] | None = None
    error: str = ""  # why nothing at all could be read, if so

    def counts(self) -> Counter[str]:
        """Rows read back, per notifier."""
        return Counter(row[2] for row in self.rows)


def salvage(path: str) -> Salvaged:
    """Read every row that can still be read from the outbox database at path."""
    found = Salvaged()
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        found.error = str(exc)
        return found
    try:
        # Catches more damage as such, instead of reading garbage.
        db.execute("PRAGMA cell_size_check=ON")
        db.execute("PRAGMA query_only=ON")
        found.rows, found.gaps, found.garbled = _scan(
            db, "outbox", "seq", OUTBOX_COLUMNS, _OUTBOX_TYPES
        )
        found.lost = _lost(db, {row[0] for row in found.rows})
    except sqlite3.Error as exc:
        # The schema itself cannot be read (or the table is gone): nothing can.
        found.error = str(exc)
    try:
        seen, _, _ = _scan(db, "seen", "n", "n, alert_id, notifier", _SEEN_TYPES)
        found.seen = [(r[1], r[2]) for r in seen]
    except sqlite3.Error:
        pass  # only duplicate detection suffers
    db.close()
    return found


def _scan(
    db: sqlite3.Connection,
    table: str,
    key: str,
    columns: str,
    types: Sequence[tuple[type, ...]],
) -> tuple[list[tuple[Any, ...]], int, int]:
    """Rows of table in key order, skipping what cannot be read; the rows,
    the number of unreadable stretches and the number of garbled rows."""
    rows: list[tuple[Any, ...]] = []
    gaps = garbled = 0
    query = f"SELECT {columns} FROM {table} WHERE {key} >= ? ORDER BY {key}"
    lo = KEY_MIN
    while True:
        try:
            for row in db.execute(query, (lo,)):
                if _typed(row, types):
                    rows.append(row)
                else:
                    garbled += 1
                if row[0] >= KEY_MAX:
                    return rows, gaps, garbled
                lo = row[0] + 1
            return rows, gaps, garbled
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise
            gaps += 1
        except sqlite3.DatabaseError:
            gaps += 1
        after = _next_readable(db, table, key, lo)
        if after is None:
            return rows, gaps, garbled
        lo = after


def _next_readable(
    db: sqlite3.Connection, table: str, key: str, bad: int
) -> int | None:
    """The first key after bad that a seek can reach; None past the last."""
    query = f"SELECT {key} FROM {table} WHERE {key} >= ? ORDER BY {key} LIMIT 1"

    def seek(at: int) -> tuple[bool, int | None]:
        try:
            row = db.execute(query, (at,)).fetchone()
        except sqlite3.DatabaseError:
            return False, None
        return True, None if row is None else int(row[0])

    step = 1
    good_at = 0
    found: int | None = None
    while True:
        at = min(bad + step, KEY_MAX)
        ok, found = seek(at)
        if ok:
            good_at = at
            break
        if at == KEY_MAX:
            return None
        bad = at
        step *= 2
    # Seeking at bad fails and at good_at works: find the first key that works.
    while good_at - bad > 1:
        mid = (bad + good_at) // 2
        ok, first = seek(mid)
        if ok:
            good_at, found = mid, first
        else:
            bad = mid
    return found


def _typed(row: Sequence[Any], types: Sequence[tuple[type, ...]]) -> bool:
    return len(row) == len(types) and all(
        isinstance(value, kinds) and not isinstance(value, bool)
        for value, kinds in zip(row, types, strict=True)
    )


def _lost(db: sqlite3.Connection, read: set[int]) -> Counter[str] | None:
    """Rows the notifier index lists that were not read back, per notifier."""
    try:
        listed = db.execute(
            "SELECT notifier, seq FROM outbox INDEXED BY outbox_by_notifier"
        ).fetchall()
    except sqlite3.Error:
        return None
    return Counter(str(notifier) for notifier, seq in listed if seq not in read)
