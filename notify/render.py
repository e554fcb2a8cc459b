"""Payloads for each service: pure functions from text to request body.

Nothing here does I/O. ``payload()`` builds the JSON document one service
accepts; ``split()`` cuts a text that is too long for one message into labelled
parts; ``pack()`` and ``digest()`` put several queued alerts into one message
when a destination has fallen behind. The sizes are measured the way each
service counts them, so a message built here is never refused for its length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from alertik.common.config import Destination

Measure = Callable[[str], int]


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units (what Telegram and Discord limits count)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def json_bytes(text: str) -> int:
    """Bytes the text takes inside a UTF-8 JSON string, quotes left out."""
    return len(msgspec.json.encode(text)) - 2


def characters(text: str) -> int:
    """Length in code points."""
    return len(text)


@dataclass(frozen=True)
class Service:
    """What one kind of destination accepts in a single message."""

    limit: int | None  # largest text of one message, in `measure` units
    digest_limit: int  # largest digest message; may be below `limit`
    measure: Measure
    chat: bool  # read by people: packs digests when it falls behind


# Telegram: "1-4096 characters after entity parsing"; counting UTF-16 units is
# never more lenient than Telegram, so no part is refused as too long.
# Discord: `content` is at most 2000 characters; the same reasoning.
# Slack cuts message text at 40,000 characters and recommends 4,000 for
# reading, so single alerts may be long but digests stay readable.
# Teams: a message may be 28 KB in all; 24,000 bytes of text leaves room for
# the Adaptive Card envelope.
# Generic webhooks are read by programs: no limit on one alert; a digest (only
# with ALERTIK_GENERIC_DIGEST) stays below 64 KiB.
SERVICES: dict[str, Service] = {
    "telegram": Service(4096, 4096, utf16_units, True),
    "discord": Service(2000, 2000, utf16_units, True),
    "slack": Service(40_000, 4000, characters, True),
    "teams": Service(24_000, 24_000, json_bytes, True),
    "generic": Service(None, 65_536, json_bytes, False),
}

# A long text goes out in at most this many messages; what does not fit in
# them is cut with CUT_MARKER. One digit keeps every label the same width.
MAX_PARTS = 4
PART_LABEL = "({index}/{total}) "
CUT_MARKER = " [cut: {count} more characters]"
DIGEST_HEADER = "{count} alerts:"
DIGEST_SEPARATOR = "\n"
_INTEGER = re.compile(r"^-?[0-9]+$")


def payload(dest: Destination, text: str) -> dict[str, Any]:
    """The JSON document that carries text to dest, as its service documents it."""
    if dest.kind == "telegram":
        # Plain text on purpose: no parse_mode, so nothing in a log line can be
        # taken for markup. Telegram documents chat_id as an integer (or an
        # @channel name).
        chat: int | str = (
            int(dest.chat_id) if _INTEGER.match(dest.chat_id) else (dest.chat_id)
        )
        return {"chat_id": chat, "text": text}
    if dest.kind == "discord":
        # Native webhook; an empty parse list means "@everyone" in a log line
        # pings nobody.
        return {"content": text, "allowed_mentions": {"parse": []}}
    if dest.kind == "teams" and dest.teams_format == "workflows":
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            # Workflows does not render 1.5 cards; without wrap long text is cut.
            "version": "1.4",
            "body": [{"type": "TextBlock", "text": text, "wrap": True}],
        }
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }
    # Slack, Teams' legacy connector and the generic webhooks.
    return {"text": text}


def encode(dest: Destination, text: str) -> bytes:
    """The request body for text at dest: UTF-8 JSON, escaped properly."""
    return msgspec.json.encode(payload(dest, text))


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


def parts(kind: str, text: str) -> list[str]:
    """The messages that carry one alert's text to a service of this kind."""
    service = SERVICES[kind]
    return split(text, service.limit, service.measure)


def pack(kind: str, texts: Sequence[str]) -> int:
    """How many of texts, from the front, fit together in one digest (at least 1)."""
    service = SERVICES[kind]
    measure = service.measure
    used = measure(DIGEST_HEADER.format(count=len(texts)))
    sep = measure(DIGEST_SEPARATOR)
    count = 0
    for text in texts:
        used += sep + measure(text)
        if used > service.digest_limit:
            break
        count += 1
    return max(count, 1)


def digest(texts: Sequence[str]) -> str:
    """One message carrying every text, under a count header."""
    header = DIGEST_HEADER.format(count=len(texts))
    return DIGEST_SEPARATOR.join((header, *texts))
