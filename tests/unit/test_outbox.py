"""The durable outbox: order, duplicates, bounds, restarts, and fallback to memory."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from alertik.common.schema import Alert
from alertik.notify.outbox import OUTBOX_FILE, Outbox


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
