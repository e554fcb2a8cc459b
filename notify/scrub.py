"""Secrets out of everything notify logs, returns or raises.

Webhook URLs, tokens and passwords are credentials: requests puts the URL in
its exception text, and a service may echo it (or part of it) in an error
body, percent-encoded, JSON-escaped or as HTML entities. ``secrets_for``
lists what of a destination must never be shown, ``scrub`` replaces each of
those, however encoded, and ``excerpt`` cuts a scrubbed piece of an answer's
body for the log.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote, urlsplit

from alertik.common.destinations import Destination
from alertik.notify.services import service_of

# How much of a refusal's body goes into the log: enough for the service's
# error text, not a whole HTML error page.
BODY_EXCERPT = 300


def secrets_of(url: str) -> list[str]:
    """The parts of a URL that must never be shown, longest first."""
    parts = urlsplit(url)
    found = {url, url.split("://", 1)[-1]}
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    for piece in (tail, parts.path, parts.query, unquote(parts.path)):
        if len(piece) > 1:
            found.add(piece)
    # Each path segment and query value on its own: a token or webhook id may
    # show up alone (Telegram's "bot<token>" segment, Slack's secret part).
    for piece in re.split(r"[/?&=]", unquote(tail)):
        if len(piece) >= 6:
            found.update(_token_pieces(piece[3:] if piece.startswith("bot") else piece))
            found.add(piece)
    if parts.password:
        found.add(parts.password)
    return sorted(found, key=len, reverse=True)


def _token_pieces(token: str) -> list[str]:
    """A token, and its part after a colon (a bot token without the bot's id)."""
    pieces = [token]
    secret = token.rpartition(":")[2]
    if secret != token and len(secret) >= 6:
        pieces.append(secret)
    return pieces


def secrets_for(dest: Destination) -> list[str]:
    """Everything about dest that must be scrubbed, longest first."""
    found: set[str] = set()
    values = dest.secrets()
    service = service_of(dest)
    if service.request is not None:
        req = service.request(dest, "", "")
        values.append(req.url)
        # Basic authentication carries user:password in base64.
        auth = next(
            (v for k, v in req.headers.items() if k.lower() == "authorization"), ""
        )
        if auth.startswith("Basic "):
            values.append(auth[len("Basic ") :])
    for value in values:
        found.update(secrets_of(value) if "://" in value else _token_pieces(value))
    return sorted(found, key=len, reverse=True)


def _hex(byte: int) -> str:
    """A byte as two hex digits, either case."""
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in f"{byte:02x}")


def _encodings(char: str) -> str:
    """A pattern for char in each encoding a URL takes in practice."""
    code = ord(char)
    forms = [re.escape(char)]
    # Percent-encoded, also twice (%253A).
    forms.append("".join(f"%(?:25)?{_hex(b)}" for b in char.encode("utf-8")))
    if code < 0x10000:
        # JSON's \u escape, and HTML's numeric character references.
        forms.append(rf"\\u{_hex(code >> 8)}{_hex(code & 0xFF)}")
        forms.append(
            rf"&#0{{0,3}}{code};|&#[xX]0{{0,3}}{code:x};|&#[xX]0{{0,3}}{code:X};"
        )
    if char == "&":
        forms.append("&amp;")
    # JSON escapes "/" as "\/"; a JSON text inside a JSON string doubles it.
    return r"(?:\\{0,2}(?:" + "|".join(forms) + "))"


# A secret that reached the end of what was read may be cut short there and
# go unrecognised: that many characters per character of the longest secret
# are dropped from the end of a body that was not read whole.
_MAX_ENCODED = 24


@functools.lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    alternatives = [
        "".join(_encodings(c) for c in s)
        for s in sorted(secrets, key=len, reverse=True)
        if s
    ]
    return re.compile("|".join(alternatives)) if alternatives else None


def scrub(text: str, secrets: list[str]) -> str:
    """Text with every secret, however encoded, replaced by ``<redacted>``."""
    pattern = _pattern(tuple(secrets))
    if pattern is not None:
        text = pattern.sub("<redacted>", text)
    return re.sub(r"(with url: )\S+", r"\1<redacted>", text)


def excerpt(body: bytes, secrets: list[str], truncated: bool = False) -> str:
    """A short, one-line, scrubbed piece of a response body for the log.

    The whole body read is scrubbed before anything is cut from it, so a
    secret is never cut in two and half of it shown.
    """
    text = scrub(body.decode("utf-8", "replace"), secrets)
    if truncated and secrets:
        text = text[: max(0, len(text) - _MAX_ENCODED * max(map(len, secrets)))]
    text = " ".join(text.split())
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + "..."
    return text
