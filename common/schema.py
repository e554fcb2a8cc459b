"""Wire messages between stages: msgspec Structs, msgpack on the wire.

Rules for changing them: add fields only with defaults, never retype one, so
that stages of two versions can talk during an upgrade of a split set-up.
"""

from __future__ import annotations

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


class Alert(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A notification the matcher asks notify to deliver."""

    id: str  # unique per (event, rule); notify's outbox key
    notifier: str  # Telegram, Slack, Teams, Discord, Generic1..4
    text: str  # the final text, suffix included
    rule: str  # EVENTn or STATIC_EVENTn
    received: float
    sender: str
    node: str


class Delivery(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """What became of one alert at one destination (published on notify's tap)."""

    id: str
    notifier: str
    outcome: str  # delivered, retrying, failed (permanent), discarded (outbox full)
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
