"""What each stage counts, by name: the one table of alertik's metrics.

Stages fill these in memory and send them with their heartbeat once a second
(``common/status.py``, to ``alertik run``'s keeper); the web stage asks the
keeper and serves them at ``ALERTIK_METRICS_ADDR`` with prometheus_client.
Stages never open a socket of their own for this.

In a heartbeat a metric is a list of rows: the label values in the order of
``Metric.labels``, then the value (``[["192.0.2.1", "udp", 12]]``; an
unlabelled metric is ``[[12]]``). Counters count from the stage's start: a
restart begins again at 0, as Prometheus expects of a counter.

Label values that come from the network (router addresses) are bounded by
``Bounded``: the first ``ROUTERS_MAX`` routers get their own label, any
further one is counted under ``OTHER``, so nobody can grow the heartbeat,
the keeper or a Prometheus server by sending from many addresses. Rule and
destination names come from the configuration, formats and transports are
fixed sets.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# Routers with a label of their own. A heartbeat must fit in one datagram
# (Linux: about 200 KiB) with all of a stage's metrics: 200 routers take
# about 10 KiB per per-router metric. More routers than that in one alertik
# is beyond what it is for; they still count, as OTHER.
ROUTERS_MAX = 200
# The label of routers past ROUTERS_MAX.
OTHER = "other"

Rows = list[list[Any]]  # label values, then the value
Samples = dict[str, Rows]


class Metric(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # as Prometheus shows it (counters end in _total)
    kind: Literal["counter", "gauge"]
    labels: tuple[str, ...]
    stage: str  # who counts it ("keeper": the web stage asks alertik run)
    help: str


def _m(
    name: str,
    stage: str,
    help: str,
    labels: tuple[str, ...] = (),
    kind: Literal["counter", "gauge"] = "counter",
) -> Metric:
    return Metric(name=name, kind=kind, labels=labels, stage=stage, help=help)


# Sums over the labels count exactly what happened since the stage started.
TABLE: tuple[Metric, ...] = (
    # ingest
    _m(
        "alertik_messages_received_total",
        "ingest",
        "syslog messages received and passed on, per router and transport "
        "(routers past the first 200 are 'other')",
        ("router", "transport"),
    ),
    _m(
        "alertik_messages_refused_total",
        "ingest",
        "datagrams refused by ALERTIK_ALLOW_FROM",
    ),
    _m(
        "alertik_messages_truncated_total",
        "ingest",
        "messages cut to ALERTIK_MAX_MESSAGE_BYTES (counted as received too)",
    ),
    _m(
        "alertik_messages_dropped_total",
        "ingest",
        "messages received but not passed on: the queue to that stage was full",
        ("to",),
    ),
    # matcher
    _m(
        "alertik_messages_matched_total",
        "matcher",
        "messages the matcher tried the rules on, per header format",
        ("format",),
    ),
    _m(
        "alertik_lines_archived_total",
        "matcher",
        "lines written to the log archive: messages, and notes of what alertik did",
        ("kind",),
    ),
    _m(
        "alertik_lines_lost_total",
        "matcher",
        "archive lines that could not be written",
    ),
    _m(
        "alertik_rule_matches_total",
        "matcher",
        "messages each rule matched",
        ("rule",),
    ),
    _m(
        "alertik_alerts_raised_total",
        "matcher",
        "alerts the matcher sent to notify, per destination",
        ("destination",),
    ),
    _m(
        "alertik_alerts_held_total",
        "matcher",
        "rule-file hits not sent (yet): below a threshold, held by a cooldown "
        "or by quiet hours",
        ("reason",),
    ),
    _m(
        "alertik_router_alerts_total",
        "matcher",
        "alerts raised by each router's messages",
        ("router",),
    ),
    _m(
        "alertik_router_last_message_seconds",
        "matcher",
        "when the matcher last had a message from the router (Unix time)",
        ("router",),
        "gauge",
    ),
    _m(
        "alertik_silence_alerts_total",
        "matcher",
        "silence alerts raised (ALERTIK_SILENCE_AFTER): silent, or back",
        ("kind",),
    ),
    _m(
        "alertik_spool_pending",
        "matcher",
        "alerts waiting in the matcher's spool for notify to take them",
        kind="gauge",
    ),
    _m(
        "alertik_spool_dropped_total",
        "matcher",
        "alerts dropped from a full spool (ALERTIK_SPOOL_MAX)",
    ),
    # notify
    _m(
        "alertik_alerts_accepted_total",
        "notify",
        "alerts stored in the outbox for delivery (duplicates not counted)",
        ("destination",),
    ),
    _m(
        "alertik_alerts_delivered_total",
        "notify",
        "alerts the destination took",
        ("destination",),
    ),
    _m(
        "alertik_alerts_retried_total",
        "notify",
        "attempts that failed and will be tried again (one per alert)",
        ("destination",),
    ),
    _m(
        "alertik_alerts_failed_total",
        "notify",
        "alerts the destination refused for good",
        ("destination",),
    ),
    _m(
        "alertik_alerts_discarded_total",
        "notify",
        "alerts dropped undelivered: outbox full or too old",
        ("destination",),
    ),
    _m(
        "alertik_alerts_unrouted_total",
        "notify",
        "alerts for a destination that is not configured",
    ),
    _m(
        "alertik_outbox_pending",
        "notify",
        "alerts waiting in the outbox",
        ("destination",),
        "gauge",
    ),
    _m(
        "alertik_outbox_oldest_age_seconds",
        "notify",
        "age of the oldest alert waiting in the outbox (0: none waits)",
        ("destination",),
        "gauge",
    ),
    _m(
        "alertik_destination_state",
        "notify",
        "1 for the destination's state: ok, retrying or disabled",
        ("destination", "state"),
        "gauge",
    ),
    # forwarder
    _m(
        "alertik_messages_forwarded_total",
        "forwarder",
        "messages sent on to FORWARD_HOST",
    ),
    _m(
        "alertik_messages_forward_dropped_total",
        "forwarder",
        "messages the forwarder could not send on (no address, buffer full)",
    ),
    # every stage
    _m(
        "alertik_malformed_messages_total",
        "any",
        "messages between stages that could not be decoded",
        ("stage",),
    ),
    # the keeper (alertik run), asked by the web stage
    _m(
        "alertik_stage_up",
        "keeper",
        "1 while the stage runs and answers (heartbeat under 5 s old)",
        ("stage",),
        "gauge",
    ),
    _m(
        "alertik_stage_restarts_total",
        "keeper",
        "times supervisord started the stage again after the first",
        ("stage",),
    ),
    _m(
        "alertik_stage_heartbeat_age_seconds",
        "keeper",
        "seconds since the stage's last heartbeat",
        ("stage",),
        "gauge",
    ),
)
BY_NAME = {m.name: m for m in TABLE}


class Bounded:
    """Label values from the network: the first ``cap`` seen, then OTHER."""

    def __init__(self, cap: int = ROUTERS_MAX) -> None:
        self.cap = cap
        self.known: set[str] = set()

    def label(self, value: str) -> str:
        if value in self.known:
            return value
        if len(self.known) < self.cap:
            self.known.add(value)
            return value
        return OTHER


def rows(counts: dict[str, int] | dict[str, float]) -> Rows:
    """One-label rows from {label: value}."""
    return [[label, value] for label, value in counts.items()]


def rows2(counts: dict[tuple[str, str], int]) -> Rows:
    """Two-label rows from {(label, label): value}."""
    return [[a, b, value] for (a, b), value in counts.items()]
