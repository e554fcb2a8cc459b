"""Message text: pure functions from alert texts to the texts of messages.

Nothing here does I/O or knows a service by name; ``notify/services.py`` says
which of these each service uses.

* Measures count a text the way a service counts its limit.
* Escapes make a service show log text as the very text it is: no markup, no
  link, no mention taken from a log line that an attacker may have written
  (a user name in a failed login, for instance).
* ``split()`` cuts a text that is too long for one message into labelled
  parts; ``pack()`` and ``digest()`` put several queued alerts into one
  message when a destination has fallen behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import msgspec

Measure = Callable[[str], int]
Escape = Callable[[str], str]


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units (what Telegram and Discord limits count)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def json_bytes(text: str) -> int:
    """Bytes the text takes inside a UTF-8 JSON string, quotes left out."""
    return len(msgspec.json.encode(text)) - 2


def utf8_bytes(text: str) -> int:
    """Length in UTF-8 bytes (ntfy's message limit)."""
    return len(text.encode("utf-8", "surrogatepass"))


def characters(text: str) -> int:
    """Length in code points."""
    return len(text)


def as_is(text: str) -> str:
    """No escaping: the service shows plain text (Telegram without parse_mode,
    generic webhooks read by programs)."""
    return text


def slack_escape(text: str) -> str:
    """Slack's own escaping: ``&``, ``<`` and ``>`` as entities.

    Slack reads ``<...>`` as a link, a mention or ``<!channel>``; escaped,
    ``<https://evil|Login here>`` is shown as typed instead of as a link.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# A backslash that would escape the character after it (Markdown), and the
# brackets that open and close a link's text.
_MARKDOWN = re.compile(r"\\(?=[^0-9A-Za-z\s])|[\[\]]")


def markdown_escape(text: str) -> str:
    """Markdown link syntax made literal (Teams' Adaptive Cards, Discord).

    ``[Login here](https://evil)`` is shown as typed, not as a link whose
    text hides where it goes. A backslash that Markdown would take for an
    escape is doubled, so it is shown too. Other characters are left alone:
    at worst a pair of ``*`` or ``_`` makes a word bold or italic.
    """
    return _MARKDOWN.sub(r"\\\g<0>", text)


# Discord's <...> forms: user, role and channel mentions, slash commands,
# custom emoji, timestamps, guild navigation and URLs without an embed.
_DISCORD_TAG = re.compile(
    r"<(?=(?:@[!&]?[0-9]+|#[0-9]+|/[^<>\s:][^<>:]*:[0-9]+|a?:\w+:[0-9]+"
    r"|t:-?[0-9]+(?::[tTdDfFR])?|id:\w+|https?://[^\s<>]+)>)"
)


def discord_escape(text: str) -> str:
    """Markdown links made literal, and Discord's <...> forms shown as typed
    (``allowed_mentions`` already keeps them from pinging anyone)."""
    return _DISCORD_TAG.sub(r"\\<", markdown_escape(text))


# A long text goes out in at most this many messages; what does not fit in
# them is cut with CUT_MARKER. One digit keeps every label the same width.
MAX_PARTS = 4
PART_LABEL = "({index}/{total}) "
CUT_MARKER = " [cut: {count} more characters]"
DIGEST_HEADER = "{count} alerts:"
DIGEST_SEPARATOR = "\n"


def _fit(text: str, budget: int, measure: Measure) -> int:
    """The longest prefix length of text whose measure is within budget."""
    if measure(text) <= budget:
        return len(text)
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _cut_point(text: str, end: int) -> tuple[int, int]:
    """Where to end a part taken from text[:end]: (part end, next part start)."""
    if end >= len(text):
        return end, end
    if text[end] in " \n":
        return end, end + 1
    window = text[:end]
    # A break in the second half of the window keeps parts of a useful size.
    for sep in ("\n", " "):
        at = window.rfind(sep)
        if at >= end // 2 and at > 0:
            return at, at + 1
    return end, end


def split(text: str, limit: int | None, measure: Measure) -> list[str]:
    """Text as one or more messages within limit; labelled, cut past MAX_PARTS."""
    if limit is None or measure(text) <= limit:
        return [text]
    label = measure(PART_LABEL.format(index=MAX_PARTS, total=MAX_PARTS))
    marker = measure(CUT_MARKER.format(count=len(text)))
    budget = max(limit - label, 1)
    pieces: list[str] = []
    rest = text
    while rest:
        if len(pieces) == MAX_PARTS - 1 and measure(rest) > budget:
            end = _fit(rest, max(budget - marker, 1), measure)
            head = rest[:end]
            pieces.append(head + CUT_MARKER.format(count=len(rest) - len(head)))
            break
        end, start = _cut_point(rest, _fit(rest, budget, measure))
        if end == 0:
            end = start = max(_fit(rest, budget, measure), 1)
        pieces.append(rest[:end])
        rest = rest[start:]
    total = len(pieces)
    return [
        PART_LABEL.format(index=i, total=total) + piece
        for i, piece in enumerate(pieces, 1)
    ]


def pack(texts: Sequence[str], limit: int, measure: Measure) -> int:
    """How many of texts, from the front, fit together in one digest (at least 1)."""
    used = measure(DIGEST_HEADER.format(count=len(texts)))
    sep = measure(DIGEST_SEPARATOR)
    count = 0
    for text in texts:
        used += sep + measure(text)
        if used > limit:
            break
        count += 1
    return max(count, 1)


def digest(texts: Sequence[str]) -> str:
    """One message carrying every text, under a count header."""
    header = DIGEST_HEADER.format(count=len(texts))
    return DIGEST_SEPARATOR.join((header, *texts))
