"""From a matched event to the alerts it raises: no sockets.

``alertik test`` uses the same functions as the matcher stage, so what it
prints is what the stage sends. Environment rules (``EVENTn_*``) raise one
alert per match, worded as alertik words it; a file rule's hit goes through
the ``Gate`` (threshold, cooldown, quiet hours) and raises one alert per
destination of each release. A silence notice (``silence.py``) raises one
alert per destination it names.
"""

from __future__ import annotations

from collections.abc import Iterable

from alertik.common.config import DEFAULT_TIME_SUFFIX, Config
from alertik.common.schema import Alert, SyslogEvent
from alertik.matcher.gate import Gate, Notes, Release, release
from alertik.matcher.rulefile import Record
from alertik.matcher.rules import Match, RuleSet, time_suffix
from alertik.matcher.silence import Notice
from alertik.matcher.static import STATIC_TIME_SUFFIX

# The rule name of silence alerts (in the outbox, the archive, the tap).
SILENCE_RULE = "SILENCE"


def alert_text(cfg: Config, match: Match, received: float) -> str:
    """The notification text: the expanded mask and the time suffix."""
    fmt = cfg.time_suffix
    if match.static and fmt == DEFAULT_TIME_SUFFIX:
        fmt = STATIC_TIME_SUFFIX
    return match.body + time_suffix(fmt, received)


def build_alerts(
    cfg: Config,
    rules: RuleSet,
    event: SyslogEvent,
    gate: Gate | None = None,
    notes: dict[str, Notes] | None = None,
    matched: dict[str, int] | None = None,
) -> list[Alert]:
    """Every alert one event raises, in rule order.

    Without a gate, each file rule hit is released at once (no threshold,
    cooldown or quiet hours); notes, if given, gets each file rule's notes
    (threshold progress, what held it) by rule name; matched, if given,
    counts each rule that matched.
    """
    record = Record(event.raw, event.sender, event.node)
    matches, hits = rules.scan(record)
    if not matches and not hits:
        return []
    if matched is not None:  # the matches per rule, held or not
        for name in [m.rule for m in matches] + [h.rule.name for h in hits]:
            matched[name] = matched.get(name, 0) + 1
    # Header fields only for the few messages that raise alerts: parsing
    # every message would cost the matcher a third of its throughput.
    fields = record.parsed
    alerts = [
        Alert(
            # node, pid and seq alone repeat after a container restart (same
            # pids, seq from 1) and notify would take new alerts for ones it
            # has seen: the receive time makes the id unique across restarts.
            id=f"{event.node}/{event.pid}/{event.seq}/{event.received:.6f}/{m.rule}",
            notifier=m.notifier,
            text=alert_text(cfg, m, event.received),
            rule=m.rule,
            received=event.received,
            sender=event.sender,
            node=event.node,
            fields=fields,
        )
        for m in matches
    ]
    for hit in hits:
        if gate is None:
            alerts += release_alerts([release(hit, event, 1, cfg.time_suffix)])
            continue
        found: Notes = [] if notes is not None else None
        alerts += release_alerts(gate.offer(hit, event, found))
        if notes is not None:
            notes[hit.rule.name] = found
    return alerts


def release_alerts(releases: Iterable[Release]) -> list[Alert]:
    """One Alert per destination of each release."""
    return [
        Alert(
            id=r.id,
            notifier=notifier,
            text=r.text,
            rule=r.rule,
            received=r.received,
            sender=r.sender,
            node=r.node,
            fields=r.fields,
            address=r.addresses.get(notifier, ""),
        )
        for r in releases
        for notifier in r.notifiers
    ]


def silence_alerts(
    cfg: Config, notice: Notice, targets: Iterable[str], now: float
) -> list[Alert]:
    """One Alert per destination of a silence notice."""
    node = cfg.ingest.node_name
    return [
        Alert(
            id=f"{node}/silence/{notice.router or '*'}/{notice.kind}/"
            f"{now:.6f}/{notifier}",
            notifier=notifier,
            text=notice.text + time_suffix(cfg.time_suffix, now),
            rule=SILENCE_RULE,
            received=now,
            sender=notice.router,
            node=node,
        )
        for notifier in targets
    ]
