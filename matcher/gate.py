"""What happens after a file rule matched: thresholds, cooldowns, quiet hours.

The ``Gate`` turns hits (``rulefile.Hit``) into releases, the alerts to send
now, and keeps what it must remember in between:

* **threshold** ``{count, window, key}``: hits are counted per key (a mask such
  as ``@2`` or ``@{router}``); the hit that makes ``count`` within ``window``
  is released, with ``@{count}``, and the count starts again.
* **cooldown**: after a release, further hits with the same key are held and
  counted; when the cooldown ends, one summary says how many there were and
  repeats the last one. Nothing is dropped without a word.
* **quiet hours** ``{from, to, except_severity}``: releases (summaries too)
  made during the hours are held, unless the line's severity is
  ``except_severity`` or worse; when the hours end, one digest per rule
  carries them all.

Counters are per (rule identity, key): a rule that is edited keeps them as
long as its name, pattern, excludes, conditions and threshold key stay the
same (``FileRule.identity``). At most ``max_keys`` keys are kept, all rules
together; past that the least recently hit key goes (counted in
``evicted``), and if it held hits its summary goes out at once.

Time: a hit counts at its receive time (``SyslogEvent.received``); cooldown
and quiet-hours ends are timers checked against ``clock`` (the wall clock;
tests pass their own), in local time for quiet hours. ``next_due()`` says
when ``due()`` next has work: the matcher's ``wait_ms()``.

A ``store`` (``rulestate.RuleStore``) keeps keys and held alerts across a
restart: ``flush()`` writes what changed since the last flush.
"""

from __future__ import annotations

import datetime
import heapq
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import msgspec

from alertik.common.schema import ParsedFields, SyslogEvent
from alertik.matcher.rulefile import FileRule, Hit
from alertik.matcher.rules import time_suffix

log = logging.getLogger(__name__)

# Quiet hours keep at most this many alerts per rule for the digest; past
# that they are only counted (the digest says how many more there were).
QUIET_KEEP = 1000
# A digest lists at most this many alerts; the rest are counted in its last line.
DIGEST_LINES = 50


class Release(msgspec.Struct, frozen=True, kw_only=True):
    """An alert to send to each of notifiers (one Alert each)."""

    id: str  # unique and stable: notify keeps each (id, destination) once
    rule: str
    notifiers: tuple[str, ...]
    text: str  # the final text, time suffix included
    received: float
    sender: str
    node: str
    severity: int | None = None
    fields: ParsedFields | None = None
    # For each action among notifiers (a RouterOS address list): the address
    # its mask gave (Alert.address).
    addresses: dict[str, str] = {}


class Saved(msgspec.Struct, frozen=True, kw_only=True):
    """A key's state as the store keeps it."""

    hits: list[float] = []
    since: float = 0.0  # the start of its cooldown (0: none)
    held: int = 0  # hits held by the cooldown
    last: Release | None = None  # the last one held, for the summary
    touched: float = 0.0  # the last hit, for eviction order


class Store(Protocol):
    """Where the gate's state outlives the process (rulestate.RuleStore)."""

    def load(
        self,
    ) -> tuple[list[tuple[str, str, Saved]], list[tuple[str, Release]]]: ...

    def save(
        self,
        keys: dict[tuple[str, str], Saved | None],
        held: list[tuple[str, Release]],
        cleared: Iterable[str],
    ) -> None: ...


class _Key:
    __slots__ = ("held", "hits", "last", "since", "touched")

    def __init__(self) -> None:
        self.hits: deque[float] = deque()
        self.since = 0.0
        self.held = 0
        self.last: Release | None = None
        self.touched = 0.0

    def empty(self) -> bool:
        return not self.hits and not self.since

    def saved(self) -> Saved:
        return Saved(
            hits=list(self.hits),
            since=self.since,
            held=self.held,
            last=self.last,
            touched=self.touched,
        )

    @classmethod
    def of(cls, saved: Saved) -> _Key:
        k = cls()
        k.hits.extend(saved.hits)
        k.since, k.held, k.last, k.touched = (
            saved.since,
            saved.held,
            saved.last,
            saved.touched,
        )
        return k


Clock = Callable[[], float]
Notes = list[str] | None


class Gate:
    """Thresholds, cooldowns and quiet hours of the file rules (see above)."""

    def __init__(
        self,
        rules: Sequence[FileRule],
        *,
        suffix: str,
        max_keys: int,
        clock: Clock = time.time,
        store: Store | None = None,
    ) -> None:
        self.suffix = suffix  # ALERTIK_TIME_SUFFIX
        self.max_keys = max_keys
        self.clock = clock
        self.store = store
        self.rules: dict[str, FileRule] = {}
        self._gone: dict[str, FileRule] = {}
        self.keys: OrderedDict[tuple[str, str], _Key] = OrderedDict()
        self.quiet: dict[str, list[Release]] = {}  # rule identity -> held
        self.quiet_extra: dict[str, int] = {}  # held past QUIET_KEEP
        # (due, order, kind, rule identity, key, start of the cooldown)
        self._timers: list[tuple[float, int, str, str, str, float]] = []
        self._seq = 0
        self._dirty: dict[tuple[str, str], Saved | None] = {}
        self._held_new: list[tuple[str, Release]] = []
        self._cleared: set[str] = set()
        # Totals for the stage's counters.
        self.held_total = 0  # hits held by cooldowns
        self.below_threshold = 0  # hits counted towards a threshold not reached
        self.quiet_holds = 0  # releases held by quiet hours (for the metrics)
        self.summaries = 0
        self.digests = 0
        self.evicted = 0
        self._bind(rules)

    # --- the rules in use ----------------------------------------------------

    def _bind(self, rules: Sequence[FileRule]) -> None:
        self.rules = {r.identity: r for r in rules if r.stateful or r.quiet}

    def restore(self) -> list[Release]:
        """Take the stored state in; what belongs to rules gone goes out now."""
        if self.store is None:
            return []
        keys, held = self.store.load()
        for rid, key, saved in sorted(keys, key=lambda k: k[2].touched):
            self.keys[(rid, key)] = _Key.of(saved)
        for rid, release in held:
            self.quiet.setdefault(rid, []).append(release)
        if keys or held:
            log.info(
                "rule state from before the restart: %d counters, %d alerts held "
                "by quiet hours",
                len(keys),
                len(held),
            )
        return self._settle(self.clock())

    def rebind(self, rules: Sequence[FileRule]) -> list[Release]:
        """Use rules from now on (a reload); state carries over by identity.

        Counters of rules that are gone or changed identity go, their held
        hits as a summary now; alerts held by quiet hours go as a digest now
        when their rule is gone or has no quiet hours any more.
        """
        self._gone = self.rules
        self._bind(rules)
        try:
            return self._settle(self.clock())
        finally:
            self._gone = {}

    def _settle(self, now: float) -> list[Release]:
        out: list[Release] = []
        for (rid, key), k in list(self.keys.items()):
            rule = self.rules.get(rid)
            if rule is None or not rule.stateful:
                out += self._drop(rid, key, k, now, "its rule changed")
                continue
            if k.since and not rule.cooldown:
                out += self._end_cooldown(rule, rid, key, k, now)
        for rid in list(self.quiet):
            rule = self.rules.get(rid)
            if rule is None or rule.quiet is None:
                out += self._digest(rid, now)
        self._rebuild_timers()
        return out

    def _rebuild_timers(self) -> None:
        self._timers = []
        for (rid, key), k in self.keys.items():
            rule = self.rules.get(rid)
            if k.since and rule is not None:
                self._push(k.since + rule.cooldown, "cooldown", rid, key, k.since)
        for rid, held in self.quiet.items():
            rule = self.rules.get(rid)
            if held and rule is not None and rule.quiet is not None:
                self._push(quiet_end(rule, held[-1].received), "quiet", rid, "")

    # --- hits ---------------------------------------------------------

    def offer(self, hit: Hit, event: SyslogEvent, notes: Notes = None) -> list[Release]:
        """What to send for one hit: nothing (counted or held), or releases."""
        rule = hit.rule
        at = event.received
        if not rule.stateful:
            return self._quiet(rule, self._release(hit, event, 1), at, notes)
        rid = rule.identity
        slot = (rid, hit.key)
        out: list[Release] = []
        k = self.keys.get(slot)
        if k is None:
            k = self.keys[slot] = _Key()
            out += self._evict()
        else:
            self.keys.move_to_end(slot)
        k.touched = at
        if k.since and at >= k.since + rule.cooldown:
            out += self._end_cooldown(rule, rid, hit.key, k, at)
            k = self.keys.setdefault(slot, k)
        if k.since:
            k.held += 1
            k.last = self._release(hit, event, 1)
            self.held_total += 1
            self._dirty[slot] = k.saved()
            if notes is not None:
                notes.append(
                    f"held by the cooldown until {_clock(k.since + rule.cooldown)} "
                    f"({k.held} held{_for(hit.key)})"
                )
            return out
        count = 1
        if rule.count > 1:
            hits = k.hits
            hits.append(at)
            while hits and hits[0] <= at - rule.window:
                hits.popleft()
            if len(hits) < rule.count:
                self.below_threshold += 1
                self._dirty[slot] = k.saved()
                if notes is not None:
                    notes.append(
                        f"threshold {len(hits)}/{rule.count} within "
                        f"{rule.spec.threshold.window if rule.spec.threshold else ''}"
                        f"{_for(hit.key)}"
                    )
                return out
            count = len(hits)
            hits.clear()
            if notes is not None:
                notes.append(f"threshold reached: {count}/{rule.count}{_for(hit.key)}")
        if rule.cooldown:
            k.since = at
            k.held = 0
            k.last = None
            self._push(at + rule.cooldown, "cooldown", rid, hit.key, at)
            if notes is not None:
                notes.append(
                    f"cooldown until {_clock(at + rule.cooldown)}: further hits"
                    f"{_for(hit.key)} are held"
                )
        if k.empty():
            del self.keys[slot]
            self._dirty[slot] = None
        else:
            self._dirty[slot] = k.saved()
        return out + self._quiet(rule, self._release(hit, event, count), at, notes)

    def _release(self, hit: Hit, event: SyslogEvent, count: int) -> Release:
        return release(hit, event, count, self.suffix)

    def _evict(self) -> list[Release]:
        out: list[Release] = []
        while len(self.keys) > self.max_keys:
            (rid, key), k = self.keys.popitem(last=False)
            self._dirty[(rid, key)] = None
            self.evicted += 1
            if self.evicted == 1 or self.evicted % 1000 == 0:
                log.warning(
                    "rule counters: more than ALERTIK_RULE_KEYS_MAX=%d keys; the "
                    "least recently hit ones go (%d so far)",
                    self.max_keys,
                    self.evicted,
                )
            out += self._summary(
                rid, key, k, self.clock(), "early: its counter had to make room"
            )
        return out

    # --- timers ---------------------------------------------------------

    def _push(
        self, due: float, kind: str, rid: str, key: str, since: float = 0.0
    ) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, rid, key, since))

    def next_due(self) -> float | None:
        """When due() next has something to do (wall-clock seconds), or None."""
        return self._timers[0][0] if self._timers else None

    def due(self, now: float | None = None) -> list[Release]:
        """Cooldowns and quiet hours that ended by now: their summaries, digests."""
        now = self.clock() if now is None else now
        out: list[Release] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, rid, key, since = heapq.heappop(timers)
            rule = self.rules.get(rid)
            if rule is None:
                continue
            if kind == "cooldown":
                k = self.keys.get((rid, key))
                if k is None or k.since != since:
                    continue  # ended already (or evicted)
                end = k.since + rule.cooldown
                if end > now:
                    # A reload made it longer.
                    self._push(end, "cooldown", rid, key, since)
                    continue
                out += self._end_cooldown(rule, rid, key, k, now)
            elif rid in self.quiet and rule.quiet is not None:
                if rule.quiet.active(_minute(now)):
                    self._push(quiet_end(rule, now), "quiet", rid, "")
                    continue
                out += self._digest(rid, now)
        return out

    def _end_cooldown(
        self, rule: FileRule, rid: str, key: str, k: _Key, now: float
    ) -> list[Release]:
        summary = self._summary(rid, key, k, now, "")
        k.since, k.held, k.last = 0.0, 0, None
        if k.empty():
            self.keys.pop((rid, key), None)
            self._dirty[(rid, key)] = None
        else:
            self._dirty[(rid, key)] = k.saved()
        out: list[Release] = []
        for release in summary:
            out += self._quiet(rule, release, now, None)
        return out

    def _drop(self, rid: str, key: str, k: _Key, now: float, why: str) -> list[Release]:
        self.keys.pop((rid, key), None)
        self._dirty[(rid, key)] = None
        return self._summary(rid, key, k, now, f"early: {why}")

    def _summary(
        self, rid: str, key: str, k: _Key, now: float, early: str
    ) -> list[Release]:
        """The summary of the hits a cooldown held (none if it held none)."""
        last = k.last
        rule = self.rules.get(rid)
        # A summary is a message: actions do not get it.
        notifiers = (
            rule.messages if rule is not None else _messages(last) if last else ()
        )
        if not k.held or last is None or not notifiers:
            return []
        wording = rule or self._gone.get(rid)  # a rule a reload just replaced
        cooldown = wording.spec.cooldown if wording is not None else None
        during = f" during the {cooldown} cooldown" if cooldown else ""
        more = f"{k.held} more hit{'' if k.held == 1 else 's'}"
        note = f" ({early})" if early else ""
        self.summaries += 1
        return [
            Release(
                id=f"{last.node}/summary/{last.rule}/{key}/{k.since:.6f}",
                rule=last.rule,
                notifiers=notifiers,
                text=f"{last.rule}: {more}{_for(key)}{during}{note}; the last: "
                f"{last.text}",
                received=last.received,
                sender=last.sender,
                node=last.node,
                severity=last.severity,
                fields=last.fields,
            )
        ]

    # --- quiet hours ---------------------------------------------------------

    def _quiet(
        self, rule: FileRule, release: Release, at: float, notes: Notes
    ) -> list[Release]:
        q = rule.quiet
        if q is None or not q.active(_minute(at)):
            return [release]
        if q.breaks_through(release.severity):
            if notes is not None:
                notes.append(f"quiet hours {q.shown}, but its severity breaks through")
            return [release]
        out: list[Release] = []
        if release.addresses:
            # Actions are not held: a router is not woken, it acts.
            out.append(
                msgspec.structs.replace(release, notifiers=tuple(release.addresses))
            )
            release = msgspec.structs.replace(
                release, notifiers=_messages(release), addresses={}
            )
            if not release.notifiers:
                return out
        rid = rule.identity
        self.quiet_holds += 1
        held = self.quiet.setdefault(rid, [])
        if not held:
            self._push(quiet_end(rule, at), "quiet", rid, "")
        if len(held) < QUIET_KEEP:
            held.append(release)
            self._held_new.append((rid, release))
        else:
            self.quiet_extra[rid] = self.quiet_extra.get(rid, 0) + 1
        if notes is not None:
            notes.append(
                f"held by quiet hours {q.shown} until {_clock(quiet_end(rule, at))} "
                f"({len(held) + self.quiet_extra.get(rid, 0)} held)"
            )
        return out

    def _digest(self, rid: str, now: float) -> list[Release]:
        held = self.quiet.pop(rid, [])
        extra = self.quiet_extra.pop(rid, 0)
        self._cleared.add(rid)
        self._held_new = [(r, x) for r, x in self._held_new if r != rid]
        if not held:
            return []
        rule = self.rules.get(rid)
        last = held[-1]
        total = len(held) + extra
        shown = rule.quiet.shown if rule is not None and rule.quiet else ""
        lines = [
            f"{last.rule}: {total} alert{'' if total == 1 else 's'} held during "
            f"quiet hours{' ' + shown if shown else ''}:"
        ]
        lines += [f"- {r.text}" for r in held[:DIGEST_LINES]]
        if total > DIGEST_LINES:
            lines.append(f"- ... and {total - DIGEST_LINES} more")
        notifiers: list[str] = []
        for r in held:
            notifiers += [n for n in r.notifiers if n not in notifiers]
        self.digests += 1
        return [
            Release(
                id=f"{last.node}/quiet/{last.rule}/{held[0].received:.6f}",
                rule=last.rule,
                notifiers=rule.messages if rule is not None else tuple(notifiers),
                text="\n".join(lines),
                received=last.received,
                sender=last.sender,
                node=last.node,
                severity=min(
                    (r.severity for r in held if r.severity is not None), default=None
                ),
            )
        ]

    # --- counting and storing ------------------------------------------------

    @property
    def quiet_held(self) -> int:
        return sum(len(h) for h in self.quiet.values()) + sum(self.quiet_extra.values())

    def flush(self) -> None:
        """Write what changed since the last flush to the store."""
        if self.store is None:
            self._dirty.clear()
            self._held_new.clear()
            self._cleared.clear()
            return
        if not (self._dirty or self._held_new or self._cleared):
            return
        self.store.save(self._dirty, self._held_new, self._cleared)
        self._dirty = {}
        self._held_new = []
        self._cleared = set()


def release(hit: Hit, event: SyslogEvent, count: int, suffix: str) -> Release:
    """The release of one hit that counted count hits; suffix: the time format."""
    record = hit.record
    return Release(
        # node, pid and seq alone repeat after a container restart (same pids,
        # seq from 1): the receive time makes the id unique.
        id=f"{event.node}/{event.pid}/{event.seq}/{event.received:.6f}/{hit.rule.name}",
        rule=hit.rule.name,
        notifiers=hit.rule.notifiers,
        text=hit.text(count) + time_suffix(suffix, event.received),
        received=event.received,
        sender=event.sender,
        node=event.node,
        severity=record.parsed.severity,
        fields=record.parsed,
        addresses={
            name: hit.rule.expand(mask, hit, count)
            for name, mask in hit.rule.addresses.items()
        },
    )


def _messages(release: Release) -> tuple[str, ...]:
    """The destinations of release that take messages (not actions)."""
    return tuple(n for n in release.notifiers if n not in release.addresses)


def _minute(t: float) -> int:
    lt = time.localtime(t)
    return lt.tm_hour * 60 + lt.tm_min


def quiet_end(rule: FileRule, t: float) -> float:
    """The next end of rule's quiet hours after t (local time), in seconds."""
    assert rule.quiet is not None
    now = datetime.datetime.fromtimestamp(t)
    end = now.replace(
        hour=rule.quiet.end // 60, minute=rule.quiet.end % 60, second=0, microsecond=0
    )
    if end <= now:
        end += datetime.timedelta(days=1)
    return end.timestamp()


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _for(key: str) -> str:
    return f" for {key}" if key else ""
