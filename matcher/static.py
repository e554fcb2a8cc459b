"""Static events: alerts that need a little code, not just a mask.

alertik had one, number 0 (Wi-Fi login attempts); ours keeps its number and
its wording. To add one: write a function that takes the raw message and
returns the notification text (without the time suffix) or None, and append a
``StaticEvent`` to ``EVENTS``; its index is its number in STATIC_EVENTS_ENABLED
(and bump ``STATIC_EVENT_COUNT`` in common/events.py). Example::

    def admin_login(raw: bytes) -> str | None:
        if b"user admin logged in" not in raw:
            return None
        return "admin logged in: " + raw.decode("utf-8", "replace")

    EVENTS.append(StaticEvent(1, admin_login))
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# alertik cuts the MAC and the interface name at 32 bytes.
FIELD_MAX = 32
# alertik's suffix for static events: no space after "at:".
STATIC_TIME_SUFFIX = ", at:%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class StaticEvent:
    """A numbered static event: handle(raw) gives the text, or None."""

    index: int
    handle: Callable[[bytes], str | None]

    @property
    def name(self) -> str:
        return f"STATIC_EVENT{self.index}"


def wifi_login_attempt(raw: bytes) -> str | None:
    """Static event 0: a device failed the Wi-Fi handshake (a wrong password)."""
    if b"unicast key exchange timeout" not in raw:
        return None
    # The MAC is the word before the first '@'; the interface runs from the
    # '@' to the next ':' ("... 36:7F:7F:07:C4:B0@honeypot: disconnected, ...").
    at = raw.find(b"@")
    space = raw.rfind(b" ", 0, at) if at > 0 else -1
    if at < 0 or space <= 0:
        log.info("wifi login attempt: no MAC@interface in the message, ignored")
        return None
    colon = raw.find(b":", at + 1)
    if colon < 0:
        log.info("wifi login attempt: no interface name in the message, ignored")
        return None
    mac = raw[space + 1 : at][:FIELD_MAX].decode("utf-8", "replace")
    iface = raw[at + 1 : colon][:FIELD_MAX].decode("utf-8", "replace")
    return (
        f"There is someone trying to connect to your WiFi: {iface}, "
        f"with the mac-address: {mac}"
    )


EVENTS: list[StaticEvent] = [StaticEvent(0, wifi_login_attempt)]
