"""Header parsing for RouterOS remote-log messages: pure, never raises on junk.

Runs downstream of ingest, which forwards raw bytes untouched. ``parse`` reads
what a message's header carries and returns it as ``ParsedFields``; anything it
cannot read is left as None, and unreadable input comes back as format
``"unknown"`` with the whole text as the message.

What RouterOS sends, by ``remote-log-format`` (the same login failure, identity
``MikroTik``, from our RouterOS notes):

* ``default``: ``system,error,critical login failure for user guest ...``.
  Topics, a space, the message: no PRI, no timestamp, no identity.
* ``syslog``: ``<27>Oct  2 17:36:35 MikroTik login failure for user guest ...``.
  RFC 3164 but without a TAG: the identity is followed directly by the
  message. With ``add-topics-string=yes`` (7.22+) the topics come first in
  the message. ``syslog-time-format=iso8601`` replaces the BSD timestamp with
  e.g. ``2025-11-22T21:24:35.265-0500``; 7.18+ may add milliseconds.
* ``cef``: ``Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|
  system,error,critical|High|dvchost=MikroTik dvc=... msg=login failure ...``.

RFC 5424 (``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG``) is not something
RouterOS sends, but a relay between the router and us may.

Beyond the RFCs, as rsyslog, syslog-ng and the CEF decoders of Beats,
Logstash and Graylog read them: whitespace before ``<PRI>`` and a space after
it, month names in any case (``AUG 10``), any number of fraction digits in an
ISO 8601 timestamp, and CEF after a syslog TAG (``ASM:CEF:0|``, ``cef[12]:
CEF:0|``) or after another device's own date and host. In CEF extension
values ``\\n`` and ``\\r`` are a newline and a carriage return (besides
``\\=`` and ``\\\\``), and whitespace after the last value is dropped.
Parsing only adds fields: matching always runs on the raw bytes. The CEF
record itself (header fields, extension pairs) is read by ``cef.py``.

The identity problem
--------------------
A RouterOS identity may contain spaces, and the ``syslog`` format has no TAG
or other marker where the identity ends: ``<27>Oct  2 17:36:35 core router
login failure`` is either identity ``core router`` and message ``login
failure``, or identity ``core`` and message ``router login failure``. The text
alone cannot say which. The rule here:

1. If one of the first words after the timestamp (at most MAX_IDENTITY_WORDS
   words in) is a RouterOS topics list (``system,error,critical``: comma
   separated, with a level such as info or error), as ``add-topics-string=yes``
   sends, the words before it are the identity, spaces included.
2. Otherwise the identity is the first word and the rest is the message. An
   identity with spaces is then cut at its first space, and its other words
   start the message.

CEF has no such problem: the identity is everything between the timestamp and
``CEF:``, and ``dvchost`` repeats it. Users who need exact identities with
spaces should send CEF or turn on ``add-topics-string``.

Severity
--------
``severity`` is the syslog PRI severity when there is a PRI. Otherwise it is
derived: for ``default`` from the topics, as RouterOS's
``syslog-severity=auto`` does (error 3, warning 4, info 6, debug 7; critical
alone 2, our assumption); for CEF from its Low/Medium/High (or 0-10) severity.
The CEF value itself stays in ``cef["severity"]``.
"""

from __future__ import annotations

import re

import msgspec

from alertik.common.schema import Format, ParsedFields
from alertik.matcher.cef import LEVELS, TOPICS, cef_fields, cef_severity, cef_topics

__all__ = ["Format", "ParsedFields", "classify", "parse"]


# Words after the timestamp searched for a topics list; identities are short,
# and a longer search would mistake message text for topics.
MAX_IDENTITY_WORDS = 4
# How far into a message "CEF:" may start: a timestamp and a RouterOS identity
# (at most 255 characters) fit well inside this.
CEF_PREFIX_MAX = 320
# Largest PRI value: facility 23 (local7) * 8 + severity 7.
PRI_MAX = 191

# RouterOS syslog-severity=auto, from topics (debug 7, info 6, warning 4,
# error 3). An entry tagged error and critical gets 3.
_TOPIC_SEVERITY = (("error", 3), ("warning", 4), ("info", 6), ("debug", 7))
# Month names in any case: RFC 3164 writes "Aug", but relays and older
# devices send "AUG" and "aug" too.
_MONTH = r"(?i:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_BSD_TS = _MONTH + r" [ 0-3]?[0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
# RFC 3339 sets no limit on the fraction (RFC 5424 allows 6 digits, RouterOS
# sends 3, some relays pass on a clock's full precision).
_ISO_TS = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
# Whitespace before the PRI (a relay's stray newline, an indented test line)
# is not part of the message.
_PRI = re.compile(r"[ \t\r\n]*<([0-9]{1,3})>")
_VERSION = re.compile(r"[1-9][0-9]{0,2} ")
# A timestamp followed by a space or the end of the text.
_TIMESTAMP = re.compile(r"(" + _BSD_TS + "|" + _ISO_TS + r")(?: +|$)")
_WORD = re.compile(r"\S+")
# "CEF:<version>|"; where it may start is checked by _cef_start.
_CEF_MARK = re.compile(r"CEF:[0-9]{1,3}\|")
# A syslog TAG right before the CEF marker, glued to it as F5 sends it
# ("ASM:CEF:0|...") or followed by a space ("cef[12]: CEF:0|...", as a relay
# that adds a TAG sends it): a word, an optional [PID], a colon, at the start
# or after a space. RFC 3164 allows 32 characters; 48 is RFC 5424's APP-NAME.
_CEF_TAG = re.compile(r"(?:^| )([A-Za-z0-9_./-]{1,48})(?:\[([0-9]{1,10})\])?: ?\Z")


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").rstrip("\r\n\x00")
    kept = text.rstrip(" \t\r\n\x00")
    if "\n" in text[len(kept) :] or "\r" in text[len(kept) :]:
        # Only indentation after the last line break: padding, not message.
        text = kept
    return text


# First words classify() has seen, and whether each is a topics list: a
# router repeats a few dozen topic combinations, and the check is most of
# the cost of classifying a default-format line.
FIRST_WORDS_MAX = 1024
_FIRST_WORDS: dict[str, bool] = {}


def classify(raw: bytes) -> Format:
    """``parse(raw).format``, at a fraction of the cost (the matcher counts
    every message by format; it parses only those that raise alerts)."""
    text = _text(raw)
    pri = _PRI.match(text)
    if pri is not None and int(pri.group(1)) <= PRI_MAX:
        rest = text[pri.end() :]
        if _VERSION.match(rest) is not None:
            return "rfc5424"
        return _rfc3164_format(rest)
    # Most messages: RouterOS's default format. A text whose first word is
    # a topics list is neither CEF (_cef_start refuses it) nor a timestamp.
    words = _WORD.match(text)
    if words is not None and words.start() == 0:
        first = words.group()
        topics = _FIRST_WORDS.get(first)
        if topics is None:
            if len(_FIRST_WORDS) >= FIRST_WORDS_MAX:
                _FIRST_WORDS.clear()
            topics = _FIRST_WORDS[first] = _is_topics(first, False)
        if topics:
            return "default"
    if "CEF:" in text[: CEF_PREFIX_MAX + 4] and _cef_start(text) is not None:
        return "cef"
    if _TIMESTAMP.match(text) is not None:
        return _rfc3164_format(text)
    return "unknown"


def _rfc3164_format(rest: str) -> Format:
    """What _rfc3164(rest) decides: CEF after the timestamp, or rfc3164."""
    stamp = _TIMESTAMP.match(rest)
    if stamp is None and rest.startswith(" "):
        stamp = _TIMESTAMP.match(rest, len(rest) - len(rest.lstrip(" ")))
    if stamp is None:
        return "rfc3164"
    after = rest[stamp.end() :]
    if "CEF:" in after[: CEF_PREFIX_MAX + 4] and _cef_start(after, True) is not None:
        return "cef"
    return "rfc3164"


def parse(raw: bytes) -> ParsedFields:
    """Read the header of one message; never raises, whatever the bytes."""
    text = _text(raw)
    pri = _PRI.match(text)
    if pri is not None and int(pri.group(1)) <= PRI_MAX:
        facility, severity = divmod(int(pri.group(1)), 8)
        rest = text[pri.end() :]
        version = _VERSION.match(rest)
        if version is not None:
            return _rfc5424(rest[version.end() :], facility, severity)
        return _rfc3164(rest, facility, severity)
    cef = _cef_start(text)
    if cef is not None:
        return _cef(text, cef, None, None)
    stamp = _TIMESTAMP.match(text)
    if stamp is not None:
        # A BSD header without its PRI (some relays drop it).
        return _rfc3164(text, None, None)
    words = _WORD.match(text)
    if words is not None and words.start() == 0 and _is_topics(words.group(), False):
        topics = tuple(words.group().split(","))
        return ParsedFields(
            format="default",
            severity=_severity_from_topics(topics),
            topics=topics,
            message=text[words.end() :].lstrip(" "),
        )
    return ParsedFields(format="unknown", message=text)


def _is_topics(word: str, need_level: bool) -> bool:
    """True if word is a RouterOS topics list such as system,error,critical."""
    if TOPICS.fullmatch(word) is None:
        return False
    parts = word.split(",")
    has_level = any(p in LEVELS for p in parts)
    if need_level:
        return has_level and len(parts) > 1
    return len(parts) > 1 or has_level


def _severity_from_topics(topics: tuple[str, ...]) -> int | None:
    for name, level in _TOPIC_SEVERITY:
        if name in topics:
            return level
    return 2 if "critical" in topics else None


def _split_topics(message: str) -> tuple[tuple[str, ...], str]:
    """Topics at the start of a message (add-topics-string=yes), and the rest."""
    first = _WORD.match(message)
    if first is not None and first.start() == 0 and _is_topics(first.group(), True):
        return tuple(first.group().split(",")), message[first.end() :].lstrip(" ")
    return (), message


def _cef_start(text: str, identity_only: bool = False) -> int | None:
    """Index where a CEF header starts, if text is a CEF record.

    ``CEF:`` starts the text, follows a space, or follows a syslog TAG's colon
    (``ASM:CEF:0|``). Before it may come nothing, a timestamp and any
    identity, or (no timestamp) a few words such as another device's own date
    and host, unless the first is a RouterOS topics list: a ``default`` entry
    that quotes CEF stays a ``default`` entry. With identity_only, any
    identity.
    """
    for mark in _CEF_MARK.finditer(text, 0, CEF_PREFIX_MAX):
        start = mark.start()
        prefix = text[:start]
        if prefix and not prefix.endswith(" ") and _CEF_TAG.search(prefix) is None:
            continue  # inside a word ("xCEF:0|"): look further
        # "|" or "=" before CEF: means it sits inside some other message's text.
        if "|" in prefix or "=" in prefix:
            return None
        if identity_only or _TIMESTAMP.match(prefix):
            return start
        words = prefix.split()
        if not words:
            return start
        if len(words) > MAX_IDENTITY_WORDS or _is_topics(words[0], False):
            return None
        return start
    return None


def _rfc3164(rest: str, facility: int | None, severity: int | None) -> ParsedFields:
    stamp = _TIMESTAMP.match(rest)
    if stamp is None and rest.startswith(" "):
        # "<38> Mar  7 19:06:53 ...": not RFC 3164, but rsyslog and syslog-ng
        # read the header all the same, and so do we.
        stamp = _TIMESTAMP.match(rest, len(rest) - len(rest.lstrip(" ")))
    if stamp is None:
        # RFC 3164 4.3.3: no valid timestamp, so everything after PRI is content.
        found, content = _split_topics(rest)
        return ParsedFields(
            format="rfc3164",
            facility=facility,
            severity=severity,
            topics=found,
            message=content,
        )
    timestamp = stamp.group(1)
    after = rest[stamp.end() :]
    cef = _cef_start(after, identity_only=True)
    if cef is not None:
        return _cef(after, cef, facility, severity, timestamp)
    hostname: str | None = None
    topics: tuple[str, ...] = ()
    message = after
    words: list[re.Match[str]] = []
    for word in _WORD.finditer(after):
        if _is_topics(word.group(), True):
            # Rule 1: add-topics-string=yes marks where the identity ends.
            if words:
                hostname = after[: words[-1].end()]
            topics = tuple(word.group().split(","))
            message = after[word.end() :].lstrip(" ")
            break
        words.append(word)
        if len(words) > MAX_IDENTITY_WORDS:
            break
    if not topics and words:
        # Rule 2: the identity is the first word.
        hostname = words[0].group()
        message = after[words[0].end() :].lstrip(" ")
    return ParsedFields(
        format="rfc3164",
        facility=facility,
        severity=severity,
        timestamp=timestamp,
        hostname=hostname,
        topics=topics,
        message=message,
    )


def _nil(value: str | None) -> str | None:
    """RFC 5424 NILVALUE "-" as None."""
    return None if value in (None, "", "-") else value


def _rfc5424(rest: str, facility: int, severity: int) -> ParsedFields:
    fields: list[str | None] = []
    pos = 0
    for _ in range(5):  # TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
        end = rest.find(" ", pos)
        if end < 0:
            fields.append(rest[pos:])
            pos = len(rest)
            break
        fields.append(rest[pos:end])
        pos = end + 1
    fields += [None] * (5 - len(fields))
    timestamp, hostname, app, procid, msgid = (_nil(f) for f in fields)
    sd_end = _structured_data_end(rest, pos)
    sd = rest[pos:sd_end] if sd_end > pos else None
    message = rest[sd_end + 1 :] if rest.startswith(" ", sd_end) else rest[sd_end:]
    message = message.removeprefix("\ufeff")  # RFC 5424 6.4 BOM
    cef = _cef_start(message)
    if cef == 0:
        parsed = _cef(message, 0, facility, severity, timestamp)
        return msgspec.structs.replace(
            parsed,
            hostname=hostname or parsed.hostname,
            app=app,
            procid=procid,
            msgid=msgid,
            structured_data=_nil(sd),
        )
    topics, message = _split_topics(message)
    return ParsedFields(
        format="rfc5424",
        facility=facility,
        severity=severity,
        timestamp=timestamp,
        hostname=hostname,
        topics=topics,
        message=message,
        app=app,
        procid=procid,
        msgid=msgid,
        structured_data=_nil(sd),
    )


def _structured_data_end(text: str, pos: int) -> int:
    """Index just past RFC 5424 STRUCTURED-DATA starting at pos (pos if none)."""
    n = len(text)
    if text.startswith("-", pos):
        return pos + 1
    end = pos
    while end < n and text[end] == "[":
        i = end + 1
        quoted = False
        while i < n:
            ch = text[i]
            if ch == "\\" and quoted:
                i += 2
                continue
            if ch == '"':
                quoted = not quoted
            elif ch == "]" and not quoted:
                break
            i += 1
        if i >= n:
            return n  # unterminated: all of it is SD
        end = i + 1
    return end


def _cef(
    text: str,
    start: int,
    facility: int | None,
    severity: int | None,
    timestamp: str | None = None,
) -> ParsedFields:
    """A CEF record; text[:start] holds the timestamp, identity and TAG, if any."""
    hostname: str | None = None
    app: str | None = None
    procid: str | None = None
    prefix = text[:start]
    tag = _CEF_TAG.search(prefix)
    if tag is not None:
        app, procid = tag.group(1), tag.group(2)
        prefix = prefix[: tag.start(1)]
    prefix = prefix.strip(" ")
    if prefix:
        stamp = _TIMESTAMP.match(prefix)
        if stamp is not None and timestamp is None:
            timestamp = stamp.group(1)
            prefix = prefix[stamp.end() :]
        hostname = prefix.strip(" ") or None
    fields = cef_fields(text[start:])
    if hostname is None:
        hostname = fields.get("dvchost")
    topics = cef_topics(fields.get("name", ""), fields.get("vendor", ""))
    if severity is None:
        severity = cef_severity(fields.get("severity", ""))
    return ParsedFields(
        format="cef",
        facility=facility,
        severity=severity,
        timestamp=timestamp,
        hostname=hostname,
        topics=topics,
        message=fields.get("msg"),
        cef=fields,
        app=app,
        procid=procid,
    )
