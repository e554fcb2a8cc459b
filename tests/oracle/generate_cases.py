"""Build tests/data/musl_cases.json: musl's own answers for alertik-style regexes.

It also writes tests/data/musl_icase_cases.json: the same kind of answers with
REG_ICASE (a rules-file rule with ``icase = true``). Regenerate both (needs
musl-gcc, Debian/Ubuntu package musl-tools), from the repo root:

    python tests/oracle/generate_cases.py

It compiles tests/oracle/musl_oracle.c with ``musl-gcc -static -O2`` into a
temporary directory, builds several hundred (pattern, line) pairs (fixed edge
cases, the README's rules and lines, typical mistakes musl rejects, and
admin-style patterns against realistic RouterOS lines from a fixed seed), asks
the oracle what musl's regcomp/regexec say, and writes the answers. The file is
checked in, so the normal test suite needs no musl; tests/unit/test_musl_regex.py
also imports this module to build the oracle and fresh cases at test time
(``pytest -m oracle``).

Each record of the JSON list has ``pattern`` and ``subject`` (bytes, decoded as
Latin-1 so every byte survives), ``what`` (why the case is there), and musl's
answer: ``error`` (regerror text) when regcomp fails, else ``nsub`` and ``spans``
(``null`` for no match, else [start, end] for group 0..nsub, at most 32).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Where the checked-in answers live, relative to this file.
DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "musl_cases.json"
# The same with REG_ICASE (rules-file rules with icase = true).
ICASE_FILE = DATA_FILE.with_name("musl_icase_cases.json")

# The oracle's C source, next to this file.
ORACLE_SOURCE = Path(__file__).resolve().parent / "musl_oracle.c"

# Seed of the realistic part of the checked-in table (fresh cases use others).
TABLE_SEED = 20250101

# How many realistic patterns go into the checked-in table (each meets ~5 lines).
TABLE_PATTERNS = 110

# musl passes 32 regmatch_t slots (alertik's events.c): spans beyond are not seen.
SLOTS = 32

Case = tuple[bytes, bytes, str]  # (pattern, subject, what)

# The README's sample lines and rules, verbatim: alertik's own documented examples
# must keep working exactly as they do on musl.
README_INPUT = (
    b"input: in:WANinterface out:(unknown 0), connection-state:new src-mac "
    b"18:3d:5e:79:42:a5, proto TCP (SYN), 192.0.2.1:45624->198.51.100.2:80, len 60"
)
README_FORWARD = (
    b"forward: in:WANinterface out:mybridge, connection-state:new,dnat src-mac "
    b"18:3d:5e:79:42:a5, proto TCP (SYN), 34.148.164.203:47202->10.0.0.4:22, NAT "
    b"34.148.164.203:47202->(192.168.100.30:30292->10.0.0.4:22), len 60"
)
README_WIFI = (
    b"wireless,info 36:7F:7F:07:C4:B0@honeypot: disconnected, unicast key exchange "
    b"timeout, signal strength -85"
)
README_LOGIN = (
    b"system,error,critical login failure for user admin from 192.0.2.1 via ssh"
)
README_FIREWALL_INPUT = (
    rb"input: in:.*src-mac [0-9a-f:]+, proto [^,]+, ((\d{1,3}\.?)+):(\d{1,5})->"
    rb"((\d{1,3}\.?)+):(\d{1,5})"
)
README_FIREWALL_FORWARD = b"forward" + README_FIREWALL_INPUT[len(b"input") :]
README_SSH = rb"login failure for user ([A-Za-z]+) from (\d{1,3}.*) via ssh"
README_LINK = rb"([a-zA-Z0-9]+) link up \(speed (\d+Mbps), full duplex\)"


def build_oracle(dest_dir: Path) -> Path:
    """Compile musl_oracle.c statically against musl into dest_dir."""
    compiler = shutil.which("musl-gcc")
    if compiler is None:
        raise FileNotFoundError("musl-gcc not found (apt-get install musl-tools)")
    binary = dest_dir / "musl_oracle"
    subprocess.run(
        [compiler, "-static", "-O2", "-o", str(binary), str(ORACLE_SOURCE)],
        check=True,
        capture_output=True,
    )
    return binary


def run_oracle(
    binary: Path, cases: list[Case], icase: bool = False
) -> list[dict[str, Any]]:
    """musl's answer for each case, in the JSON-record shape described above
    (with icase, regcomp also gets REG_ICASE)."""
    for pattern, subject, what in cases:
        if b"\0" in pattern or b"\0" in subject:
            raise ValueError(f"NUL cannot reach musl: {what}")
    stdin = b"".join(p + b"\0" + s + b"\0" for p, s, _ in cases)
    argv = [str(binary), "icase"] if icase else [str(binary)]
    out = subprocess.run(argv, input=stdin, capture_output=True, check=True).stdout
    lines = out.decode("ascii").splitlines()
    if len(lines) != len(cases):
        raise RuntimeError(f"oracle answered {len(lines)} of {len(cases)} cases")
    records = []
    for (pattern, subject, what), line in zip(cases, lines, strict=True):
        raw = json.loads(line)
        record: dict[str, Any] = {
            "pattern": pattern.decode("latin-1"),
            "subject": subject.decode("latin-1"),
            "what": what,
        }
        if not raw["ok"]:
            record["error"] = raw["error"]
        else:
            nsub = raw["nsub"]
            record["nsub"] = nsub
            if raw["match"]:
                spans = raw["spans"]
                # musl must leave every slot past re_nsub unset.
                assert all(s == [-1, -1] for s in spans[nsub + 1 :]), line
                record["spans"] = spans[: min(nsub + 1, SLOTS)]
            else:
                record["spans"] = None
        records.append(record)
    return records


# ---------------------------------------------------------------------------
# Fixed cases: the dialect's edges, README rules, and what musl rejects


def fixed_cases() -> list[Case]:
    """Hand-picked cases: dialect edges, README rules/lines, rejections."""
    c: list[Case] = []

    def add(pattern: bytes, subjects: list[bytes], what: str) -> None:
        """One pattern against several subjects."""
        c.extend((pattern, s, what) for s in subjects)

    # The README's rules on its own sample lines and near misses.
    add(
        README_SSH,
        [README_LOGIN, b"login failure for user john_doe from 1.2.3.4 via ssh"],
        "README ssh rule",
    )
    add(
        README_LINK,
        [
            b"eth0 link up (speed 100Mbps, full duplex)",
            b"ether1 link up (speed 1Gbps, full duplex)",
        ],
        "README link rule",
    )
    add(README_FIREWALL_INPUT, [README_INPUT, README_FORWARD], "README input rule")
    add(README_FIREWALL_FORWARD, [README_INPUT, README_FORWARD], "README forward rule")
    add(
        b"honeypot: disconnected, unicast key exchange timeout",
        [README_WIFI],
        "README substring as regex",
    )

    # Escapes and classes.
    add(rb"a\d+b", [b"xa12b"], "\\d is [0-9]")
    add(rb"(\w+)", [b"caf\xe9_1", b"\xff\xfe"], "\\w is ASCII only")
    add(rb"a(\s+)b", [b"a\x0b\x0c b"], "\\s includes \\v")
    add(rb"\D\W\S", [b"1a-b"], "negated escapes")
    add(rb"([[:alpha:]]+)", [b"caf\xe9"], "[[:alpha:]] is ASCII only")
    add(rb"[[:space:]]+", [b"a \t\x0bb"], "[[:space:]]")
    add(rb"([[:punct:]]+)", [b"ab!@#\xa1cd"], "[[:punct:]] is ASCII only")
    add(rb"([[:print:]]+)", [b"\x01ab \xe9c"], "[[:print:]] is ASCII only")
    add(rb"([[:cntrl:]]+)", [b"a\x01\x1f\x7f\x80b"], "[[:cntrl:]] is ASCII only")
    add(rb"^caf(.)", [b"caf\xc3\xa9"], ". is one byte")
    add(rb"a(.)b", [b"a\nb"], ". matches newline")
    add(rb"([^a]+)", [b"a\n\xe9\xffb"], "negated bracket takes newline and high bytes")
    add(b"a$", [b"a\n", b"a"], "$ only at the very end")
    add(b"^b", [b"a\nb", b"b"], "^ only at the very start")
    add(rb"([\.]+)", [b"a\\.b"], "backslash is literal in brackets")
    add(rb"([\d]+)", [b"12d\\"], "[\\d] is backslash or d")
    add(rb"(a)\1", [b"aa a1"], "\\1 is the digit 1")
    add(rb"(a.*?b)", [b"aXbYb"], "*? is greedy")
    add(rb"(a+?)(a*)", [b"aaa"], "+? is greedy")
    add(rb"x\ey", [b"x\x1by"], "\\e escape")
    add(rb"x\ay", [b"x\x07y"], "\\a escape")
    add(rb"\t\n\r\f", [b"\t\n\r\f"], "control escapes")
    add(rb"\x{41}(\x42)", [b"AB"], "\\x{..} and \\xHH")
    add(rb"\x41\x4", [b"A\x04", b"A4"], "\\x takes at most two digits")
    add(rb"\x414", [b"A4"], "\\x stops after two digits")
    add(rb"a\x{DFE9}b", [b"a\xe9b"], "\\x{DFE9} is the byte 0xE9")
    add(rb"a\xe9b", [b"a\xe9b"], "\\xE9 never matches in the C locale")
    add(b"caf\xc3\xa9", [b"un caf\xc3\xa9"], "UTF-8 bytes in the pattern are literals")
    add(b"[\xe0-\xef]+", [b"x\xe9\xe0\xf0"], "high-byte range in brackets")
    add(rb"(\v)", [b"\x0bv"], "\\v is the letter v")
    add(rb"(\A)", [b"xA"], "\\A is the letter A")
    add(rb"\k(.)", [b"kz"], "unknown escape is literal")
    add(rb"\Z\z\Q\0", [b"Zz Q0 ZzQ0"], "more unknown escapes")
    add(b"(a))", [b"a)"], "unmatched ) is literal")
    add(b"a)b)", [b"a)b)"], "several unmatched )")
    add(b"(ab)**c", [b"ababc"], "stacked quantifiers")
    add(b"^*(a)", [b"a"], "^* accepted")
    add(b"(|a)b", [b"ab"], "empty alternative")
    add(b"|a", [b"xa"], "leading |")
    add(b"a||b", [b"xb"], "doubled |")
    add(b"()a", [b"a"], "empty group")
    add(b"(a){0}b", [b"ab"], "(a){0} reports an empty group")
    add(b"c(a){0}b", [b"xcb"], "(a){0} reports the match start")
    add(b"x|(a){0}b", [b"x"], "(a){0} reported even on the other branch")
    add(b"(b(a){0}c)+", [b"xbcbc"], "(a){0} inside a repetition")
    add(rb"(\b )", [b" a"], "\\b holds at the start")
    add(rb"( \b)", [b"a "], "\\b holds at the end")
    add(rb"\b(foo)\b", [b"a foo b", b"afoo"], "\\b word")
    add(rb"(o\B)", [b"foo", b"fo"], "\\B")
    add(rb"\Bing\b", [b"logging in", b"ing"], "\\B before a word character")
    add(rb"\<(fo)", [b"afo fo"], "\\< before a word character")
    add(rb"(\<admin\>)", [b"user admin logged", b"user admins", b"xadmin"], "\\< \\>")
    add(rb"\<(ssh|winbox)\>", [b"via ssh", b"via winbox2", b"viassh"], "\\< \\> group")
    add(rb"user \<([[:alpha:]_]+)\>", [b"user john_doe logged in"], "\\< after space")
    add(rb"(web)fig\>", [b"via webfig", b"via webfigs"], "\\> after a word")
    add(rb"^\<ok", [b"ok go", b" ok"], "^ then \\<")
    add(rb"ok\>$", [b"is ok", b"ok!"], "\\> then $")
    add(b"(a)|b", [b"b"], "unmatched group")
    add(b"(a{255})", [b"a" * 255], "a{255}")
    add(b"(a{2,})", [b"aaaa"], "{n,}")
    add(b"a{2,3}", [b"aaaa"], "{m,n}")
    add(b"(a{0,0})b", [b"ab"], "{0,0}")
    add(b"a{002}", [b"aa"], "leading zeros in counts")
    add(b"x{1}{2}", [b"xx"], "stacked counts")
    add(b"[]a]+", [b"x]a]"], "] first in brackets")
    add(b"[^]a]+", [b"]ab"], "] first after ^")
    add(b"[a-]+", [b"x-a-"], "- last in brackets")
    add(b"[-a]+", [b"x-a-"], "- first in brackets")
    add(b"[a-z--@]+", [b"k-@"], "musl's [a-z--@] extension")
    add(b"[%--]+", [b"x%+-"], "range ending in -")
    add(b"[[]+", [b"a[["], "[ in brackets")
    add(b"[a[]+", [b"[a"], "[ later in brackets")
    add(b"[!-[]+", [b"!#["], "range ending in [")
    add(b"[]-a]+", [b"^_`]"], "range starting with ]")
    add(b"[[:digit:]-]+", [b"1-2"], "class then -")
    add(b"a #b", [b"a #b"], "no verbose mode")
    add(b"$+", [b"ab"], "$+")
    add(b"", [b"abc"], "empty pattern")
    # TRE's empty paths: a nullable part is skipped one fixed way.
    add(b"$?", [b"abc"], "$? is $")
    add(b"x$?", [b"xy", b"yx"], "x$? needs the end")
    add(b"(a|$)?b", [b"b", b"ab"], "(a|$)? is skipped through $")
    add(rb"a(\b|c*)d", [b"ad", b"acd"], "empty (\\b|c*) needs \\b")
    add(rb"a(c*|\b)d", [b"ad"], "empty (c*|\\b) does not")
    add(b"^{0,2}x", [b"ax"], "x{0,2} is skipped freely")
    add(rb"-(\<|x*)-", [b"--", b"-x-", b"-y"], "empty match only through \\<")
    add(rb"(a*)*", [b"b", b"aa"], "(a*)*")
    add(b"(a|b*)?c", [b"c"], "nullable group under ?")
    # Submatch choices (leftmost-longest, POSIX subexpression rules).
    add(
        b"via (web|webfig|winbox|ssh)",
        [b"user admin logged in from 10.0.0.245 via webfig"],
        "alternation: longest wins",
    )
    add(
        b"^(system|system,error)",
        [b"system,error,critical login failure"],
        "topic prefix",
    )
    add(
        b"speed ([0-9]+|[0-9.]+)",
        [b"ether1 link up (speed 2.5G, full duplex)"],
        "decimal",
    )
    add(
        b"(ether|ether1)([0-9]*) link (up|down)",
        [b"ether12 link down"],
        "earlier group longest",
    )
    add(b"(x|xx)(x*)", [b"xxx"], "earlier group longest 2")
    add(b"a(b|bc)(c|d)?", [b"abcd"], "optional group")
    add(b"(a|ab)(bc|c)", [b"abc"], "(a|ab)(bc|c)")
    add(b"(ab|a)(bc|c)", [b"abc"], "(ab|a)(bc|c)")
    add(b"(a|ab)(c|bcd)", [b"abcd"], "(a|ab)(c|bcd)")
    add(b"(a|ab)(c|bcd)(d*)", [b"abcd"], "TRE quirk: a|bcd|''")
    add(rb"((\d{1,3}\.?)+):(\d+)", [b"192.168.88.1:8291"], "last iteration capture")
    add(
        rb"(([0-9A-F]{2}:?)+)@([^:]+):",
        [b"36:7F:7F:07:C4:B0@honeypot: disconnected"],
        "mac last iteration",
    )
    add(b"((a)|(ab))*c", [b"abac"], "stale inner capture is reset")
    add(b"(a(b)?)+", [b"aba"], "stale optional capture is reset")
    add(b"((a*)b)*", [b"abaab"], "nested star")
    add(b"(a?)(a*)(a?)", [b"aaa"], "optional then star")
    add(b"(.*) (.*) (.*)", [b"one two three four"], "greedy split")
    add(b"(.*)-(.*)", [b"a-b-c"], "dot star split")
    add(b"(.?)(.*)(.?)", [b"abc"], "(.?)(.*)(.?)")
    add(b"(a+|b+)*", [b"aabbb"], "(a+|b+)*")
    add(
        b"(info|info,account) (.*)",
        [b"system,info,account user admin logged in"],
        "topic in the middle",
    )
    add(b"([0-9A-F:]+)@([^:]+|[^:]+: [a-z]+): disconnected", [README_WIFI], "wifi ssid")
    add(b"(" * 12 + b"a" + b")" * 12, [b"a"], "12 nested groups")
    add(
        b"((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))",
        [b"a"],
        "34 groups: only 32 slots",
    )
    add(b"(x{255}){4}", [b"x"], "musl accepts nested counts past 1000")
    # Patterns musl rejects.
    rejects = [
        rb"(?:ab)+",
        rb"(?i)ab",
        rb"(?P<u>\w+)",
        rb"(?=a)",
        rb"a{,2}b",
        rb"a{256}",
        rb"a{",
        rb"a{1",
        rb"a{ 1}",
        rb"a{2,1}",
        rb"a{1,2,3}",
        rb"{a",
        rb"*a",
        rb"+a",
        rb"?a",
        rb"a|*b",
        rb"(*a)",
        rb"(+a)",
        rb"[[.a.]]",
        rb"[[=a=]]",
        rb"[[:foo:]]",
        rb"[[:digit]]",
        rb"[[:word:]]",
        rb"[[:alpha:",
        rb"[z-a]",
        rb"[a-c-e]",
        rb"[[:digit:]-z]",
        rb"[a-",
        rb"(a",
        rb"((a)",
        rb"via (ssh|web",
        rb"[a",
        rb"[]",
        rb"[^]",
        b"a\\",
        b"\\",
        rb"\p{L}",
        rb"\P{Lu}",
        rb"\x{41",
        rb"\x{0000000041}",
        rb"a**{",
        rb"\d{1,3}{",
        rb"x{1,256}",
        rb"x{0256}",
    ]
    for pattern in rejects:
        add(pattern, [b"abc"], "musl rejects this")
    return c


# ---------------------------------------------------------------------------
# Realistic RouterOS lines and admin-style patterns

# Values the realistic lines draw from: user names (one with UTF-8 bytes), login
# methods, interfaces, speeds and SSIDs (UTF-8 and raw Latin-1 bytes) as RouterOS
# prints them.
USERS = [
    "admin",
    "john_doe",
    "guest",
    "test",
    "ro-user",
    "api_user",
    "Admin2",
    "backup.svc",
    "jos\xc3\xa9",
]
METHODS = [
    "ssh",
    "winbox",
    "webfig",
    "web",
    "api",
    "api-ssl",
    "telnet",
    "ftp",
    "mac-telnet",
]
IFACES = [
    "ether1",
    "ether2",
    "ether12",
    "ether24",
    "sfp1",
    "sfp-sfpplus1",
    "wlan1",
    "wlan2",
    "bridge",
    "ether1-gateway",
    "pppoe-out1",
    "vlan10",
]
SPEEDS = ["10Mbps", "100Mbps", "1Gbps", "2.5Gbps", "10Gbps"]
SSIDS = [
    "honeypot",
    "HomeWiFi",
    "Home WiFi",
    "guest-5G",
    "caf\xc3\xa9",
    "caf\xe9",
    "iot_2.4",
]
TOPICS_LOGIN = ["system,error,critical", "system,error", "system,info,account"]


def _ip(r: random.Random) -> str:
    """A random IPv4 address (now and then an IPv6 one)."""
    if r.random() < 0.05:
        return f"2001:db8::{r.randint(1, 0xFFFF):x}"
    return ".".join(
        str(r.choice([r.randint(0, 255), r.randint(1, 9), 10, 192])) for _ in range(4)
    )


def _mac(r: random.Random) -> str:
    """A random MAC address, upper case as RouterOS writes it (sometimes lower)."""
    mac = ":".join(f"{r.randint(0, 255):02X}" for _ in range(6))
    return mac.lower() if r.random() < 0.2 else mac


def _line(r: random.Random, kind: str) -> str:
    """One RouterOS log line of the given kind, as text (Latin-1 for bytes)."""
    user, ip, method = r.choice(USERS), _ip(r), r.choice(METHODS)
    iface, mac, ssid = r.choice(IFACES), _mac(r), r.choice(SSIDS)
    port, sport = r.choice([22, 80, 443, 8291, 53, 5353]), r.randint(1024, 65535)
    if kind == "login_fail":
        topics = r.choice(TOPICS_LOGIN)
        return f"{topics} login failure for user {user} from {ip} via {method}"
    if kind == "login_ok":
        verb = r.choice(["logged in", "logged out"])
        return f"system,info,account user {user} {verb} from {ip} via {method}"
    if kind == "link":
        if r.random() < 0.4:
            return f"interface,info {iface} link down"
        duplex = r.choice(["full", "half"])
        speed = r.choice(SPEEDS)
        return f"interface,info {iface} link up (speed {speed}, {duplex} duplex)"
    if kind == "wifi":
        what = r.choice(
            [
                f"connected, signal strength -{r.randint(40, 90)}",
                "disconnected, unicast key exchange timeout, signal strength -85",
                "disconnected, received deauth: sending station leaving (3)",
                "disconnected, extensive data loss",
            ]
        )
        return f"wireless,info {mac}@{r.choice([ssid, iface])}: {what}"
    if kind == "dhcp":
        verb = r.choice(["assigned", "deassigned"])
        prep = r.choice(["to", "for"]) if verb == "assigned" else "from"
        host = r.choice(["", " DESKTOP-4F2K", " android-12ab"])
        return f"dhcp,info defconf {verb} {ip} {prep} {mac}{host}"
    if kind == "firewall":
        chain = r.choice(["input", "forward"])
        proto = r.choice(["TCP (SYN)", "TCP (ACK,PSH)", "UDP", "ICMP (type 8, code 0)"])
        prefix = r.choice(["", "DROP-WAN ", "ssh-brute "])
        src = f"{ip}:{sport}" if "ICMP" not in proto else ip
        dst = f"{_ip(r)}:{port}" if "ICMP" not in proto else _ip(r)
        nat = ""
        if chain == "forward" and r.random() < 0.5:
            nat = f", NAT {src}->({_ip(r)}:{r.randint(1024, 65535)}->{dst})"
        out = r.choice(["(unknown 0)", "bridge", "mybridge"])
        state = r.choice(["new", "new,dnat", "established"])
        return (
            f"firewall,info {prefix}{chain}: in:{iface} out:{out}, "
            f"connection-state:{state} src-mac {mac.lower()}, proto {proto}, "
            f"{src}->{dst}{nat}, len {r.randint(40, 1500)}"
        )
    return r.choice(
        [
            f"system,info device changed by {user}",
            "system,error,critical router was rebooted without proper shutdown",
            f"script,info backup to {ip} done",
            f"system,info,account user {user} logged out from {ip} via {method}",
        ]
    )


# The kinds of line (and of pattern aimed at them) the generator knows.
KINDS = ["login_fail", "login_ok", "link", "wifi", "dhcp", "firewall", "other"]


def _decorate(r: random.Random, line: str) -> bytes:
    """The line as it may arrive: plain, syslog- or CEF-framed, with odd bytes."""
    roll = r.random()
    if roll < 0.12:
        line = f"<{r.choice([27, 30, 134])}>Oct  2 17:36:35 MikroTik {line}"
    elif roll < 0.2:
        topics, _, msg = line.partition(" ")
        line = (
            f"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|"
            f"{topics}|High|dvchost=MikroTik dvc=192.168.88.36 msg={msg}"
        )
    elif roll < 0.25:
        line = "core1: " + line
    tail = r.choice(["", "", "", "", "\n", "\r\n", " ", "\t"])
    return (line + tail).encode("latin-1")


# Sub-patterns admins write for each field, including the sloppy ones (.*?, \d{1,3}.*,
# ((\d{1,3}\.?)+), alternations whose branches overlap, \< \> word anchors).
USER_RE = [
    r"([A-Za-z]+)",
    r"(\w+)",
    r"([a-z]+|[a-z]+_[a-z]+)",
    r"(.*)",
    r"(\S+)",
    r"([^ ]+)",
    r"([[:alnum:]_.-]+)",
    "admin",
    "(admin|root|guest)",
    r"\<([[:alpha:]_]+)\>",
    r"(.*?)",
    r"([a-z]+)",
]
IP_RE = [
    r"([0-9.]+)",
    r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})",
    r"((\d{1,3}\.?)+)",
    r"(.*)",
    r"(\S+)",
    r"([[:digit:].]+)",
    r"(([0-9]+\.){3}[0-9]+)",
    r"(\d{1,3}.*)",
    r"([0-9a-f:.]+)",
    r"([0-9]{1,3}(\.[0-9]{1,3}){3})",
]
METHOD_RE = [
    r"(ssh|web|winbox|webfig|api|api-ssl|telnet)",
    r"(api|api-ssl)",
    r"(.+)$",
    r"(web|webfig|winbox|ssh)",
    r"([a-z-]+)",
    "ssh",
    r"(\w+)",
    r"(ssh|telnet)$",
    r"\<(ssh|winbox)\>",
    r"(\bweb\b|webfig)",
]
IFACE_RE = [
    r"(ether|ether1|sfp|wlan)([0-9]*)",
    r"([a-zA-Z0-9]+)",
    r"(ether[0-9]+)",
    r"([[:alnum:]-]+)",
    r"(\S+)",
    r"(ether|sfp-sfpplus|wlan)([0-9]+)",
    r"\<(ether[0-9]+)\>",
    r"([a-z]+)([0-9]*)(-[a-z]+)?",
]
SPEED_RE = [
    r"(\d+Mbps)",
    r"([0-9.]+)(M|G)bps",
    r"([0-9]+|[0-9.]+)([MG])bps",
    r"(.*)",
    r"([^,]+)",
    r"([0-9]+)",
]
MAC_RE = [
    r"(([0-9A-F]{2}:?)+)",
    r"([0-9A-F:]+)",
    r"([[:xdigit:]:]{17})",
    r"([[:xdigit:]]{2}(:[[:xdigit:]]{2}){5})",
    r"(\S+)",
    r"([0-9a-fA-F:]+)",
]
SSID_RE = [
    r"([^:]+)",
    r"(.+)",
    "honeypot",
    r"([^:]+|[^:]+: [a-z]+)",
    r"(\w+)",
    r"([[:print:]]+)",
]


def _pattern(r: random.Random, kind: str) -> str:
    """An admin-style pattern aimed at lines of the given kind."""
    u, i, m = r.choice(USER_RE), r.choice(IP_RE), r.choice(METHOD_RE)
    if kind == "login_fail":
        body = r.choice(
            [
                f"login failure for user {u} from {i} via {m}",
                f"login failure for user {u}",
                f"failure for user {u} from {i}",
                rf"critical login failure.*from {i}",
                f"(system|system,error),critical login failure for user {u}",
            ]
        )
    elif kind == "login_ok":
        body = r.choice(
            [
                f"user {u} logged (in|out) from {i} via {m}",
                f"user {u} logged in( from {i})?( via {m})?",
                rf"\buser\b {u} logged",
                "(info|info,account) (.*)",
            ]
        )
    elif kind == "link":
        f = r.choice(IFACE_RE)
        body = r.choice(
            [
                f"{f} link (up|down)",
                rf"{f} link up \(speed {r.choice(SPEED_RE)}, (full|half) duplex\)",
                rf"{f} link up( \(speed ([^,]+), ([a-z]+) duplex\))?",
                r"speed ([0-9.]+)(M|G)",
                r"link down$",
            ]
        )
    elif kind == "wifi":
        mac, ssid = r.choice(MAC_RE), r.choice(SSID_RE)
        body = r.choice(
            [
                f"{mac}@{ssid}: disconnected, unicast key exchange timeout",
                f"{mac}@{ssid}: (connected|disconnected)",
                f"{mac}@{ssid}: disconnected, (.*)",
                f"{mac}@{ssid}: disconnected(, (.*))?",
                rf"{mac}@{ssid}: ([a-z]+)(, signal strength (-[0-9]+))?$",
                r"signal strength (-?[0-9]+)",
                r"\Bcast\b key",
            ]
        )
    elif kind == "dhcp":
        mac = r.choice(MAC_RE)
        body = r.choice(
            [
                f"(assigned|deassigned) {i} (to|from|for) {mac}",
                f"assigned {i} (to|for) {mac}( (.*))?",
                rf"defconf (de)?assigned {i}",
            ]
        )
    elif kind == "firewall":
        body = r.choice(
            [
                README_FIREWALL_INPUT.decode(),
                README_FIREWALL_FORWARD.decode(),
                r"proto (TCP|UDP)[^,]*, ([0-9.]+):([0-9]+)->([0-9.]+):"
                r"(22|80|443|8291),",
                rf"(input|forward): in:{r.choice(IFACE_RE)} out:",
                rf"src-mac {r.choice(MAC_RE)}, proto ([A-Z]+)",
                r"NAT ([0-9.:]+)->\(([0-9.]+):([0-9]+)->",
                r", len ([0-9]+)$",
                r"\<(DROP-WAN|ssh-brute)\> (input|forward):",
            ]
        )
    else:
        body = r.choice(
            [
                r"(critical|error).*(disk|memory|cpu|shutdown)",
                r"^system,error,critical",
                r"[[:xdigit:]:]+",
                r"[[:alnum:] -]+",
                r"-[[:digit:]]+",
                r"device changed by (\w+)$",
                r"\d{1,3}(\.\d{1,3}){3}",
                r"\S+@\S+",
                r"rebooted without (proper )?shutdown",
            ]
        )
    prefix = r.choice(["", "", "", "", "^", ".*", r"^[^ ]+ ", "critical ", " "])
    suffix = r.choice(["", "", "", "", "$", " *$", ".*", r"[[:space:]]*$"])
    return prefix + body + suffix


def realistic_cases(seed: int, patterns: int, lines_per_pattern: int = 5) -> list[Case]:
    """Admin-style patterns, each against mostly matching and some other lines."""
    r = random.Random(seed)
    cases: list[Case] = []
    for _ in range(patterns):
        kind = r.choice(KINDS)
        pattern = _pattern(r, kind).encode("latin-1")
        for _ in range(lines_per_pattern):
            line_kind = kind if r.random() < 0.7 else r.choice(KINDS)
            subject = _decorate(r, _line(r, line_kind))
            cases.append((pattern, subject, f"realistic {kind} seed {seed}"))
    return cases


def table_cases() -> list[Case]:
    """Every case of the checked-in table."""
    return fixed_cases() + realistic_cases(TABLE_SEED, TABLE_PATTERNS)


def icase_fixed_cases() -> list[Case]:
    """Where REG_ICASE could go wrong: literals, escapes, brackets, classes."""
    c: list[Case] = []

    def add(pattern: bytes, subjects: list[bytes], what: str) -> None:
        c.extend((pattern, s, what) for s in subjects)

    add(b"Login Failure", [b"LOGIN FAILURE", b"login failure", b"LoGiN fAiLuRe"], "lit")
    add(rb"\k\Z", [b"KZ", b"kz"], "escaped letters fold")
    add(rb"\x41\x{62}", [b"Ab", b"aB", b"AB"], "\\x escapes stay one byte")
    add(b"[a-c]+", [b"xABCD", b"xabcd"], "bracket range folds")
    add(b"[^a]", [b"A", b"a", b"b"], "negated bracket excludes both cases")
    add(b"[^A-C]+", [b"abcd", b"ABCD"], "negated range excludes both cases")
    add(b"[Z-a]+", [b"zA[", b"Za"], "range across cases")
    add(b"([[:upper:]]+)", [b"abC1"], "[:upper:] takes lower case too")
    add(b"([[:lower:]]+)", [b"ABc1"], "[:lower:] takes upper case too")
    add(b"[^[:upper:]]", [b"a", b"1"], "negated [:upper:] excludes both cases")
    add(b"[^[:lower:]x]", [b"X", b"1"], "negated class and literal")
    add(rb"(\w+) (\W+)", [b"Ab_1 -+"], "\\w and \\W unchanged")
    add(b"caf\xc9", [b"caf\xe9", b"caf\xc9"], "high bytes have no case")
    add(b"[\xc0-\xc9]", [b"\xe9", b"\xc5"], "high-byte ranges have no case")
    add(b"(a)(B)|(c)", [b"Ab", b"C"], "groups with case folded")
    add(rb"\<Admin\>", [b"ADMIN logged", b"xadmin"], "word assertions")
    add(
        README_SSH,
        [
            README_LOGIN.upper(),
            README_LOGIN,
            b"LOGIN FAILURE FOR USER X FROM 1 VIA SSH",
        ],
        "README ssh rule, icase",
    )
    add(README_LINK, [b"ETHER1 LINK UP (SPEED 1000MBPS, FULL DUPLEX)"], "link, icase")
    return c


def icase_cases(seed: int = TABLE_SEED, patterns: int = 40) -> list[Case]:
    """REG_ICASE cases: the fixed ones, then realistic ones on lines whose
    letters are partly in the other case (the patterns stay as admins write
    them: flipping a class name or \\d would make another pattern)."""
    r = random.Random(seed)

    def shuffle_case(text: bytes) -> bytes:
        letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return bytes(b ^ 0x20 if b in letters and r.random() < 0.3 else b for b in text)

    mixed = [
        (p, shuffle_case(s), what + " icase")
        for p, s, what in realistic_cases(seed, patterns)
    ]
    return icase_fixed_cases() + mixed


def write_table(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "[\n" + ",\n".join(json.dumps(rec) for rec in records) + "\n]\n"
    path.write_text(text, encoding="ascii")
    matched = sum(1 for rec in records if rec.get("spans"))
    rejected = sum(1 for rec in records if "error" in rec)
    print(f"{path}: {len(records)} cases, {matched} match, {rejected} rejected")


def main() -> int:
    """Regenerate DATA_FILE and ICASE_FILE from musl itself."""
    with tempfile.TemporaryDirectory() as tmp:
        binary = build_oracle(Path(tmp))
        write_table(DATA_FILE, run_oracle(binary, table_cases()))
        write_table(ICASE_FILE, run_oracle(binary, icase_cases(), icase=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
