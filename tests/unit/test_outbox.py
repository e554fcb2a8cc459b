"""The durable outbox: order, duplicates, bounds, restarts, and fallback to memory."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from alertik.common.schema import Alert
from alertik.notify import outboxdb, storage
from alertik.notify.outbox import Outbox
from alertik.notify.outboxdb import OUTBOX_FILE


def alert(n: int, notifier: str = "Slack", text: str = "") -> Alert:
    return Alert(
        id=f"id-{n}",
        notifier=notifier,
        text=text or f"text {n}",
        rule="EVENT0",
        received=1.0,
        sender="192.0.2.1",
        node="node",
    )


def open_box(path: Path, max_count: int = 1000, max_age: float = 3600.0) -> Outbox:
    return Outbox.open(str(path), max_count, max_age)


def test_alerts_come_back_in_the_order_they_were_stored_per_notifier(
    tmp_path: Path,
) -> None:
    box = open_box(tmp_path)
    box.add([alert(1), alert(2, "Telegram"), alert(3), alert(4)])
    assert [e.alert_id for e in box.pending("Slack", 10)] == ["id-1", "id-3", "id-4"]
    assert [e.alert_id for e in box.pending("Telegram", 10)] == ["id-2"]
    assert (box.count("Slack"), box.count("Telegram"), box.total()) == (3, 1, 4)
    box.close()


def test_a_duplicate_alert_id_is_stored_once_even_after_delivery(
    tmp_path: Path,
) -> None:
    box = open_box(tmp_path)
    assert box.add([alert(1), alert(1)]).duplicates == 1
    (entry,) = box.pending("Slack", 10)
    box.remove("Slack", [entry.seq])
    added = box.add([alert(1)])
    assert (added.stored, added.duplicates) == ({}, 1)
    assert box.total() == 0
    box.close()


def test_the_same_alert_id_for_another_notifier_is_a_different_row(
    tmp_path: Path,
) -> None:
    box = open_box(tmp_path)
    assert box.add([alert(1, "Slack"), alert(1, "Discord")]).duplicates == 0
    assert box.total() == 2
    box.close()


def test_pending_alerts_survive_a_reopen_with_their_progress(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.add([alert(i) for i in range(5)])
    first = box.pending("Slack", 1)[0]
    box.remove("Slack", [first.seq])
    second = box.pending("Slack", 1)[0]
    box.set_progress(second.seq, 2)
    box.close()
    again = open_box(tmp_path)
    rows = again.pending("Slack", 10)
    assert [e.alert_id for e in rows] == ["id-1", "id-2", "id-3", "id-4"]
    assert rows[0].parts_done == 2
    assert again.count("Slack") == 4
    assert again.add([alert(3)]).duplicates == 1
    again.close()


def test_the_database_uses_wal_mode(tmp_path: Path) -> None:
    open_box(tmp_path).close()
    with sqlite3.connect(tmp_path / OUTBOX_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_beyond_the_count_cap_the_oldest_are_discarded_and_returned(
    tmp_path: Path,
) -> None:
    box = open_box(tmp_path, max_count=10)
    box.add([alert(i, "Slack" if i % 2 else "Teams") for i in range(8)])
    added = box.add([alert(i) for i in range(8, 13)])
    assert [e.alert_id for e in added.discarded] == ["id-0", "id-1", "id-2"]
    assert box.total() == 10
    assert box.counts() == {"Teams": 2, "Slack": 8}
    assert box.pending("Teams", 1)[0].alert_id == "id-4"
    box.close()


def test_alerts_older_than_the_age_cap_are_discarded_and_returned(
    tmp_path: Path,
) -> None:
    box = open_box(tmp_path, max_age=60.0)
    box.add([alert(1), alert(2)], now=1000.0)
    box.add([alert(3)], now=1050.0)
    assert box.expire(now=1059.0) == []
    assert [e.alert_id for e in box.expire(now=1061.0)] == ["id-1", "id-2"]
    assert [e.alert_id for e in box.pending("Slack", 10)] == ["id-3"]
    assert box.count("Slack") == 1
    box.close()


def test_removing_rows_that_are_already_gone_changes_nothing(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.add([alert(1)])
    seq = box.pending("Slack", 1)[0].seq
    assert box.remove("Slack", [seq]) == 1
    assert box.remove("Slack", [seq]) == 0
    assert box.count("Slack") == 0
    box.close()


def test_an_unwritable_state_dir_falls_back_to_memory_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.ERROR):
        box = open_box(blocker / "state")
    assert not box.persistent
    assert "keeping alerts in memory" in caplog.text
    box.add([alert(1), alert(2)])
    assert [e.alert_id for e in box.pending("Slack", 10)] == ["id-1", "id-2"]
    box.close()


def test_a_full_disk_moves_pending_alerts_to_memory_and_keeps_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = Outbox.open(str(tmp_path), 100_000, 3600.0, max_pages=16)
    big = "x" * 2000
    box.add([alert(i, text=big) for i in range(3)])
    assert box.persistent
    with caplog.at_level(logging.ERROR):
        for i in range(3, 60):
            box.add([alert(i, text=big)])
    assert not box.persistent
    assert "cannot write" in caplog.text
    assert box.count("Slack") == 60
    assert [e.alert_id for e in box.pending("Slack", 100)] == [
        f"id-{i}" for i in range(60)
    ]
    assert box.add([alert(5)]).duplicates == 1
    box.close()


def test_a_damaged_database_file_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / OUTBOX_FILE).write_bytes(b"this is no sqlite database" * 100)
    box = open_box(tmp_path)
    assert box.persistent
    assert list(tmp_path.glob(f"{OUTBOX_FILE}.broken-*"))
    box.close()


def test_after_close_every_call_is_a_harmless_no_op(tmp_path: Path) -> None:
    box = open_box(tmp_path)
    box.add([alert(1)])
    seq = box.pending("Slack", 1)[0].seq
    box.close()
    assert box.remove("Slack", [seq]) == 0
    assert box.pending("Slack", 1) == []
    box.set_progress(seq, 1)
    assert open_box(tmp_path).count("Slack") == 1


def test_a_second_notify_on_the_same_state_directory_is_refused(
    tmp_path: Path,
) -> None:
    from alertik.common.config import ConfigError

    first = Outbox.open(str(tmp_path), 100, 3600.0)
    try:
        with pytest.raises(ConfigError) as info:
            Outbox.open(str(tmp_path), 100, 3600.0)
        assert info.value.variable == "ALERTIK_STATE_DIR"
    finally:
        first.close()
    again = Outbox.open(str(tmp_path), 100, 3600.0)  # the lock went with close()
    assert again.persistent
    again.close()


# -- damage and faults that pass ------------------------------------------

PAGE = 4096


def marked_pages(path: Path, marker: bytes) -> list[int]:
    """Numbers (from 1) of the database pages that hold marker."""
    data = path.read_bytes()
    return [
        n // PAGE + 1 for n in range(0, len(data), PAGE) if marker in data[n : n + PAGE]
    ]


def damage(path: Path, page: int) -> None:
    """Overwrite a page's b-tree header and cell pointers with junk."""
    with open(path, "r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(b"\xff" * 128)


def filled(tmp_path: Path, count: int) -> Path:
    """An outbox file holding count alerts for Slack, closed (WAL merged)."""
    box = open_box(tmp_path, max_count=100_000)
    box.add([alert(i, text=f"MARKER-{i} " + "x" * 60) for i in range(count)])
    box.close()
    assert not (tmp_path / f"{OUTBOX_FILE}-wal").exists()
    return tmp_path / OUTBOX_FILE


def test_a_corrupt_page_loses_only_its_rows_and_says_how_many(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """1. 500 alerts are pending; one page of the table in the middle is junk;
    2. the outbox opens.
    Result: every other row is read back in order, the log names the number
    lost, the damaged file is kept aside, new alerts go on after the old."""
    path = filled(tmp_path, 500)
    pages = marked_pages(path, b"MARKER-")
    damage(path, pages[len(pages) // 2])
    with caplog.at_level(logging.ERROR):
        box = open_box(tmp_path, max_count=100_000)
    assert box.persistent
    left = box.pending("Slack", 1000)
    lost = 500 - len(left)
    assert 0 < lost < 100
    ids = [int(e.alert_id[3:]) for e in left]
    assert ids == sorted(ids)
    assert f"LOST {lost} alerts that could not be read (Slack {lost})" in caplog.text
    assert list(tmp_path.glob(f"{OUTBOX_FILE}.broken-*"))
    box.add([alert(1000)])
    assert box.pending("Slack", 1000)[-1].alert_id == "id-1000"
    assert box.add([alert(ids[0])]).duplicates == 1  # seen ids were kept
    box.close()
    again = open_box(tmp_path, max_count=100_000)
    assert again.count("Slack") == len(left) + 1
    again.close()


def test_a_damaged_root_page_still_opens_and_counts_every_alert_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = filled(tmp_path, 500)
    with sqlite3.connect(path) as db:
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'outbox'"
        ).fetchone()
    damage(path, root)
    with caplog.at_level(logging.ERROR):
        box = open_box(tmp_path)
    assert "LOST 500 alerts that could not be read (Slack 500)" in caplog.text
    assert box.persistent and box.total() == 0
    box.add([alert(9999)])
    assert [e.alert_id for e in box.pending("Slack", 10)] == ["id-9999"]
    box.close()


def test_a_file_that_is_junk_after_its_header_still_opens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = filled(tmp_path, 200)
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xa5" * (len(data) - 100))
    with caplog.at_level(logging.ERROR):
        box = open_box(tmp_path)
    assert "DAMAGED" in caplog.text
    assert box.persistent
    box.add([alert(1)])
    assert box.count("Slack") == 1
    box.close()


def test_a_damaged_index_alone_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = filled(tmp_path, 500)
    with sqlite3.connect(path) as db:
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'outbox_by_notifier'"
        ).fetchone()
    damage(path, root)
    with caplog.at_level(logging.ERROR):
        box = open_box(tmp_path, max_count=100_000)
    assert box.count("Slack") == 500
    assert "DAMAGED" in caplog.text
    assert len(box.pending("Slack", 1000)) == 500
    box.close()


@pytest.fixture
def fast_retry(monkeypatch: pytest.MonkeyPatch) -> float:
    """Try the file again every 50 ms instead of every second."""
    monkeypatch.setattr(storage, "RETRY_S", 0.05)
    monkeypatch.setattr(outboxdb, "BUSY_TIMEOUT_S", 0.2)
    return 0.05


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the database's write lock, as a backup tool
    or ``sqlite3`` in a shell with an open transaction does."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_lock_held_for_a_while_sends_alerts_to_memory_only_while_it_lasts(
    tmp_path: Path, fast_retry: float, caplog: pytest.LogCaptureFixture
) -> None:
    """1. alerts 0-9 are on disk; another process takes the write lock;
    2. alerts 10-19 arrive (to memory); 0-4 and 10-14 are delivered;
    3. the lock is released; the outbox is used again.
    Result: it goes back to the file by itself; reopened, the file holds
    exactly 5-9 and 15-19: nothing delivered twice, nothing lost."""
    box = Outbox.open(str(tmp_path), 1000, 3600.0)
    box.add([alert(i) for i in range(10)])
    other = hold_write_lock(tmp_path / OUTBOX_FILE)
    with caplog.at_level(logging.WARNING):
        box.add([alert(i) for i in range(10, 20)])
        assert not box.persistent
        done = [
            e.seq for e in box.pending("Slack", 100) if int(e.alert_id[3:]) % 10 < 5
        ]
        assert box.remove("Slack", done) == 10
        other.execute("ROLLBACK")
        other.close()
        time.sleep(fast_retry * 2)
        assert box.count("Slack") == 10
        box.pending("Slack", 1)  # any use tries the file again
    assert box.persistent
    assert "can be used again; 5 alerts moved back from memory" in caplog.text
    assert box.add([alert(3), alert(12)]).duplicates == 2
    box.close()
    again = Outbox.open(str(tmp_path), 1000, 3600.0)
    assert [e.alert_id for e in again.pending("Slack", 100)] == [
        f"id-{i}" for i in [5, 6, 7, 8, 9, 15, 16, 17, 18, 19]
    ]
    again.close()


def test_deliveries_during_a_fault_reach_the_file_before_new_alerts_can(
    tmp_path: Path, fast_retry: float
) -> None:
    """A disk with room for deletions but not for new rows still learns what
    was delivered, so a restart delivers nothing twice."""
    box = Outbox.open(str(tmp_path), 100_000, 3600.0, max_pages=16)
    big = "x" * 2000
    box.add([alert(i, text=big) for i in range(3)])
    for i in range(3, 60):
        box.add([alert(i, text=big)])
    assert not box.persistent  # the 16 pages are full
    first = box.pending("Slack", 3)
    box.remove("Slack", [e.seq for e in first])
    time.sleep(fast_retry * 2)
    box.pending("Slack", 1)  # tries the file: deletions fit, new rows do not
    assert not box.persistent
    with sqlite3.connect(tmp_path / OUTBOX_FILE) as db:
        on_disk = [r[0] for r in db.execute("SELECT alert_id FROM outbox")]
    assert "id-0" not in on_disk and "id-1" not in on_disk
    box.close()


def test_close_while_in_memory_says_how_many_alerts_are_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = Outbox.open(str(tmp_path), 1000, 3600.0)
    other = hold_write_lock(tmp_path / OUTBOX_FILE)
    try:
        box.add([alert(1), alert(2)])
        with caplog.at_level(logging.ERROR):
            box.close()
    finally:
        other.close()
    assert "the 2 alerts pending in memory are LOST (Slack 2)" in caplog.text


def test_a_row_handed_out_before_an_unreadable_fault_is_still_deleted_after(
    tmp_path: Path, fast_retry: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker took a row from the file; then the file could neither be
    written nor read back; the row was delivered meanwhile. Back on the file,
    the row is gone from it too."""
    box = Outbox.open(str(tmp_path), 1000, 3600.0)
    box.add([alert(1), alert(2)])
    taken = box.pending("Slack", 1)[0]
    other = hold_write_lock(tmp_path / OUTBOX_FILE)

    def unreadable(self: Outbox, exc: BaseException, copy: bool) -> None:
        original(self, exc, copy=False)  # as if the rows could not be read

    original = Outbox._to_memory
    monkeypatch.setattr(Outbox, "_to_memory", unreadable)
    box.add([alert(3)])
    assert not box.persistent and box.count("Slack") == 1
    box.remove("Slack", [taken.seq])
    other.execute("ROLLBACK")
    other.close()
    time.sleep(fast_retry * 2)
    box.pending("Slack", 1)
    assert box.persistent
    assert [e.alert_id for e in box.pending("Slack", 10)] == ["id-2", "id-3"]
    box.close()


def test_an_outbox_of_an_older_version_keeps_its_rows_and_loses_unread_columns(
    tmp_path: Path,
) -> None:
    """Outboxes before 0.2 also stored rule, received, sender and node, which
    nothing read; one written then still delivers what it holds."""
    old = sqlite3.connect(tmp_path / OUTBOX_FILE)
    old.executescript(
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL,
            notifier TEXT NOT NULL, text TEXT NOT NULL, rule TEXT NOT NULL,
            received REAL NOT NULL, sender TEXT NOT NULL, node TEXT NOT NULL,
            queued_at REAL NOT NULL, parts_done INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE seen (n INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id TEXT NOT NULL, notifier TEXT NOT NULL,
            UNIQUE (alert_id, notifier));
        INSERT INTO outbox VALUES (7, 'old-1', 'Slack', 'from before', 'EVENT0',
            1.0, '192.0.2.1', 'node', 2.0, 0);
        INSERT INTO seen (alert_id, notifier) VALUES ('old-1', 'Slack');
        """
    )
    old.close()
    box = open_box(tmp_path)
    box.add([alert(1)])
    assert [(e.alert_id, e.text) for e in box.pending("Slack", 10)] == [
        ("old-1", "from before"),
        ("id-1", "text 1"),
    ]
    box.close()
    db = sqlite3.connect(tmp_path / OUTBOX_FILE)
    columns = [r[1] for r in db.execute("PRAGMA table_info(outbox)")]
    db.close()
    assert columns == ["seq", "alert_id", "notifier", "text", "queued_at", "parts_done"]
