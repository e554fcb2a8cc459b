"""Wire messages between stages: msgspec Structs, msgpack on the wire.

Rules for changing them: add fields only with defaults, never retype one, so
that stages of two versions can talk during an upgrade of a split set-up.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class SyslogEvent(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """One syslog message as ingest received it."""

    raw: bytes  # the datagram (or TCP frame) exactly as received
    received: float  # wall-clock time of receipt, seconds since the epoch
    sender: str  # address of the host that sent it (the router)
    sender_port: int
    node: str  # name of the ingest node that received it
    seq: int  # per-ingest-process counter; (node, pid, seq) is unique
    pid: int = 0
    transport: str = "udp"
    truncated: bool = False  # cut to ALERTIK_MAX_MESSAGE_BYTES


Format = Literal["default", "rfc3164", "rfc5424", "cef", "unknown"]


class ParsedFields(msgspec.Struct, frozen=True, kw_only=True):
    """What the header of one message says; None where it says nothing."""

    format: Format = "unknown"
    facility: int | None = None
    severity: int | None = None
    timestamp: str | None = None  # as written in the header, not converted
    hostname: str | None = None  # RouterOS identity, or the RFC 5424 HOSTNAME
    topics: tuple[str, ...] = ()
    message: str | None = None
    # CEF header fields (cef, vendor, product, version, class_id, name,
    # severity) and the extension's key=value pairs, unescaped.
    cef: dict[str, str] | None = None
    app: str | None = None  # RFC 5424 APP-NAME
    procid: str | None = None  # RFC 5424 PROCID
    msgid: str | None = None  # RFC 5424 MSGID
    structured_data: str | None = None  # RFC 5424 STRUCTURED-DATA, as sent


class Alert(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A notification the matcher asks notify to deliver."""

    id: str  # unique per (event, rule); notify's outbox key
    notifier: str  # Telegram, Slack, Teams, Discord, Generic1..4
    text: str  # the final text, suffix included
    rule: str  # EVENTn or STATIC_EVENTn
    received: float
    sender: str
    node: str
    # What the message's header says (format, severity, identity, CEF
    # fields...), parsed by the matcher for the alerts it raises.
    fields: ParsedFields | None = None
    # For an action's destination (routeros-address-list): its `address`
    # mask, expanded by the matcher (the address to act on); "" otherwise.
    address: str = ""


class Delivery(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """What became of one alert at one destination (published on notify's tap)."""

    id: str
    notifier: str
    # delivered, retrying, failed (permanent), discarded (outbox full),
    # skipped (an action that chose not to act: allow-listed, audit mode)
    outcome: str
    attempts: int
    status: int | None = None  # HTTP status, when there was an answer
    detail: str = ""  # never contains a URL or a token


Message = SyslogEvent | Alert | Delivery

ENCODER = msgspec.msgpack.Encoder()
EVENT_DECODER = msgspec.msgpack.Decoder(SyslogEvent)
ALERT_DECODER = msgspec.msgpack.Decoder(Alert)
MESSAGE_DECODER = msgspec.msgpack.Decoder(Message)
# Taps print what a stage emits as JSON lines.
JSON_ENCODER = msgspec.json.Encoder()
