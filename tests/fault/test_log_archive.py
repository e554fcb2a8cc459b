"""The log archive under outside interference and hostile text.

* A deleted ``log.txt``, or one moved away by a rotation tool, is noticed and
  replaced: every line received afterwards is in the new file.
* Control characters in a message (ANSI escape sequences, other C0 and C1
  controls, line separators) never reach the archive raw: they are shown as
  escapes, and every message stays one line.

Each test prints lines sent and archived, so ``pytest -s -m fault`` gives the
figures.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import (
    Proc,
    base_env,
    endpoint_of,
    send_udp,
    udp_port_of,
    wait_for,
)

pytestmark = pytest.mark.fault

SEQ = re.compile(rb" seq=(\d+)")
BATCH = 200


def start(tmp_path: Path, spawn: Callable[..., Proc]) -> tuple[Proc, int]:
    """A matcher writing tmp_path/log.txt and an ingest feeding it; the UDP port."""
    env = base_env(tmp_path, ALERTIK_LOG_MAX_BYTES="0")
    matcher = spawn("matcher", env={**env, "ALERTIK_MATCHER_ADDR": "tcp://127.0.0.1:*"})
    endpoint = endpoint_of(matcher, "matcher")
    ingest = spawn("ingest", env={**env, "ALERTIK_MATCHER_ADDR": endpoint})
    return matcher, udp_port_of(ingest)


def seqs(path: Path) -> list[int]:
    return [int(s) for s in SEQ.findall(path.read_bytes())] if path.exists() else []


def send(port: int, first: int, count: int) -> None:
    for seq in range(first, first + count):
        send_udp(port, b"system,info config changed by admin seq=%d" % seq)


@pytest.mark.parametrize("how", ["deleted", "moved away"])
def test_every_line_after_the_archive_is_deleted_or_moved_lands_in_a_new_file(
    tmp_path: Path, spawn: Callable[..., Proc], how: str
) -> None:
    """1. a matcher archives 200 lines to log.txt;
    2. log.txt is deleted (or renamed to log.txt.old, as logrotate does);
    3. 200 more lines.
    Result: the later 200 are all in a new log.txt, the earlier ones in the
    moved file; the matcher's log says it opened a new file."""
    matcher, port = start(tmp_path, spawn)
    log = tmp_path / "log.txt"
    send(port, 0, BATCH)
    wait_for(lambda: len(seqs(log)) == BATCH, 10, "the first lines in the archive")
    moved = tmp_path / "log.txt.old"
    if how == "deleted":
        log.unlink()
    else:
        log.rename(moved)
    send(port, BATCH, BATCH)
    later = list(range(BATCH, 2 * BATCH))
    wait_for(lambda: seqs(log) == later, 10, "the later lines in a new log.txt")
    assert matcher.terminate() == 0
    assert re.search(r"WARNING archive: \S+log\.txt was", matcher.output)
    kept = f"{len(seqs(moved))} in the moved file" if how == "moved away" else "gone"
    print(
        f"\narchive {how}: {BATCH} lines sent after, {len(seqs(log))} of them in "
        f"the new log.txt; {BATCH} before, {kept}"
    )
    if how == "moved away":
        assert seqs(moved) == list(range(BATCH))


# What an attacker can put in a user name, and what the archive must show.
HOSTILE = [
    (b"login failure for user \x1b[2J\x1b[31mroot\x1b[0m", rb"\x1b[2J\x1b[31mroot"),
    (b"login failure for user \x1b]0;title\x07x", rb"\x1b]0;title\x07x"),
    (b"login failure for user a\rforged line", rb"a\rforged line"),
    (b"login failure for user a\nforged line", rb"a\nforged line"),
    (b"login failure for user \x00\x08\x7f", rb"\x00\x08\x7f"),
    ("login failure for user \x9b2J\x85".encode(), rb"\x9b2J\x85"),
    ("login failure for user a\u2028b\u202eexe".encode(), rb"a\u2028b\u202eexe"),
]


def test_control_characters_in_messages_are_archived_visible_one_line_each(
    tmp_path: Path, spawn: Callable[..., Proc]
) -> None:
    """1. send messages whose user name holds ANSI escape sequences, CR, LF,
       NUL, backspace, DEL, C1 controls, U+2028 and a right-to-left override;
    Result: one archive line per message, each showing the characters as
    escapes; no control character is in the file except the line ends."""
    matcher, port = start(tmp_path, spawn)
    log = tmp_path / "log.txt"
    for n, (raw, _) in enumerate(HOSTILE):
        send_udp(port, raw + b" seq=%d" % n)
    wait_for(lambda: len(seqs(log)) == len(HOSTILE), 10, "every line archived")
    assert matcher.terminate() == 0
    data = log.read_bytes()
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert len(lines) - 1 == len(HOSTILE)
    for line, (_, shown) in zip(lines, HOSTILE, strict=False):
        assert shown in line
    text = data.decode("utf-8")
    unshown = [
        c for c in text if c != "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0)
    ]
    assert not unshown, unshown
    assert "\u2028" not in text and "\u202e" not in text
    print(
        f"\ncontrol characters: {len(HOSTILE)} lines sent, {len(lines) - 1} "
        "archived, none raw"
    )
