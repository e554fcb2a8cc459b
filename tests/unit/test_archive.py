"""The log archive: one line per message, rotation, and the UTF-8 cut."""

from __future__ import annotations

import logging
import tempfile
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from alertik.common.net import unmapped as peer_host
from alertik.common.text import truncate_utf8
from alertik.matcher.archive import Archive


def test_each_message_is_one_line_with_time_sender_and_text(tmp_path: Path) -> None:
    path = tmp_path / "log" / "log.txt"
    archive = Archive(str(path), 0, 0)
    when = time.mktime((2026, 11, 26, 8, 0, 1, 0, 0, -1))
    archive.message(when, "192.0.2.1", "system,info hello\n")
    archive.message(when, "192.0.2.1", "two\nlines\r\n")
    archive.close()
    assert path.read_text().splitlines() == [
        "[2026-11-26 08:00:01] 192.0.2.1 system,info hello",
        "[2026-11-26 08:00:01] 192.0.2.1 two\\nlines",
    ]


def test_the_archive_rotates_and_keeps_a_bounded_number_of_files(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.txt"
    archive = Archive(str(path), 2000, 2)
    for i in range(200):
        archive.message(time.time(), "192.0.2.1", f"line {i} " + "x" * 50)
    archive.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["log.txt", "log.txt.1", "log.txt.2"]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * 2100
    assert "line 199 " in path.read_text()


@given(st.text(max_size=30), st.integers(min_value=0, max_value=40))
def test_truncation_never_splits_a_utf8_character(text: str, limit: int) -> None:
    data = text.encode()
    cut = truncate_utf8(data, limit)
    assert len(cut) <= limit
    assert data.startswith(cut)
    cut.decode()  # raises if a character was split
    assert len(cut) > limit - 4 or len(cut) == len(data)


def test_truncation_of_non_utf8_bytes_keeps_the_limit() -> None:
    assert truncate_utf8(b"\x80" * 10, 4) == b"\x80" * 4


def test_ipv4_mapped_senders_are_shown_as_ipv4() -> None:
    assert peer_host("::ffff:192.0.2.1") == "192.0.2.1"
    assert peer_host("2001:db8::1") == "2001:db8::1"


def archived(tmp_path: Path, *texts: str | bytes) -> list[str]:
    """The text part of each archive line written for texts."""
    path = tmp_path / "log.txt"
    archive = Archive(str(path), 0, 0)
    for text in texts:
        archive.message(0.0, "192.0.2.1", text)
    archive.close()
    data = path.read_text()
    assert data.endswith("\n")
    return [line.split(" 192.0.2.1 ", 1)[1] for line in data[:-1].split("\n")]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (b"user \x1b[31mroot\x1b[0m", "user \\x1b[31mroot\\x1b[0m"),
        ("user \x1b]0;owned\x07", "user \\x1b]0;owned\\x07"),
        (b"a\x00b\x08c\x7fd", "a\\x00b\\x08c\\x7fd"),
        (b"tab\there\r\nnext\rline\n", "tab\\there\\r\\nnext\\rline"),
        ("csi \x9b31m and nel \x85", "csi \\x9b31m and nel \\x85"),
        ("c1 \u0080..\u009f", "c1 \\x80..\\x9f"),
        ("ls \u2028 ps \u2029", "ls \\u2028 ps \\u2029"),
        ("evil\u202etxt.exe \u2066x\u2069", "evil\\u202etxt.exe \\u2066x\\u2069"),
        ("é ünïcödé ✓ \u00a0 stays", "é ünïcödé ✓ \u00a0 stays"),
        (b"bad \xff\x1b utf-8", "bad \ufffd\\x1b utf-8"),
    ],
)
def test_control_characters_are_shown_as_escapes_never_written_raw(
    tmp_path: Path, text: str | bytes, shown: str
) -> None:
    assert archived(tmp_path, text) == [shown]


@given(st.binary(max_size=64) | st.text(max_size=32))
def test_any_message_is_exactly_one_line_without_control_characters(
    text: str | bytes,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.txt"
        archive = Archive(str(path), 0, 0)
        archive.message(0.0, "192.0.2.1", text)
        archive.note(0.0, text if isinstance(text, str) else text.decode("latin-1"))
        archive.close()
        data = path.read_bytes().decode("utf-8")
    lines = data.split("\n")
    assert len(lines) == 3 and lines[2] == ""
    assert len(data.splitlines()) == 2  # no other line breaks, U+2028 included
    for ch in data.replace("\n", ""):
        assert unicodedata.category(ch) != "Cc", repr(data)
        assert ch not in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e"


def test_a_deleted_archive_is_noticed_and_written_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.txt"
    archive = Archive(str(path), 0, 0)
    archive.message(0.0, "192.0.2.1", "before")
    archive.flush()
    path.unlink()
    with caplog.at_level(logging.WARNING):
        archive.message(0.0, "192.0.2.1", "after")
        archive.flush()
    archive.close()
    assert path.read_text().endswith(" 192.0.2.1 after\n")
    assert len(path.read_text().splitlines()) == 1
    assert "was deleted or moved away" in caplog.text


def test_an_archive_moved_away_keeps_what_it_had_and_a_new_file_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.txt"
    archive = Archive(str(path), 0, 0)
    archive.message(0.0, "192.0.2.1", "before")
    archive.flush()
    path.rename(tmp_path / "log.txt.old")
    path.write_text("")  # what logrotate's create option leaves
    with caplog.at_level(logging.WARNING):
        archive.message(0.0, "192.0.2.1", "after")
        archive.close()
    assert (tmp_path / "log.txt.old").read_text().endswith(" before\n")
    assert path.read_text().endswith(" after\n")
    assert "was replaced" in caplog.text


def test_an_archive_truncated_from_outside_rotates_by_its_real_size(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.txt"
    archive = Archive(str(path), 1000, 1)
    for _ in range(9):
        archive.message(0.0, "192.0.2.1", "x" * 70)
    archive.flush()
    path.write_bytes(b"")  # logrotate copytruncate
    archive.message(0.0, "192.0.2.1", "y" * 70)
    archive.flush()
    archive.message(0.0, "192.0.2.1", "z" * 70)
    archive.close()
    assert not (tmp_path / "log.txt.1").exists()  # no rotation at 200 bytes
    assert len(path.read_text().splitlines()) == 2
