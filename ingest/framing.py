"""TCP de-framing: cuts one connection's byte stream into syslog messages (pure).

One ``Framer`` per connection. It never holds more than about
``max_message_bytes`` of a message plus one read, whatever the peer sends.

How a connection is framed is decided once, from its first bytes:

* **Octet counting** (RFC 6587 3.4.1): ``MSG-LEN SP SYSLOG-MSG`` where MSG-LEN
  is a decimal count whose first digit is 1-9. Chosen when the connection
  starts with such digits and a space. CR, LF or NUL bytes between frames are
  skipped (some senders add a newline the count does not include). If a later
  frame does not start with a count, the rest of the connection is read as
  non-transparent framing instead of being dropped.
* **Non-transparent framing** (RFC 6587 3.4.2) for everything else: a message
  ends at LF, at CRLF (the CR is removed) or at NUL. Empty messages are
  skipped.

RouterOS and undelimited streams
--------------------------------
MikroTik's manual says TCP is for CEF only: ``remote-protocol`` is the
"protocol for remote logging messages, TCP and TLS only work with CEF
remote-log-format, for syslog it will always use UDP, even if TCP / TLS is
set", and ``cef-event-delimiter`` (default ``\\r\\n``) "helps remote syslog to
distinguish between individual events within a sent batch" (Log page,
https://manual.mikrotik.com/docs/Diagnostics,%20monitoring%20and%20troubleshooting/log/
and help.mikrotik.com/docs/spaces/ROS/pages/328094/Log). So the normal RouterOS
TCP stream is CEF ending in CRLF, which the LF rule above handles. Two cases
have no delimiter at all: ``cef-event-delimiter=""`` (seen in published
configs), and ``default``/``syslog`` entries, which our notes on 7.18+ say are
sent back-to-back over TCP. For these, while a connection has never shown a
delimiter, the framer also ends a message where a new RouterOS record visibly
starts:

* a syslog header, ``<PRI>`` followed by a BSD (``Oct  2 17:36:35``) or
  ISO 8601 (``2025-11-22T21:24:35.265-0500``) timestamp and a space;
* a CEF record, such a timestamp, the identity, then ``CEF:<n>|``.

The last record is kept until the next one starts, the connection ends
(``close``), or the peer has been quiet for a moment (``flush``, which the TCP
listener calls when ``convention`` allows it; see ``tcp.TAIL_QUIET_SECONDS``).
``default`` entries carry no header, so an undelimited ``default`` stream is
cut only at those quiet gaps: entries that arrive together become one message.

A pause never ends a message on a connection that has shown it ends its
messages itself (octet counting, or a delimiter seen): a message whose second
half comes late (a lost TCP segment is sent again after a second or more)
stays whole. A new connection has shown nothing yet, so the listener waits
longer before it takes a pause there as the end of a message
(``tcp.FIRST_QUIET_SECONDS``). That is the trade-off we
chose over cutting at every ``recv()`` boundary, which would split any message
that arrives in two reads (a large line, a slow client, a line cut across TCP
segments) on connections that do use delimiters but have not sent one yet.
The first delimiter seen switches the connection to plain delimiter framing
for good, and the text before it in the same read is taken whole, so header
detection does not split a delimited stream (only a first line that reached
us in several reads could be split, if it quotes a record header).

Oversize messages
-----------------
A message longer than ``max_message_bytes`` is emitted as soon as the limit is
passed: its first bytes, cut at a UTF-8 character boundary, flagged
``truncated``. Everything after that, up to the end of the message (delimiter,
next record, or the octet count), is discarded without being stored. A huge
octet count is handled the same way: the bytes it promises are skipped as they
arrive.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from alertik.common.text import utf8_cut

Mode = Literal["unknown", "octet", "stream"]
# What a connection has shown of how it ends its messages (``Framer.convention``).
Convention = Literal["unknown", "octet", "delimited", "undelimited"]


class Frame(NamedTuple):
    """One message cut from a TCP stream."""

    payload: bytes
    truncated: bool


# RFC 6587 sets no upper bound on MSG-LEN. Ten digits already allow ~10 GB, so
# a longer run of digits is not a sane count and is read as message text.
MAX_COUNT_DIGITS = 10

# Bytes skipped between octet-counted frames: stray trailers some senders add.
_FILLER = b"\r\n\x00"

# The non-transparent trailers: LF (CRLF after the CR is stripped) and NUL.
_DELIMITER = re.compile(rb"[\n\x00]")

_MONTH = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# RFC 3164 "Mmm dd hh:mm:ss" (day space-padded), optional fraction (RouterOS
# 7.18+ can send milliseconds).
_BSD_TS = _MONTH + rb" [ 0-3]?[0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
# RouterOS syslog-time-format=iso8601 sends e.g. 2025-11-22T21:24:35.265-0500.
_ISO_TS = (
    rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    rb"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_TS = rb"(?:" + _BSD_TS + rb"|" + _ISO_TS + rb")"
# Where a RouterOS record starts in an undelimited stream. The identity before
# "CEF:" may hold spaces but never "|" or "=", and "=" always occurs in the
# previous record's key=value extension, so a timestamp inside an earlier
# record's text cannot claim the next record's header.
_SYSLOG_START = re.compile(rb"<[0-9]{1,3}>" + _TS + rb" ")
# A PRI ending right where a match starts (searched with endpos = that start).
_PRI_BEFORE = re.compile(rb"<[0-9]{1,3}>\Z")
_CEF_START = re.compile(_TS + rb" [^\x00-\x1f|=]{0,253}? ?CEF:[0-9]{1,3}\|")
# Longest text a record header can span (ISO timestamp ~35 + identity 253 +
# the CEF marker ~12). Bytes kept back when scanning, so a header split across
# two reads is still found.
HEADER_SPAN = 320


def record_starts(buf: bytes | bytearray, start: int) -> list[int]:
    """Indexes, in order, of RouterOS record headers at or after start.

    Candidates are found with bytes.find ("<" for syslog, "CEF:" for CEF) and
    only then checked with a regex, so text without headers is scanned at
    memchr speed, in one pass.
    """
    starts: list[int] = []
    i = buf.find(b"<", start)
    while i >= 0:
        if _SYSLOG_START.match(buf, i):
            starts.append(i)
        i = buf.find(b"<", i + 1)
    j = buf.find(b"CEF:", start)
    after_previous = start
    while j >= 0:
        # The header must end with this marker: search a window closing just
        # after it, opening at most HEADER_SPAN bytes before and after the
        # previous marker (a header never spans a "|").
        lo = max(after_previous, j - HEADER_SPAN)
        m = _CEF_START.search(buf, lo, j + 9)
        after_previous = j + 4
        if m is not None and m.start() < j < m.end():
            # CEF inside a syslog header (<PRI>timestamp host CEF:...) starts
            # at its PRI, which the syslog scan has already found.
            pri = _PRI_BEFORE.search(buf, max(0, m.start() - 5), m.start())
            if pri is None:
                starts.append(m.start())
        j = buf.find(b"CEF:", j + 1)
    starts.sort()
    return starts


class Framer:
    """Incremental de-framer for one TCP connection; memory bounded by the limit."""

    def __init__(self, max_message_bytes: int) -> None:
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be at least 1")
        self.limit = max_message_bytes
        self.mode: Mode = "unknown"
        # True once an LF or NUL was seen: plain delimiter framing from then on.
        self.delimited = False
        # True once a message ended without a delimiter: at a record header, or
        # at a quiet gap (flush) that the peer did not follow with one.
        self.undelimited = False
        self._buf = bytearray()  # the message being assembled (<= limit + 1)
        self._discarding = False  # the current message overflowed; skip to its end
        self._carry = b""  # tail of discarded bytes, to find a header across reads
        self._probe = b""  # first bytes while the mode is still unknown
        self._count = bytearray()  # octet mode: digits of the next MSG-LEN
        self._remaining = 0  # octet mode: body bytes still to come

    @property
    def convention(self) -> Convention:
        """How this connection ends its messages, as far as it has shown.

        ``octet`` and ``delimited`` connections end every message themselves,
        so a pause never ends one; ``undelimited`` ones (RouterOS default or
        syslog format over TCP, CEF with an empty delimiter) end a message only
        where the next record starts, or with a pause; ``unknown`` is a new
        connection that has not finished a message yet.
        """
        if self.mode == "octet":
            return "octet"
        if self.delimited:
            return "delimited"
        return "undelimited" if self.undelimited else "unknown"

    @property
    def buffered(self) -> int:
        """Bytes held for the message in progress (for tests and metrics)."""
        return len(self._buf) + len(self._carry) + len(self._probe) + len(self._count)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes just read; return the messages they complete."""
        out: list[Frame] = []
        if data:
            self._dispatch(data, out)
        return out

    def flush(self) -> list[Frame]:
        """Emit a held, undelimited last message (the peer has gone quiet)."""
        out: list[Frame] = []
        if self.mode == "unknown" and self._probe:
            self.mode = "stream"
            self._buf += self._probe
            self._probe = b""
        if self.mode == "stream" and not self.delimited:
            self._end_message(out, strip_cr=False)
            self.undelimited = self.undelimited or bool(out)
        return out

    def close(self) -> list[Frame]:
        """End of stream: emit whatever message is still unfinished."""
        out: list[Frame] = []
        if self.mode == "unknown":
            if self._probe:
                self._emit(self._probe, False, out)
            self._probe = b""
        elif self.mode == "octet":
            if self._remaining and not self._discarding and self._buf:
                # The count promised more than arrived: the message is cut short.
                self._emit(self._buf, True, out)
            self._buf.clear()
            self._count.clear()
            self._remaining = 0
        else:
            self._end_message(out, strip_cr=False)
        self._discarding = False
        self._carry = b""
        return out

    # -- mode detection -------------------------------------------------

    def _dispatch(self, data: bytes, out: list[Frame]) -> None:
        if self.mode == "unknown":
            probe = self._probe + data[: MAX_COUNT_DIGITS + 1]
            digits = 0
            while digits < len(probe) and 0x30 <= probe[digits] <= 0x39:
                digits += 1
            if (
                digits == len(probe)
                and digits <= MAX_COUNT_DIGITS
                and probe[:1] != b"0"
            ):
                self._probe += data  # only digits so far: cannot tell yet
                return
            is_count = (
                1 <= digits <= MAX_COUNT_DIGITS
                and probe[0] != 0x30
                and probe[digits] == 0x20
            )
            self.mode = "octet" if is_count else "stream"
            data = self._probe + data
            self._probe = b""
        if self.mode == "octet":
            self._feed_octet(data, out)
        else:
            self._feed_stream(data, out)

    # -- octet counting ---------------------------------------------------

    def _feed_octet(self, data: bytes, out: list[Frame]) -> None:
        pos, n = 0, len(data)
        while pos < n:
            if self._remaining:
                take = min(self._remaining, n - pos)
                if not self._discarding:
                    room = self.limit + 1 - len(self._buf)
                    self._buf += data[pos : pos + min(take, room)]
                    if len(self._buf) > self.limit:
                        self._emit(self._buf, True, out)
                        self._buf.clear()
                        self._discarding = True
                self._remaining -= take
                pos += take
                if not self._remaining:
                    if not self._discarding:
                        self._emit(self._buf, False, out)
                    self._buf.clear()
                    self._discarding = False
                continue
            byte = data[pos]
            if not self._count and byte in _FILLER:
                pos += 1
            elif 0x30 <= byte <= 0x39 and (self._count or byte != 0x30):
                if len(self._count) >= MAX_COUNT_DIGITS:
                    self._fall_back(data, pos, out)
                    return
                self._count.append(byte)
                pos += 1
            elif byte == 0x20 and self._count:
                self._remaining = int(self._count)
                self._count.clear()
                pos += 1
            else:
                self._fall_back(data, pos, out)
                return

    def _fall_back(self, data: bytes, pos: int, out: list[Frame]) -> None:
        """A frame without a valid count: read the rest as delimited text."""
        self.mode = "stream"
        rest = bytes(self._count) + data[pos:]
        self._count.clear()
        self._feed_stream(rest, out)

    # -- non-transparent framing -----------------------------------------

    def _feed_stream(self, data: bytes, out: list[Frame]) -> None:
        pos, n = 0, len(data)
        # Next LF and next NUL at or after pos. bytes.find runs at memchr
        # speed, and each is looked up again only once passed, so one read
        # costs one pass over its bytes however many messages it holds.
        lf = data.find(b"\n")
        nul = data.find(b"\x00")
        while pos < n:
            if 0 <= lf < pos:
                lf = data.find(b"\n", pos)
            if 0 <= nul < pos:
                nul = data.find(b"\x00", pos)
            end = min(lf, nul) if lf >= 0 and nul >= 0 else max(lf, nul)
            if end < 0:
                if self.delimited:
                    self._append(data[pos:], out)
                else:
                    self._append_undelimited(data[pos:], out)
                return
            # The text before a delimiter is one message, never split at
            # headers: the connection has just shown it uses delimiters.
            self._append(data[pos:end], out)
            self.delimited = True
            self._end_message(out, strip_cr=data[end] == 0x0A)
            pos = end + 1

    def _append(self, chunk: bytes, out: list[Frame]) -> None:
        """Add to the message in progress; on overflow emit it and skip the rest."""
        if self._discarding or not chunk:
            return
        self._buf += chunk
        # One byte of slack: a message of exactly the limit may still be
        # followed by the CR of its CRLF.
        if len(self._buf) > self.limit + 1:
            self._overflow(out)

    def _append_undelimited(self, chunk: bytes, out: list[Frame]) -> None:
        """Like _append, but also end a message where a new record starts."""
        if self._discarding:
            window = self._carry + chunk
            found = record_starts(window, 0)
            if not found:
                self._carry = window[-HEADER_SPAN:]
                return
            self._discarding = False
            self._carry = b""
            chunk = window[found[0] :]
        scan = max(1, len(self._buf) - HEADER_SPAN)
        self._buf += chunk
        previous = 0
        for start in record_starts(self._buf, scan):
            self._emit(self._buf[previous:start], False, out)
            previous = start
            self.undelimited = True
        del self._buf[:previous]
        if len(self._buf) > self.limit + 1:
            # Keep the tail for a header split across reads, but never the
            # message's own first byte: its header must not start it again.
            tail = bytes(self._buf[max(1, len(self._buf) - HEADER_SPAN) :])
            self._overflow(out)
            self._carry = tail

    def _overflow(self, out: list[Frame]) -> None:
        self._emit(self._buf, True, out)
        self._buf.clear()
        self._discarding = True

    def _end_message(self, out: list[Frame], strip_cr: bool) -> None:
        if self._discarding:
            self._discarding = False
        else:
            if strip_cr and self._buf.endswith(b"\r"):
                del self._buf[-1]
            self._emit(self._buf, False, out)
        self._buf.clear()
        self._carry = b""

    def _emit(
        self, payload: bytes | bytearray, truncated: bool, out: list[Frame]
    ) -> None:
        if len(payload) > self.limit:
            payload = payload[: utf8_cut(payload, self.limit)]
            truncated = True
        if payload or truncated:
            out.append(Frame(bytes(payload), truncated))
