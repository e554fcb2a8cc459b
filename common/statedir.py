"""The state directory: a stage that keeps files there holds a lock on it."""

from __future__ import annotations

import fcntl
import os
import sqlite3

from alertik.common.converters import ConfigError


def lock(state_dir: str, name: str, holder: str) -> int:
    """Take the lock file name in state_dir (flock) and return its descriptor:
    held until that is closed or the process ends. Another process holding
    it (two alertik instances sharing ALERTIK_STATE_DIR would both work on
    the same files) is a ConfigError naming the variable."""
    fd = os.open(os.path.join(state_dir, name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            "ALERTIK_STATE_DIR",
            f"{state_dir} is in use by another {holder}; give each alertik "
            "instance its own state directory",
        ) from None
    return fd


def open_db(path: str, *schema: str) -> sqlite3.Connection:
    """A stage's sqlite file in the state directory: WAL with NORMAL sync
    (a killed process loses nothing written), a 1 s wait for another
    writer's lock, the schema statements run, then DEFERRED transactions."""
    db = sqlite3.connect(path, isolation_level=None, timeout=1.0)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in schema:
            db.execute(statement)
        db.isolation_level = "DEFERRED"
    except BaseException:
        db.close()
        raise
    return db
