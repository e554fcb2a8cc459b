"""Small helpers for text and bytes, shared by the stages."""

from __future__ import annotations


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """Cut data to at most limit bytes without splitting a UTF-8 sequence."""
    if len(data) <= limit:
        return data
    # data[limit] is the first byte cut off; if it continues a character,
    # step back to that character's lead byte (UTF-8 has at most 3
    # continuation bytes) and cut before it.
    cut = limit
    while cut > limit - 4 and cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    if data[cut] & 0xC0 == 0x80:
        return data[:limit]  # not UTF-8 at all: any cut will do
    return data[:cut]
