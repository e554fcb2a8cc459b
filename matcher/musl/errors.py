"""RegexError, lint notes, musl's error texts, and the pattern reader that uses them.

_Reader is the base of the parser (parser.py, brackets.py): it reads the pattern
byte by byte, collects the notes lint() reports, and words the errors for patterns
musl rejects.
"""

from __future__ import annotations

from typing import Final


class RegexError(ValueError):
    """A pattern musl rejects, or one alertik cannot run exactly in linear time."""


# musl's regerror() texts, quoted in our messages so admins can match them up.
_BADRPT: Final = "Repetition not preceded by valid expression"
_BADBR: Final = "Invalid contents of {}"
_EBRACE: Final = "Missing '}'"
_EBRACK: Final = "Missing ']'"
_EPAREN: Final = "Missing ')'"
_ERANGE: Final = "Invalid character range"
_ECTYPE: Final = "Unknown character class name"
_ECOLLATE: Final = "Unknown collating element"
_EESCAPE: Final = "Trailing backslash"
_ESPACE: Final = "Out of memory"


class _Note:
    """Something lint() reports: a legal construct that is likely a mistake."""

    __slots__ = ("pos", "text")

    def __init__(self, pos: int, text: str) -> None:
        """A warning about pattern byte offset pos."""
        self.pos, self.text = pos, text


class _Reader:
    """The pattern being parsed, and the notes collected while reading it."""

    def __init__(self, pattern: bytes, icase: bool = False) -> None:
        """Read pattern (raw bytes, no NUL); icase as musl's REG_ICASE."""
        self.p = pattern
        self.icase = icase
        self.notes: list[_Note] = []

    def at(self, i: int) -> int:
        """Byte i of the pattern, 0 past the end (C's NUL terminator)."""
        return self.p[i] if i < len(self.p) else 0

    def fail(self, pos: int, what: str, musl: str, fix: str) -> RegexError:
        """A RegexError for a pattern musl rejects, in the house wording."""
        return RegexError(
            f"position {pos + 1}: {what}; musl rejects it ({musl}): {fix}"
        )
