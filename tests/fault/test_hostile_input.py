"""Hostile input: random bytes, NULs, 64 KB datagrams, invalid UTF-8, syslog-
looking garbage, and regexes written to backtrack catastrophically.

Matching stays bounded because every rule runs on RE2 (matcher/musl/):
no backtracking, time linear in the message's length whatever the pattern,
and a message is at most ALERTIK_MAX_MESSAGE_BYTES (64 KiB) long. The tests
below hold the matcher to that with the classic exponential patterns.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from alertik.common.config import Rule
from alertik.common.schema import ALERT_DECODER, Alert
from alertik.matcher.rules import RuleSet
from tests.support import (
    Proc,
    base_env,
    endpoint_of,
    events_env,
    send_udp,
    udp_port_of,
)

pytestmark = pytest.mark.fault

# The largest UDP payload over IPv4.
UDP_MAX = 65507
# Regexes that take exponential time in a backtracking engine on the line
# beside them (which they do not match, or match only after a long scan).
CATASTROPHIC = [
    (r"(a+)+$", b"a" * (UDP_MAX - 1) + b"!"),
    (r"(x+x+)+y", b"x" * UDP_MAX),
    (r"(a|aa)*b", b"a" * UDP_MAX),
    (r"^(([a-z])+.)+[A-Z]([a-z])+$", b"ab" * (UDP_MAX // 2) + b"!"),
    (r"(.*a){12}", b"a" * UDP_MAX),
    (r"(a*)*b", b"a" * UDP_MAX),
    # Not a backtracking bomb but a DFA one: RE2's set scan must remember the
    # last 100 positions of 'a'; its state cache thrashes, still linear.
    (r"(a).{100}b", bytes(random.Random(1).choice(b"ab") for _ in range(UDP_MAX))),
]
FIELDS = {"sender": "192.0.2.1", "node": "edge1"}
# Generous for a slow CI machine: RE2 needs milliseconds; a backtracking
# engine would need longer than the age of the universe.
SECONDS_PER_64KB = 2.0


def catastrophic_rules(extra: int = 0) -> list[Rule]:
    rules = [
        Rule(
            index=i,
            notifier="Generic1",
            match_type="regex",
            match_str=pattern,
            mask="@1",
        )
        for i, (pattern, _) in enumerate(CATASTROPHIC)
    ]
    for i in range(len(rules), len(rules) + extra):
        rules.append(
            Rule(
                index=i,
                notifier="Generic1",
                match_type="substr",
                match_str=f"needle {i}",
                mask="x",
            )
        )
    return rules


@pytest.mark.parametrize("extra", [0, 20], ids=["one-by-one", "prefiltered"])
def test_catastrophic_regexes_take_bounded_time_on_crafted_64kb_lines(
    extra: int,
) -> None:
    rules = catastrophic_rules(extra)
    for i, (pattern, line) in enumerate(CATASTROPHIC):
        alone = RuleSet([rules[i]], [])
        every = RuleSet(rules, [])
        for rs in (alone, every):
            started = time.perf_counter()
            rs.match(line, FIELDS)
            took = time.perf_counter() - started
            assert took < SECONDS_PER_64KB, f"{pattern} took {took:.2f}s"


def receive_until(
    sock: zmq.Socket[bytes], done: Callable[[Alert], bool], timeout: float
) -> list[Alert]:
    """Alerts until one satisfies done (included); fail after timeout seconds."""
    alerts: list[Alert] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0 and sock.poll(int(left * 1000)), (
            f"no final alert after {timeout}s ({len(alerts)} alerts)"
        )
        alerts.append(ALERT_DECODER.decode(sock.recv()))
        if done(alerts[-1]):
            return alerts


def hostile_datagrams() -> list[bytes]:
    """Junk of every kind; those with MARK must raise the MARK alert."""
    rng = random.Random(8)
    junk = [rng.randbytes(rng.randrange(0, 1500)) for _ in range(150)]
    junk += [
        b"",
        b"\x00",
        b"\x00" * 1000,
        b"\x00 before MARK after a NUL",
        b"MARK\x00" * 100,
        b"\xff\xfe\xfd MARK invalid UTF-8",
        b"\xc0\xaf overlong \xe0\x80\xaf MARK",
        b"\xed\xa0\x80 an encoded surrogate, \x80 a lone continuation, \xe2\x82",
        b"two\nlines\r\nand a trailing newline MARK\n",
        b"\r\n\r\n",
        b"<999>Oct 99 99:99:99 MARK",
        b"<>",
        b"<1",
        b"<13>1 - - - - - -",
        b"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [exampleSDID@32473 "
        b'iut="3" eventSource="Appl MARK',
        b"<34>1 \xff\xfe invalid\x00header - - [a=] MARK",
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on "
        b"/dev/pts/8 MARK",
        b"<0>" + b"[" * 5000 + b"MARK",
        b"CEF:0|Vendor|" + b"|" * 3000 + b"MARK",
        b"\xef\xbb\xbf<14>BOM first MARK",
        b"system,error,critical " + "ünïcödé ✓ 日本語 MARK".encode(),
    ]
    junk += [line for _, line in CATASTROPHIC]
    junk += [rng.randbytes(UDP_MAX) for _ in range(3)]
    junk.append(b"M" * 30000 + b"MARK" + b"\x00" * 30000)
    return junk


# Characters the archive shows as escapes (matcher/archive.py): C0, DEL, C1,
# the line and paragraph separators and the bidirectional controls.
NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
ESCAPED = {*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0))}
ESCAPED |= set("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def archived_text(datagram: bytes) -> bytes:
    """What the archive must show of a datagram: UTF-8 with U+FFFD for bad
    bytes, trailing CR/LF dropped, every control character escaped."""
    text = datagram.decode("utf-8", "replace").rstrip("\r\n")
    shown = [
        NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        if c in ESCAPED
        else c
        for c in text
    ]
    return "".join(shown).encode()


def archived_messages(log: Path) -> list[bytes]:
    """The archive's message lines (not its notes), rotated files included."""
    stamp = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] 127\.0\.0\.1 ")
    files = [*sorted(log.parent.glob(log.name + ".*"), reverse=True), log]
    data = b"".join(f.read_bytes() for f in files)
    return [line for line in data.split(b"\n") if stamp.match(line)]


def test_hostile_datagrams_are_each_archived_once_and_alert_exactly_when_they_should(
    tmp_path: Path,
    spawn: Callable[..., Proc],
    sink: tuple[zmq.Socket[bytes], str],
) -> None:
    """1. start matcher and ingest with a substr rule for MARK, the
       catastrophic regexes and twenty more rules (so the prefilter is on);
    2. send every kind of junk, 64 KB datagrams included, then "MARK end".
    Result: "MARK end" alerts within seconds; each datagram is one line in the
    archive; exactly the datagrams holding MARK raise the MARK alert; both
    stages run on and stop cleanly."""
    sock, notify_addr = sink
    events = [("Generic1", "substr", "MARK", "mark from @{sender}")]
    events += [("Generic1", "regex", p, "@1") for p, _ in CATASTROPHIC]
    events += [("Generic1", "substr", f"needle {i}", "x") for i in range(20)]
    env = base_env(
        tmp_path,
        ALERTIK_NOTIFY_ADDR=notify_addr,
        GENERIC1_WEBHOOK_URL="http://127.0.0.1:9/unused",
        **events_env(*events),
    )
    matcher = spawn("matcher", env={**env, "ALERTIK_MATCHER_ADDR": "tcp://127.0.0.1:*"})
    endpoint = endpoint_of(matcher, "matcher")
    ingest = spawn("ingest", env={**env, "ALERTIK_MATCHER_ADDR": endpoint})
    port = udp_port_of(ingest)
    junk = hostile_datagrams()
    for datagram in junk:
        send_udp(port, datagram)
    started = time.monotonic()
    send_udp(port, b"MARK end")
    last = str(len(junk) + 1)  # ids are node/pid/seq/received/rule

    def is_last(a: Alert) -> bool:
        return a.rule == "EVENT0" and a.id.split("/")[2] == last

    alerts = receive_until(sock, is_last, 60)
    took = time.monotonic() - started
    marks = [a for a in alerts if a.rule == "EVENT0"]
    assert len(marks) == sum(b"MARK" in d for d in junk) + 1
    assert all(a.text.startswith("mark from 127.0.0.1, at: ") for a in marks)
    assert ingest.terminate() == 0
    assert matcher.terminate() == 0
    assert f"stopped: received={len(junk) + 1} dropped=0" in ingest.output
    assert f"stopped: handled={len(junk) + 1} " in matcher.output
    for proc in (ingest, matcher):
        assert "Traceback" not in proc.output
    lines = archived_messages(tmp_path / "log.txt")
    assert len(lines) == len(junk) + 1
    # "[date time] sender text": the text as archive.py promises it.
    assert [line.split(b" ", 3)[3] for line in lines] == [
        archived_text(d) for d in [*junk, b"MARK end"]
    ]
    print(f"{len(junk)} hostile datagrams matched and archived in {took:.2f}s")
