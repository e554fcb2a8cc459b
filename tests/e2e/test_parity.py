"""alertik parity: dozens of admin-style rules against real RouterOS lines.

Every notification alertik would send arrives with its exact text (with
alertik's mask bugs corrected), in order, and nothing else arrives.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import Proc, WebhookServer, base_env, send_udp, udp_port_of

pytestmark = pytest.mark.e2e

README_INPUT = (
    r"input: in:.*src-mac [0-9a-f:]+, proto [^,]+, "
    r"((\d{1,3}\.?)+):(\d{1,5})->((\d{1,3}\.?)+):(\d{1,5})"
)
README_FORWARD = README_INPUT.replace("input:", "forward:", 1)

# (match type, match string, mask), in EVENTn order.
RULES = [
    ("substr", "login failure for user", "Failed login"),  # 0
    (
        "regex",
        r"login failure for user ([A-Za-z]+) from (\d{1,3}.*) via ssh",
        "Alert: failed user attempt to login as @1 from @2",
    ),  # 1: the README's own example
    (
        "regex",
        r"user (\w+) logged in from ([0-9.]+) via (web|webfig|winbox|ssh|api)",
        "@1 logged in from @2 via @3",
    ),  # 2
    (
        "regex",
        r"([a-zA-Z0-9]+) link up \(speed (\d+Mbps), full duplex\)",
        "Your interface @1 is running at @2",
    ),  # 3: README
    ("regex", r"(ether|ether1)([0-9]*) link (up|down)", "@1/@2 went @3"),  # 4
    ("substr", "unicast key exchange timeout", "Wi-Fi handshake timeout"),  # 5
    ("regex", r"(([0-9A-F]{2}:?)+)@([^:]+): disconnected", "@1 left @3"),  # 6
    (
        "regex",
        r"assigned ([0-9.]+) to (([[:xdigit:]]{2}:){5}[[:xdigit:]]{2})",
        "lease @1 for @2",
    ),  # 7
    (
        "regex",
        README_INPUT,
        "The IP @1:@3 is trying to connect to your router @4:@6, please do something",
    ),  # 8
    (
        "regex",
        README_FORWARD,
        "The IP @1:@3 is trying to connect to one of your machines @4:@6, please "
        "do something",
    ),  # 9
    ("regex", "^system,error", "errors: @@ admin"),  # 10: @@ is '@' here too
    ("substr", "logged out", "mail admin@example.com"),  # 11: a lone @ is kept
    ("regex", "^<([0-9]+)>", "PRI @1 from @{sender}"),  # 12
    ("regex", r"CEF:0\|MikroTik\|([^|]*)\|([^|]*)\|", "CEF from @1 version @2"),  # 13
    ("regex", "duser=([^ ]+) outcome=(failure|success)", "@1: @2"),  # 14
    ("substr", "Login failure", "never: substr is case-sensitive"),  # 15
    ("regex", "via (web|webfig)$", "out via @1"),  # 16: leftmost-longest
    ("regex", "speed ([0-9]+|[0-9.]+)(M|G)", "speed @1@2"),  # 17
    ("regex", r"from ([0-9.]+) via (ssh|telnet)\b", "@2 from @1"),  # 18
    *[("substr", f"no such message {i}", f"never {i}") for i in range(10)],
    ("substr", "END-OF-TEST", "sentinel"),
]

LINES = [
    b"system,error,critical login failure for user admin from 192.0.2.1 via ssh",
    b"system,error,critical login failure for user john_doe from 198.51.100.7 via "
    b"winbox",
    b"system,info,account user admin logged in from 10.0.0.245 via winbox",
    b"system,info,account user api-user logged in from 10.0.0.9 via api",
    b"system,info,account user admin logged out from 10.0.0.245 via webfig",
    b"interface,info ether1 link up (speed 1Gbps, full duplex)",
    b"interface,info ether2 link up (speed 100Mbps, full duplex)",
    b"interface,info ether12 link down",
    b"wireless,info 36:7F:7F:07:C4:B0@honeypot: disconnected, unicast key exchange "
    b"timeout, signal strength -85",
    b"wireless,info 00:11:22:33:44:55@wlan1: connected, signal strength -60",
    b"dhcp,info defconf assigned 192.168.88.254 to 18:3D:5E:79:42:A5",
    b"dhcp,info defconf deassigned 192.168.88.254 from 18:3D:5E:79:42:A5",
    b"input: in:WANinterface out:(unknown 0), connection-state:new src-mac "
    b"18:3d:5e:79:42:a5, proto TCP (SYN), 192.0.2.1:45624->198.51.100.2:80, len 60",
    b"forward: in:WANinterface out:mybridge, connection-state:new,dnat src-mac "
    b"18:3d:5e:79:42:a5, proto TCP (SYN), 34.148.164.203:47202->10.0.0.4:22, NAT "
    b"34.148.164.203:47202->(192.168.100.30:30292->10.0.0.4:22), len 60",
    b"<27>Oct  2 17:36:35 MikroTik login failure for user guest from 192.168.88.17 "
    b"via ssh",
    b"Oct  2 17:36:35 MikroTik CEF:0|MikroTik|hAP ax^2|7.25beta5|10|system,error,"
    b"critical|High|dvchost=MikroTik dvc=192.168.88.36 msg=login failure for user "
    b"guest from 192.168.88.17 via ssh app=ssh duser=guest outcome=failure "
    b"src=192.168.88.17",
    b"END-OF-TEST",
]

EXPECTED = [
    "Failed login",
    "Alert: failed user attempt to login as admin from 192.0.2.1",
    "errors: @ admin",
    "ssh from 192.0.2.1",
    "Failed login",
    "errors: @ admin",
    "admin logged in from 10.0.0.245 via winbox",
    "mail admin@example.com",
    "out via webfig",
    "ether1/ went up",
    "speed 1G",
    "Your interface ether2 is running at 100Mbps",
    "ether/2 went up",
    "speed 100M",
    "ether1/2 went down",
    "Wi-Fi handshake timeout",
    "36:7F:7F:07:C4:B0 left honeypot",
    "lease 192.168.88.254 for 18:3D:5E:79:42:A5",
    "The IP 192.0.2.1:45624 is trying to connect to your router 198.51.100.2:80, "
    "please do something",
    "The IP 34.148.164.203:47202 is trying to connect to one of your machines "
    "10.0.0.4:22, please do something",
    "Failed login",
    "Alert: failed user attempt to login as guest from 192.168.88.17",
    "PRI 27 from 127.0.0.1",
    "ssh from 192.168.88.17",
    "Failed login",
    "Alert: failed user attempt to login as guest from 192.168.88.17",
    "CEF from hAP ax^2 version 7.25beta5",
    "guest: failure",
    "ssh from 192.168.88.17",
    "sentinel",
]

SUFFIX = re.compile(r", at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def test_dozens_of_rules_send_exactly_alertik_s_notifications(
    tmp_path: Path, spawn: Callable[..., Proc], webhook: WebhookServer
) -> None:
    env = base_env(tmp_path, GENERIC1_WEBHOOK_URL=f"{webhook.url}/hook")
    env["ENV_EVENTS"] = str(len(RULES))
    for i, (kind, match, mask) in enumerate(RULES):
        env[f"EVENT{i}_NOTIFIER"] = "Generic1"
        env[f"EVENT{i}_MATCH_TYPE"] = kind
        env[f"EVENT{i}_MATCH_STR"] = match
        env[f"EVENT{i}_MASK_MSG"] = mask
    run = spawn("run", env=env)
    port = udp_port_of(run)
    send_udp(port, *LINES)
    # The sentinel is the last alert of the last line: once it is in, every
    # alert before it has been delivered (one destination delivers in order).
    got = [r.json()["text"] for r in webhook.wait(len(EXPECTED), timeout=30)]
    assert all(SUFFIX.search(t) for t in got), got
    assert [SUFFIX.sub("", t) for t in got] == EXPECTED
    assert run.terminate() == 0
