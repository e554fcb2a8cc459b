"""The log archive: every received message, one line each, with rotation.

As in alertik, the log doubles as an archive of the router's log; unlike
alertik it rotates, so a 5 MB tmpfs on /log never fills up.

Lines are ``[YYYY-MM-DD HH:MM:SS] sender text``: the time of receipt (local
time), the sender's address, and the message with trailing CR/LF removed;
bytes that are not UTF-8 become U+FFFD.

The text of a message is the sender's (a user name in a failed login is
whatever an attacker typed), so no control character reaches the file raw:
someone reading the archive in a terminal must see the text, not have it move
the cursor, recolour the screen or rewrite what is shown (ANSI escape
sequences), and every message must stay one line. CR, LF and TAB are shown as
``\\r``, ``\\n`` and ``\\t``; every other C0 control, DEL and every C1 control
as ``\\xHH``; the Unicode line and paragraph separators and the bidirectional
overrides (which reorder what a terminal shows) as ``\\uHHHH``.

Lines are gathered in memory and written in one ``write()`` when the matcher
runs out of input (``flush()``) or FLUSH_BYTES have piled up, not one system
call per line: under a flood the archive costs a few microseconds a message.
A crash can therefore lose at most the lines of one batch.

Rotation (``max_bytes`` > 0): before a line that would take the file to
``max_bytes`` or more, ``log.txt.N`` becomes ``log.txt.N+1`` (the oldest is
deleted), ``log.txt`` becomes ``log.txt.1`` and a new ``log.txt`` starts,
``backups`` files are kept; with ``backups`` = 0 the file is emptied and
started again instead. A line longer than ``max_bytes`` goes alone into an
empty file. Files that are not regular files (``/dev/stdout``) never rotate.

When the file cannot be written (a read-only or full file system), the lines
are counted as lost, one throttled error says so, and writing is tried again
every RETRY_SECONDS: matching and alerts go on regardless.

A file deleted or moved away from outside (``rm log.txt``, logrotate without
``copytruncate``) is noticed and replaced: before each write the archive
compares the device and inode of the path with those of the file it holds
open, as ``logging.handlers.WatchedFileHandler`` does, and opens the path
afresh when they differ, with a warning. That is one ``stat()`` per write, and
a write carries a whole batch of lines under a flood, so the check costs next
to nothing, and no line goes to a file nobody can see any more. A file
truncated in place (``copytruncate``) is noticed too, so rotation goes by its
real size.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import stat
import sys
import time

from alertik.common.throttle import Throttled

log = logging.getLogger(__name__)

# Bytes gathered before a write even if the matcher is still busy: a few
# hundred lines, one system call.
FLUSH_BYTES = 64 * 1024
# After a failed write or open, how long the archive waits before trying the
# file again (and meanwhile counts lines as lost instead of retrying each one).
RETRY_SECONDS = 5.0
# Sender addresses whose encoded form is remembered; a scan of spoofed senders
# cannot grow the cache past this.
SENDER_CACHE = 1024
# How often the "lines lost" error may repeat.
REPORT_SECONDS = 30.0


# Control characters in ASCII text: C0 and DEL. A cheap test first (bytes
# .translate runs in C), the regex below only when one is there.
_ASCII_CONTROLS = bytes(range(0x20)) + b"\x7f"
# Everything shown escaped, in valid UTF-8 (which _utf8 guarantees): C0, DEL,
# C1 (U+0080..U+009F, encoded C2 80..C2 9F), U+2028 and U+2029 (line and
# paragraph separators), U+202A..U+202E and U+2066..U+2069 (bidirectional
# embeddings, overrides and isolates). A lead byte never occurs inside
# another character in UTF-8, so the byte patterns cannot match mid-character.
_CONTROL = re.compile(
    rb"[\x00-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]"
)
# The same for ASCII text: a plain character class, which re scans faster.
_ASCII_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_NAMED = {b"\r": b"\\r", b"\n": b"\\n", b"\t": b"\\t"}


def _show(match: re.Match[bytes]) -> bytes:
    """How one control character is written: a backslash escape."""
    raw = match.group()
    named = _NAMED.get(raw)
    if named is not None:
        return named
    point = ord(raw.decode("utf-8"))
    return (b"\\x%02x" if point < 0x100 else b"\\u%04x") % point


def _escape(text: bytes) -> bytes:
    """One visible line per message (text is valid UTF-8): trailing newlines
    go, every control character left is shown as an escape."""
    text = text.rstrip(b"\r\n")
    if len(text.translate(None, _ASCII_CONTROLS)) == len(text) and (
        # Every other character escaped starts with one of these two bytes.
        b"\xc2" not in text and b"\xe2" not in text
    ):
        return text
    return (_ASCII_CONTROL if text.isascii() else _CONTROL).sub(_show, text)


def _utf8(text: str | bytes) -> bytes:
    """text as UTF-8 bytes, with every invalid sequence replaced by U+FFFD."""
    if isinstance(text, str):
        return text.encode("utf-8", "replace")
    if text.isascii():
        return text
    return text.decode("utf-8", "replace").encode("utf-8")


class Archive:
    """Writes ``[YYYY-MM-DD HH:MM:SS] sender text`` lines to a file or stderr."""

    def __init__(self, path: str | None, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.lost = Throttled(log, f"archive lines lost: cannot write {path}")
        self.lost.interval = REPORT_SECONDS
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._pending_notes = 0  # of the lines in _pending
        # Lines written, by kind: "message" (received) and "note" (what
        # alertik did); self.lost.total counts those that could not be.
        self.written = {"message": 0, "note": 0}
        self._file: io.FileIO | None = None
        self._identity = (0, 0)  # (st_dev, st_ino) of the open file
        self._size = 0  # bytes in the file, written or pending
        self._rotates = True
        self._retry_at = 0.0
        self._why = ""  # the last error, shown with the count of lost lines
        self._last_second = -1
        self._stamp = b""
        self._senders: dict[str, bytes] = {}
        if path:
            # The file itself is opened on first write, so a read-only
            # directory shows up as a logged error, not a crash at start-up.
            try:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            except OSError as exc:
                log.error("archive: cannot create the directory of %s: %s", path, exc)

    def _time(self, when: float) -> bytes:
        second = int(when)
        if second != self._last_second:
            self._last_second = second
            self._stamp = time.strftime(
                "[%Y-%m-%d %H:%M:%S] ", time.localtime(when)
            ).encode()
        return self._stamp

    def _sender(self, sender: str) -> bytes:
        encoded = self._senders.get(sender)
        if encoded is None:
            if len(self._senders) >= SENDER_CACHE:
                self._senders.clear()
            encoded = self._senders[sender] = sender.encode("utf-8", "replace") + b" "
        return encoded

    def message(self, when: float, sender: str, text: str | bytes) -> None:
        """Archive one received message (the raw bytes, or text)."""
        # The common case inline: ASCII bytes need no re-encoding, and the
        # stamp and the sender change rarely.
        if type(text) is bytes and text.isascii():
            body = text.rstrip(b"\r\n")
            if len(body.translate(None, _ASCII_CONTROLS)) != len(body):
                body = _ASCII_CONTROL.sub(_show, body)
        else:
            body = _escape(_utf8(text))
        stamp = self._stamp if int(when) == self._last_second else self._time(when)
        prefix = self._senders.get(sender) or self._sender(sender)
        self._add(b"".join((stamp, prefix, body, b"\n")))

    def note(self, when: float, text: str) -> None:
        """Archive a line about what alertik did (an alert sent, a rule matched)."""
        self._add(self._time(when) + _escape(_utf8(text)) + b"\n", note=True)

    def _add(self, line: bytes, note: bool = False) -> None:
        """Gather one line (ending in a newline), rotating first if it is due."""
        if self._file is None and self.path:
            self._open()  # learns the size of what is there already
        size = len(line)
        if self.max_bytes > 0 and self._size and self._size + size >= self.max_bytes:
            self._rotate(size)
        self._pending.append(line)
        self._pending_bytes += size
        self._pending_notes += note
        self._size += size
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write every gathered line (the matcher calls this when it is idle)."""
        if not self._pending:
            return
        if self._file is not None and self._rotates:
            self._follow()
        data = b"".join(self._pending)
        count = len(self._pending)
        notes = self._pending_notes
        self._pending.clear()
        self._pending_bytes = 0
        self._pending_notes = 0
        if not self.path:
            sys.stderr.write(data.decode("utf-8", "replace"))
            sys.stderr.flush()
            self._written(count, notes)
            return
        if self._file is None and not self._open():
            self.lost.hit(self._why, n=count)
            return
        assert self._file is not None
        try:
            view = memoryview(data)
            while view:
                view = view[self._file.write(view) :]
        except OSError as exc:
            # What did not make it is counted as lost; the file is reopened
            # (and its real size read) after RETRY_SECONDS.
            self._why = exc.strerror or str(exc)
            self.lost.hit(self._why, n=count)
            self._close_file()
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return
        self._written(count, notes)

    def _written(self, count: int, notes: int) -> None:
        self.written["message"] += count - notes
        self.written["note"] += notes

    def _open(self) -> bool:
        """Open the file for appending; False (and a throttled count) if it fails."""
        assert self.path
        if time.monotonic() < self._retry_at:
            return False
        try:
            # Held open across calls, closed by _close_file(): no `with`.
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
            info = os.fstat(self._file.fileno())
        except OSError as exc:
            self._retry_at = time.monotonic() + RETRY_SECONDS
            self._why = exc.strerror or str(exc)
            self._close_file()
            return False
        self._rotates = stat.S_ISREG(info.st_mode)
        self._identity = (info.st_dev, info.st_ino)
        self._size = info.st_size + self._pending_bytes
        return True

    def _follow(self) -> None:
        """Open the path afresh if the file we hold is no longer there."""
        assert self.path
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            why = "was deleted or moved away"
        except OSError:
            return  # cannot tell; the write will say what is wrong
        else:
            if (info.st_dev, info.st_ino) == self._identity:
                written = self._size - self._pending_bytes
                if info.st_size < written:
                    # Truncated from outside (logrotate copytruncate).
                    self._size = info.st_size + self._pending_bytes
                return
            why = "was replaced (moved away or rotated from outside)"
        log.warning("archive: %s %s; writing to a new %s", self.path, why, self.path)
        self._close_file()
        self._open()

    def _close_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _rotate(self, incoming: int) -> None:
        """Start a new file, keeping ``backups`` old ones (see the module doc)."""
        if not self.path or not self._rotates:
            return
        if self._file is not None:
            self._follow()  # replaced or truncated from outside: a new size
            if self._size + incoming < self.max_bytes:
                return
        self.flush()
        self._close_file()
        base = self.path
        try:
            if self.backups > 0:
                for i in range(self.backups - 1, 0, -1):
                    older = f"{base}.{i}"
                    if os.path.exists(older):
                        os.replace(older, f"{base}.{i + 1}")
                if os.path.exists(base):
                    os.replace(base, f"{base}.1")
            else:
                with open(base, "wb"):
                    pass
        except OSError as exc:
            log.error("archive: cannot rotate %s: %s", base, exc.strerror or exc)
        self._size = 0

    def close(self) -> None:
        """Write what is gathered and close the file."""
        self.flush()
        self._close_file()
        self.lost.flush()
