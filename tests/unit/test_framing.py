"""Unit tests for ingest.framing: cutting a TCP byte stream into syslog messages.

Framing facts used here:

* RFC 6587 3.4.1 octet counting, ``MSG-LEN SP SYSLOG-MSG`` with MSG-LEN a
  non-zero-led decimal count; 3.4.2 non-transparent framing, where a trailer
  (LF, sometimes NUL or CRLF) ends each message.
* MikroTik's Log manual page
  (https://manual.mikrotik.com/docs/Diagnostics,%20monitoring%20and%20troubleshooting/log/):
  ``cef-event-delimiter`` (string; Default: ``\\r\\n``) "option helps remote
  syslog to distinguish between individual events within a sent batch", and
  ``remote-protocol``: "TCP and TLS only work with CEF remote-log-format, for
  syslog it will always use UDP, even if TCP / TLS is set". CRLF-ended CEF is
  therefore the normal RouterOS TCP stream. ``cef-event-delimiter=""`` (seen in
  published RouterOS configs) and our notes' "default and syslog entries over
  TCP are sent back-to-back with no delimiter" are the undelimited cases.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings, strategies as st

from alertik.common.text import utf8_cut
from alertik.ingest.framing import (
    HEADER_SPAN,
    MAX_COUNT_DIGITS,
    Frame,
    Framer,
)

LIMIT = 2048

# The same RouterOS login failure as each format sends it (RouterOS 7.25beta5,
# identity MikroTik; the manual's Log page examples, via our RouterOS notes).
MESSAGE = b"login failure for user guest from 192.168.88.17 via ssh"
DEFAULT = b"system,error,critical " + MESSAGE
SYSLOG = b"<27>Oct  2 17:36:35 MikroTik " + MESSAGE
CEF = (
    b"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|"
    b"system,error,critical|High|dvchost=MikroTik dvc=192.168.88.36 "
    b"msg=login failure for user guest from 192.168.88.17 via ssh app=ssh "
    b"duser=guest outcome=failure src=192.168.88.17"
)
# syslog-time-format=iso8601 on RouterOS 7.20.4 (quoted in the public NixOS
# config quentinmit/isz, workshop/vector/mikrotik.nix).
CEF_ISO = (
    b"2025-11-22T21:24:35.265-0500 router.isz.wtf CEF:0|MikroTik|"
    b"RB4011iGS+5HacQ2HnD|7.20.4 (stable)|16|dhcp,debug,packet|Low|"
    b"dvchost=router.isz.wtf dvc=172.30.97.3 msg=    Router \\= 192.168.88.1"
)


def frames(*payloads: bytes, truncated: bool = False) -> list[Frame]:
    return [Frame(p, truncated) for p in payloads]


def feed_all(framer: Framer, chunks: list[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# -- octet counting ------------------------------------------------------


def test_octet_counted_frames_are_cut_by_their_length() -> None:
    framer = Framer(LIMIT)
    stream = b"%d %s%d %s" % (len(SYSLOG), SYSLOG, len(CEF), CEF)
    assert framer.feed(stream) == frames(SYSLOG, CEF)
    assert framer.mode == "octet"


def test_an_octet_counted_message_may_contain_newlines_and_nul() -> None:
    body = b"<13>first line\nsecond\x00third\r\n"
    assert Framer(LIMIT).feed(b"%d %s" % (len(body), body)) == frames(body)


def test_octet_counted_frames_split_anywhere_across_reads_come_out_whole() -> None:
    stream = b"%d %s%d %s" % (len(SYSLOG), SYSLOG, len(CEF_ISO), CEF_ISO)
    assert feed_all(Framer(LIMIT), bytewise(stream)) == frames(SYSLOG, CEF_ISO)


def test_newlines_between_octet_counted_frames_are_skipped() -> None:
    stream = b"5 hello\n\r\n5 world\x00"
    assert Framer(LIMIT).feed(stream) == frames(b"hello", b"world")


def test_a_frame_without_a_count_switches_the_connection_to_delimiters() -> None:
    framer = Framer(LIMIT)
    out = framer.feed(b"5 hellothen text\nmore\n")
    assert out == frames(b"hello", b"then text", b"more")
    assert framer.mode == "stream"


def test_a_stream_starting_with_zero_or_a_long_digit_run_is_not_octet_counted() -> None:
    assert Framer(LIMIT).feed(b"0 zero\n") == frames(b"0 zero")
    digits = b"1" * (MAX_COUNT_DIGITS + 1)
    framer = Framer(LIMIT)
    assert framer.feed(digits + b" x\n") == frames(digits + b" x")
    assert framer.mode == "stream"


def test_the_mode_waits_for_the_first_non_digit_when_reads_end_in_digits() -> None:
    framer = Framer(LIMIT)
    modes = []
    for chunk in (b"1", b"2", b" <13>hello wo"):
        out = framer.feed(chunk)
        modes.append(framer.mode)
    assert out == frames(b"<13>hello wo")
    assert modes == ["unknown", "unknown", "octet"]
    other = Framer(LIMIT)
    assert other.feed(b"2025") == []
    assert other.feed(b"-11-22T21:24:35Z x\n") == frames(b"2025-11-22T21:24:35Z x")
    assert other.mode == "stream"


def test_an_octet_frame_over_the_limit_is_cut_and_the_rest_skipped() -> None:
    framer = Framer(64)
    body = b"a" * 1000
    out = framer.feed(b"1000 " + body[:500])
    assert out == frames(b"a" * 64, truncated=True)
    assert framer.buffered == 0
    assert framer.feed(body[500:] + b"2 ok") == frames(b"ok")


def test_a_huge_octet_count_costs_only_the_limit_in_memory() -> None:
    framer = Framer(64)
    out = framer.feed(b"9999999999 ")
    for _ in range(256):  # 16 MiB of body, far short of the count
        out += framer.feed(b"x" * 65536)
        assert framer.buffered <= 64 + 1
    assert out == frames(b"x" * 64, truncated=True)


def test_an_octet_frame_cut_short_by_the_end_of_stream_is_flagged_truncated() -> None:
    framer = Framer(LIMIT)
    assert framer.feed(b"100 only part") == []
    assert framer.close() == frames(b"only part", truncated=True)


# -- non-transparent framing ---------------------------------------------


def test_lf_crlf_and_nul_each_end_a_message_and_the_cr_is_removed() -> None:
    framer = Framer(LIMIT)
    stream = SYSLOG + b"\n" + CEF + b"\r\n" + DEFAULT + b"\x00"
    assert framer.feed(stream) == frames(SYSLOG, CEF, DEFAULT)
    assert framer.mode == "stream" and framer.delimited


def test_a_crlf_split_between_two_reads_still_loses_its_cr() -> None:
    framer = Framer(LIMIT)
    assert framer.feed(CEF + b"\r") == []
    assert framer.feed(b"\n") == frames(CEF)


def test_empty_lines_produce_no_messages() -> None:
    assert Framer(LIMIT).feed(b"\n\r\n\x00a\n\n") == frames(b"a")


def test_messages_split_anywhere_across_reads_come_out_whole() -> None:
    stream = SYSLOG + b"\r\n" + CEF_ISO + b"\r\n" + DEFAULT + b"\n"
    framer = Framer(LIMIT)
    assert feed_all(framer, bytewise(stream)) == frames(SYSLOG, CEF_ISO, DEFAULT)


def test_a_final_message_without_a_trailer_is_emitted_at_close() -> None:
    framer = Framer(LIMIT)
    assert framer.feed(b"a\nlast one") == frames(b"a")
    assert framer.close() == frames(b"last one")
    assert framer.close() == []


def test_a_line_over_the_limit_keeps_its_start_and_drops_the_rest() -> None:
    framer = Framer(64)
    out = framer.feed(b"x" * 1000)
    assert out == frames(b"x" * 64, truncated=True)
    # Only a tail is kept, to spot a record header split across reads.
    assert framer.buffered <= HEADER_SPAN
    assert framer.feed(b"y" * 1000 + b"\nnext\n") == frames(b"next")
    assert framer.feed(b"z" * 1000) == frames(b"z" * 64, truncated=True)
    assert framer.buffered == 0


def test_a_line_of_exactly_the_limit_is_not_truncated_even_with_crlf() -> None:
    framer = Framer(64)
    assert framer.feed(b"z" * 64 + b"\r\n") == frames(b"z" * 64)
    assert framer.feed(b"z" * 65 + b"\n") == frames(b"z" * 64, truncated=True)


def test_a_huge_line_costs_bounded_memory_whatever_its_length() -> None:
    framer = Framer(LIMIT)
    out: list[Frame] = []
    for _ in range(512):  # 32 MiB without a delimiter
        out += framer.feed(b"q" * 65536)
        assert framer.buffered <= HEADER_SPAN
    out += framer.feed(b"\nafter\n")
    assert out == [Frame(b"q" * LIMIT, True), Frame(b"after", False)]


def test_truncation_never_splits_a_utf8_character() -> None:
    framer = Framer(64)
    text = ("é" * 100).encode()  # two bytes each: byte 64 starts a character
    assert framer.feed(b"a" + text + b"\n") == frames(
        b"a" + ("é" * 31).encode(), truncated=True
    )
    for prefix in (b"", b"a", b"ab", b"abc"):
        data = prefix + ("€" * 40).encode()  # three bytes each
        cut = utf8_cut(data, 64)
        assert cut <= 64
        data[:cut].decode()  # must not raise


def test_utf8_cut_falls_back_to_the_limit_on_bytes_that_are_not_utf8() -> None:
    assert utf8_cut(b"\x80" * 100, 10) == 10
    assert utf8_cut(b"abc", 10) == 3


# -- RouterOS streams without any delimiter -------------------------------


def test_back_to_back_syslog_entries_are_cut_where_each_pri_header_starts() -> None:
    framer = Framer(LIMIT)
    iso = b"<30>2025-11-22T21:24:35.265-0500 MikroTik dhcp assigned 10.0.0.9"
    out = framer.feed(SYSLOG + iso + SYSLOG)
    assert out == frames(SYSLOG, iso)
    # The last one may still grow: it is held until the next header,
    assert framer.feed(iso[:40]) == frames(SYSLOG)
    # ...or until the peer goes quiet (flush), or closes.
    assert framer.flush() == frames(iso[:40])
    assert framer.close() == []


def test_back_to_back_cef_records_with_an_empty_delimiter_are_cut_apart() -> None:
    framer = Framer(LIMIT)
    out = framer.feed(CEF + CEF_ISO + CEF)
    assert out == frames(CEF, CEF_ISO)
    assert framer.close() == frames(CEF)


def test_cef_wrapped_in_a_syslog_header_is_cut_only_at_its_pri() -> None:
    wrapped = b"<134>" + CEF
    framer = Framer(LIMIT)
    assert framer.feed(wrapped + wrapped + CEF) == frames(wrapped, wrapped)
    assert framer.close() == frames(CEF)


def test_a_record_header_split_across_two_reads_is_still_found() -> None:
    framer = Framer(LIMIT)
    both = SYSLOG + SYSLOG
    cut = len(SYSLOG) + 7  # inside "<27>Oct  2 ..."
    assert framer.feed(both[:cut]) == []
    assert framer.feed(both[cut:]) == frames(SYSLOG)
    assert framer.close() == frames(SYSLOG)


def test_undelimited_default_entries_are_held_until_the_peer_is_quiet() -> None:
    framer = Framer(LIMIT)
    assert framer.feed(DEFAULT) == []
    assert framer.flush() == frames(DEFAULT)
    assert framer.flush() == []


def test_flush_does_nothing_once_the_connection_has_used_a_delimiter() -> None:
    framer = Framer(LIMIT)
    assert framer.feed(b"first\npartial li") == frames(b"first")
    assert framer.flush() == []
    assert framer.feed(b"ne\n") == frames(b"partial line")


def test_headers_inside_a_delimited_stream_never_split_a_message() -> None:
    line = SYSLOG + b" quoting " + SYSLOG
    assert Framer(LIMIT).feed(line + b"\n" + line + b"\n") == frames(line, line)


def test_an_oversize_undelimited_record_is_cut_and_the_next_header_resumes() -> None:
    framer = Framer(100)
    big = b"<27>Oct  2 17:36:35 MikroTik " + b"w" * 5000
    out: list[Frame] = []
    for i in range(0, len(big), 333):
        out += framer.feed(big[i : i + 333])
        assert framer.buffered <= 100 + 1 + HEADER_SPAN
    out += framer.feed(SYSLOG[:50])
    out += framer.feed(SYSLOG[50:])
    assert out == frames(big[:100], truncated=True)
    assert framer.close() == frames(SYSLOG)


# -- properties ------------------------------------------------------------

_line = st.binary(min_size=1, max_size=300).filter(
    lambda b: b"\n" not in b and b"\x00" not in b and not b.endswith(b"\r")
)


@settings(database=None, deadline=None, max_examples=100)
@given(
    messages=st.lists(_line, min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
)
def test_any_split_of_an_lf_stream_yields_the_same_messages(
    messages: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(m + b"\n" for m in messages)
    # A first line that looks like an octet count changes the framing, by design.
    if stream[:1].isdigit():
        stream = b"x" + stream
        messages = [b"x" + messages[0], *messages[1:]]
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    framer = Framer(LIMIT)
    assert feed_all(framer, chunks) + framer.close() == frames(*messages)


@settings(database=None, deadline=None, max_examples=200)
@given(
    messages=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12),
    limit=st.integers(min_value=1, max_value=400),
)
def test_any_split_of_an_octet_stream_yields_the_same_messages_cut_to_the_limit(
    messages: list[bytes], cuts: list[int], limit: int
) -> None:
    stream = b"".join(b"%d %s" % (len(m), m) for m in messages)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    framer = Framer(limit)
    out = feed_all(framer, chunks) + framer.close()
    expected = [Frame(m[: utf8_cut(m, limit)], len(m) > limit) for m in messages]
    assert out == expected


_PIECES = st.sampled_from(
    [
        b"\n",
        b"\r\n",
        b"\x00",
        b"12 ",
        b"9999999999 ",
        b"0",
        b"<27>",
        b"Oct  2 17:36:35 ",
        b"2025-11-22T21:24:35.265-0500 ",
        b"MikroTik ",
        b"CEF:0|",
        b"\xc3\xa9",
        b"\xe2\x82\xac",
    ]
)
_CHUNK = st.lists(_PIECES | st.binary(max_size=64), max_size=12).map(b"".join)


@settings(database=None, deadline=None, max_examples=200)
@given(
    chunks=st.lists(_CHUNK | st.binary(max_size=2000), max_size=16),
    limit=st.integers(min_value=1, max_value=512),
)
def test_arbitrary_bytes_never_raise_and_never_exceed_the_limit(
    chunks: list[bytes], limit: int
) -> None:
    framer = Framer(limit)
    out: list[Frame] = []
    for chunk in chunks:
        out += framer.feed(chunk)
        assert framer.buffered <= limit + 1 + HEADER_SPAN + MAX_COUNT_DIGITS
    out += framer.flush() + framer.close()
    assert all(len(f.payload) <= limit for f in out)
    assert all(f.payload or f.truncated for f in out)


def convention(framer: Framer) -> str:
    """framer.convention, read anew: mypy would carry over what an earlier
    assert about the property narrowed it to."""
    return framer.convention


def test_a_connection_shows_how_it_ends_its_messages() -> None:
    """The convention decides whether a pause may end a held message."""
    fresh = Framer(LIMIT)
    assert convention(fresh) == "unknown"
    assert fresh.feed(b"12") == [] and convention(fresh) == "unknown"
    assert fresh.feed(b"3") == [] and convention(fresh) == "unknown"
    assert fresh.feed(b" x") == [] and convention(fresh) == "octet"
    lines = Framer(LIMIT)
    assert lines.feed(b"half of a first line") == []
    assert convention(lines) == "unknown"
    lines.feed(b"\r\n")
    assert convention(lines) == "delimited"
    records = Framer(LIMIT)
    records.feed(SYSLOG + SYSLOG)
    assert convention(records) == "undelimited"  # cut where a header starts
    quiet = Framer(LIMIT)
    quiet.feed(DEFAULT)
    assert quiet.flush() == frames(DEFAULT)
    assert convention(quiet) == "undelimited"  # ended by a pause, no delimiter
    quiet.feed(b"late\n")
    assert convention(quiet) == "delimited"  # a delimiter always wins
