"""The file rules' state on disk: threshold counters, cooldowns, quiet hours.

One sqlite3 database in WAL mode under ALERTIK_STATE_DIR, beside the spool
(whose lock keeps a second matcher out of the directory). The gate writes
what changed once per batch of messages (``Gate.flush``), so a clean stop
or restart keeps everything, and ``kill -9`` loses at most the last batch's
changes, as it loses that batch's archive lines. Each key's state and each
held alert is one msgpack row.

If the directory cannot be used the state lives in memory, and says so:
counters and held alerts are then lost with the process.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable

import msgspec

from alertik.common import statedir
from alertik.matcher.gate import Release, Saved

log = logging.getLogger(__name__)

STATE_FILE = "matcher-rules.sqlite3"

_ENCODER = msgspec.msgpack.Encoder()
_SAVED = msgspec.msgpack.Decoder(Saved)
_RELEASE = msgspec.msgpack.Decoder(Release)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS keys (rule TEXT NOT NULL, key TEXT NOT NULL, "
    "state BLOB NOT NULL, PRIMARY KEY (rule, key))",
    "CREATE TABLE IF NOT EXISTS held (n INTEGER PRIMARY KEY AUTOINCREMENT, "
    "rule TEXT NOT NULL, alert BLOB NOT NULL)",
)


class RuleStore:
    """Keys and held alerts of the file rules, in sqlite (see above)."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, STATE_FILE)
        self.failed = 0  # writes that failed
        self._db: sqlite3.Connection | None = None
        try:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            self._db = statedir.open_db(self.path, *SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            self._lost(exc)

    @property
    def durable(self) -> bool:
        return self._db is not None

    def _lost(self, exc: Exception) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        log.error(
            "cannot keep rule counters and quiet-hours alerts in %s (%s): they "
            "live in memory, and a restart of the matcher loses them",
            self.path,
            exc,
        )

    def load(self) -> tuple[list[tuple[str, str, Saved]], list[tuple[str, Release]]]:
        """Every stored key and held alert; unreadable rows are skipped."""
        if self._db is None:
            return [], []
        keys: list[tuple[str, str, Saved]] = []
        held: list[tuple[str, Release]] = []
        bad = 0
        try:
            for rid, key, blob in self._db.execute("SELECT rule, key, state FROM keys"):
                try:
                    keys.append((rid, key, _SAVED.decode(blob)))
                except msgspec.DecodeError:
                    bad += 1
            for rid, blob in self._db.execute(
                "SELECT rule, alert FROM held ORDER BY n"
            ):
                try:
                    held.append((rid, _RELEASE.decode(blob)))
                except msgspec.DecodeError:
                    bad += 1
        except sqlite3.Error as exc:
            self._lost(exc)
            return [], []
        if bad:
            log.error("%d unreadable rows of rule state in %s skipped", bad, self.path)
        return keys, held

    def save(
        self,
        keys: dict[tuple[str, str], Saved | None],
        held: list[tuple[str, Release]],
        cleared: Iterable[str],
    ) -> None:
        """Write changed keys (None: gone), newly held alerts, cleared rules."""
        db = self._db
        if db is None:
            return
        try:
            with db:
                db.executemany(
                    "DELETE FROM held WHERE rule = ?", [(rid,) for rid in cleared]
                )
                db.executemany(
                    "DELETE FROM keys WHERE rule = ? AND key = ?",
                    [slot for slot, saved in keys.items() if saved is None],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO keys (rule, key, state) VALUES (?, ?, ?)",
                    [
                        (rid, key, _ENCODER.encode(saved))
                        for (rid, key), saved in keys.items()
                        if saved is not None
                    ],
                )
                db.executemany(
                    "INSERT INTO held (rule, alert) VALUES (?, ?)",
                    [(rid, _ENCODER.encode(r)) for rid, r in held],
                )
        except sqlite3.Error as exc:
            self.failed += 1
            self._lost(exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
