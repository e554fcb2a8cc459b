"""From a matched event to the alerts it raises: pure, no sockets.

``alertik test`` uses the same functions as the matcher stage, so what it
prints is what the stage sends.
"""

from __future__ import annotations

from alertik.common.config import DEFAULT_TIME_SUFFIX, Config
from alertik.common.schema import Alert, SyslogEvent
from alertik.matcher.formats import parse
from alertik.matcher.rules import Match, RuleSet, time_suffix
from alertik.matcher.static import STATIC_TIME_SUFFIX


def alert_text(cfg: Config, match: Match, received: float) -> str:
    """The notification text: the expanded mask and the time suffix."""
    fmt = cfg.time_suffix
    if match.static and fmt == DEFAULT_TIME_SUFFIX:
        fmt = STATIC_TIME_SUFFIX
    return match.body + time_suffix(fmt, received)


def build_alerts(cfg: Config, rules: RuleSet, event: SyslogEvent) -> list[Alert]:
    """Every alert one event raises, in rule order."""
    matches = rules.match(event.raw, {"sender": event.sender, "node": event.node})
    if not matches:
        return []
    # Header fields only for the few messages that raise alerts: parsing
    # every message would cost the matcher a third of its throughput.
    fields = parse(event.raw)
    return [
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
