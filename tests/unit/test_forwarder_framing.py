"""RFC 6587 framing and the TCP backlog: what gets written, kept and dropped."""

from __future__ import annotations

import pytest

from alertik.forwarder.tcp import Backlog, frame


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"x", b"1 x"),
        (b"<27>Oct  2 17:36:35 MikroTik hi\n", b"32 <27>Oct  2 17:36:35 MikroTik hi\n"),
        (b"\x00\xff\xfe 7 ", b"6 \x00\xff\xfe 7 "),
        (b"a" * 2048, b"2048 " + b"a" * 2048),
    ],
)
def test_a_frame_is_the_byte_length_a_space_and_the_bytes_unchanged(
    payload: bytes, expected: bytes
) -> None:
    assert frame(payload) == expected


def test_the_backlog_refuses_the_newest_frame_once_it_holds_its_count() -> None:
    backlog = Backlog(max_messages=3)
    assert [backlog.push(b"%d" % i) for i in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert backlog.chunk() == b"012"


def test_the_backlog_refuses_a_frame_that_would_pass_its_byte_cap() -> None:
    backlog = Backlog(max_messages=100, max_bytes=10)
    assert backlog.push(b"123456")
    assert not backlog.push(b"12345")
    assert backlog.push(b"1234")
    assert backlog.bytes == 10


def test_an_empty_backlog_takes_one_frame_larger_than_its_byte_cap() -> None:
    backlog = Backlog(max_messages=100, max_bytes=10)
    assert backlog.push(b"x" * 50)
    assert not backlog.push(b"y")


def test_a_chunk_joins_frames_up_to_the_limit_and_always_holds_one() -> None:
    backlog = Backlog(max_messages=100)
    for data in (b"aaaa", b"bbbb", b"cccc", b"dddd"):
        backlog.push(data)
    assert bytes(backlog.chunk(limit=6)) == b"aaaabbbb"
    assert bytes(backlog.chunk(limit=1)) == b"aaaa"
    assert bytes(backlog.chunk(limit=100)) == b"aaaabbbbccccdddd"


def test_consume_completes_frames_and_remembers_a_partly_written_one() -> None:
    backlog = Backlog(max_messages=100)
    for data in (b"aaaa", b"bbbb", b"cccc"):
        backlog.push(data)
    assert backlog.consume(6) == 1
    assert len(backlog) == 2
    assert bytes(backlog.chunk()) == b"bbcccc"
    assert backlog.consume(2) == 1
    assert backlog.consume(3) == 0
    assert bytes(backlog.chunk()) == b"c"
    assert backlog.consume(1) == 1
    assert len(backlog) == 0 and backlog.bytes == 0 and backlog.offset == 0


def test_after_a_rewind_a_partly_written_frame_is_sent_again_whole() -> None:
    backlog = Backlog(max_messages=100)
    backlog.push(b"12345")
    backlog.push(b"678")
    backlog.consume(3)
    backlog.rewind()
    assert bytes(backlog.chunk()) == b"12345678"
