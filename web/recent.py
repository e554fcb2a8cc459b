"""The last alerts and what became of them, from the matcher's and notify's
taps. Pure: the stage hands it each message it read.

A tap drops what a slow reader cannot take and shows only what passes after
the reader connected, so this is a view of the recent past, not a record:
the outbox and the archive are the record.
"""

from __future__ import annotations

from collections import deque

import msgspec

from alertik.common.schema import Alert, Delivery

# Alerts shown on the page.
KEEP = 20


class Shown(msgspec.Struct, kw_only=True):
    received: float
    rule: str
    router: str
    destination: str
    text: str
    outcome: str = "queued"  # then delivered, retrying, failed, discarded
    attempts: int = 0
    id: str = ""


class Recent:
    def __init__(self, keep: int = KEEP) -> None:
        self.alerts: deque[Shown] = deque(maxlen=keep)

    def alert(self, alert: Alert) -> None:
        self.alerts.append(
            Shown(
                received=alert.received,
                rule=alert.rule,
                router=alert.sender,
                destination=alert.notifier,
                text=alert.text,
                id=alert.id,
            )
        )

    def delivery(self, delivery: Delivery) -> None:
        for shown in self.alerts:
            if shown.id == delivery.id and shown.destination == delivery.notifier:
                shown.outcome = delivery.outcome
                shown.attempts = delivery.attempts

    def newest_first(self) -> list[Shown]:
        return list(reversed(self.alerts))
