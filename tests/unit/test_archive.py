"""The log archive: one line per message, rotation, and the UTF-8 cut."""

from __future__ import annotations

import time
from pathlib import Path

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
