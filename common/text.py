"""Small helpers for text and bytes, shared by the stages."""

from __future__ import annotations


def utf8_cut(data: bytes | bytearray, limit: int) -> int:
    """Length <= limit of data's prefix that does not split a UTF-8 character."""
    if len(data) <= limit:
        return len(data)
    # data[limit] is the first byte dropped. If it continues a character, step
    # back to that character's lead byte (at most 3 continuation bytes) and
    # cut before it.
    cut = limit
    while cut > 0 and limit - cut < 3 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    if data[cut] & 0xC0 == 0x80:
        return limit  # not UTF-8 here: any cut is as good as another
    return cut


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """Cut data to at most limit bytes without splitting a UTF-8 sequence."""
    return data[: utf8_cut(data, limit)]
