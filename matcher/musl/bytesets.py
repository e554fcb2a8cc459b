"""Byte sets: an int with bit b set when byte b is in the set.

The POSIX classes and backslash macros as musl's C locale defines them, the code
points musl reads pattern and input bytes as, and how a set is spelled for RE2.
"""

from __future__ import annotations

from typing import Final


def _mask(*ranges: tuple[int, int]) -> int:
    """The byte set of the given inclusive (lo, hi) byte ranges."""
    m = 0
    for lo, hi in ranges:
        m |= ((1 << (hi - lo + 1)) - 1) << lo
    return m


_ALL: Final = _mask((0x00, 0xFF))
_DIGIT: Final = _mask((0x30, 0x39))
_UPPER: Final = _mask((0x41, 0x5A))
_LOWER: Final = _mask((0x61, 0x7A))
_ALPHA: Final = _UPPER | _LOWER
_ALNUM: Final = _ALPHA | _DIGIT
_GRAPH: Final = _mask((0x21, 0x7E))
_SPACE: Final = _mask((0x09, 0x0D), (0x20, 0x20))
# TRE's IS_WORD_CHAR: '_' or iswalnum(); input bytes >= 0x80 are U+DF80.. (not alnum).
_WORD: Final = _ALNUM | _mask((0x5F, 0x5F))

# musl's wctype() names with their C-locale members. musl maps input bytes >= 0x80
# to U+DF80-U+DFFF, which no class contains, so every class is ASCII only. Byte 0 is
# code point 0 (a control character), which musl never sees but we do (the NUL
# note in the package docstring).
_CLASSES: Final[dict[bytes, int]] = {
    b"alnum": _ALNUM,
    b"alpha": _ALPHA,
    b"blank": _mask((0x09, 0x09), (0x20, 0x20)),
    b"cntrl": _mask((0x00, 0x1F), (0x7F, 0x7F)),
    b"digit": _DIGIT,
    b"graph": _GRAPH,
    b"lower": _LOWER,
    b"print": _mask((0x20, 0x7E)),
    b"punct": _GRAPH & ~_ALNUM,
    b"space": _SPACE,
    b"upper": _UPPER,
    b"xdigit": _DIGIT | _mask((0x41, 0x46), (0x61, 0x66)),
}

# musl's tre_macros: backslash escapes that stand for one character or one class.
_MACROS: Final[dict[int, int]] = {
    ord("t"): 1 << 0x09,
    ord("n"): 1 << 0x0A,
    ord("r"): 1 << 0x0D,
    ord("f"): 1 << 0x0C,
    ord("a"): 1 << 0x07,
    ord("e"): 1 << 0x1B,
    ord("w"): _WORD,
    ord("W"): _ALL & ~_WORD,
    ord("s"): _SPACE,
    ord("S"): _ALL & ~_SPACE,
    ord("d"): _DIGIT,
    ord("D"): _ALL & ~_DIGIT,
}


def _fold(m: int) -> int:
    """m with the other case of each ASCII letter in it (musl's REG_ICASE).

    In the C locale only A-Z and a-z have a case; bytes 0x80-0xFF have none.
    """
    return m | ((m & _UPPER) << 32) | ((m & _LOWER) >> 32)


# In the C locale musl reads a byte b >= 0x80 as the code point 0xDF00 + b.
_HIGH_BASE: Final = 0xDF00


def _code_point(b: int) -> int:
    """The code point musl's C-locale mbtowc gives pattern or input byte b."""
    return b if b < 0x80 else _HIGH_BASE + b


def _cp_range_mask(lo: int, hi: int) -> int:
    """The bytes whose code points lie in [lo, hi]."""
    m = 0
    if lo <= 0x7F:
        m |= _mask((lo, min(hi, 0x7F)))
    a, b = max(lo, _HIGH_BASE + 0x80), min(hi, _HIGH_BASE + 0xFF)
    if a <= b:
        m |= _mask((a - _HIGH_BASE, b - _HIGH_BASE))
    return m


def _ranges(m: int) -> list[tuple[int, int]]:
    """The set as sorted inclusive byte ranges."""
    out: list[tuple[int, int]] = []
    b = 0
    while m >> b:
        if (m >> b) & 1:
            start = b
            while (m >> (b + 1)) & 1:
                b += 1
            out.append((start, b))
        b += 1
    return out


# RE2's metacharacters outside brackets, escaped with a backslash; other printable
# ASCII stays as is, everything else becomes \xHH (a byte, in Latin-1 mode).
_RE2_SPECIAL: Final = frozenset(b"\\.+*?()|[]{}^$")

# The same inside brackets ('[' too, so RE2 never sees a [:class:]).
_RE2_CLASS_SPECIAL: Final = frozenset(b"\\]^-[")


def _re2_byte(b: int) -> str:
    """One byte as an RE2 literal outside brackets."""
    if 0x20 <= b <= 0x7E:
        return "\\" + chr(b) if b in _RE2_SPECIAL else chr(b)
    return f"\\x{b:02x}"


def _re2_class_byte(b: int) -> str:
    """One byte inside an RE2 bracket."""
    if 0x20 <= b <= 0x7E and b not in _RE2_CLASS_SPECIAL:
        return chr(b)
    return f"\\x{b:02x}"


def _re2_set(m: int) -> str:
    """A byte set as one RE2 atom (literal, explicit class, or never-matching class)."""
    if m == 0:
        return r"[^\x00-\xff]"
    if m & (m - 1) == 0:
        return _re2_byte(m.bit_length() - 1)
    parts = []
    for lo, hi in _ranges(m):
        parts.append(_re2_class_byte(lo))
        if hi > lo:
            parts.append(("" if hi == lo + 1 else "-") + _re2_class_byte(hi))
    return "[" + "".join(parts) + "]"
