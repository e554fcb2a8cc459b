"""A split set-up: stages as separate processes over TCP, taps, and CURVE.

Every stage here is its own ``alertik <stage>`` process talking over TCP on
127.0.0.1, as stages on different hosts would. Endpoints are never pre-picked:
a stage binds ``tcp://127.0.0.1:*`` and logs what it got; where a test needs a
stage to come back on a known port (a restart, or connectors started before
their binder), an earlier run of that stage picked the port and a later run
binds it again.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from alertik.common import sockets
from alertik.common.schema import ALERT_DECODER, Alert
from tests.support import (
    Proc,
    WebhookServer,
    base_env,
    endpoint_of,
    events_env,
    receive_alerts,
    wait_for,
)

Spawn = Callable[..., Proc]

# One rule for every test: the token names the line, the mask shows where it
# came from, so alerts from two routers stay apart.
RULE = (
    "Generic1",
    "regex",
    r"^split ([a-z]+-[0-9]+)$",
    "@1 via @{node} from @{sender}",
)
ALERT_TEXT = re.compile(r"([a-z]+-[0-9]+) via (\S+) from (\S+)")


def stage_env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    """Env for the stages of one test: the one rule, to a local webhook."""
    return base_env(
        tmp_path,
        GENERIC1_WEBHOOK_URL=url,
        ALERTIK_TIME_SUFFIX="",
        **events_env(RULE),
        **extra,
    )


def udp_port(proc: Proc) -> int:
    """The UDP port an ingest logged that it listens on."""
    line = proc.wait_line("ingest listening on udp ")
    match = re.search(r"listening on udp (?:\[[^\]]*\]|[^\s:]+):(\d+)", line)
    assert match, line
    return int(match.group(1))


def second_loopback() -> str:
    """A source address other than 127.0.0.1 where the OS offers one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.2", 0))
        except OSError:
            return "127.0.0.1"  # e.g. macOS: only 127.0.0.1 is configured
    return "127.0.0.2"


def send_lines(port: int, tokens: list[str], source: str = "127.0.0.1") -> None:
    """One ``split TOKEN`` datagram per token, sent from source to 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        for token in tokens:
            s.sendto(f"split {token}".encode(), ("127.0.0.1", port))


def tokens(prefix: str, first: int, count: int) -> list[str]:
    return [f"{prefix}-{n}" for n in range(first, first + count)]


def delivered(server: WebhookServer) -> dict[str, tuple[str, str]]:
    """Token -> (node, sender) of every alert that reached the webhook.

    Read from the request texts, so a digest of several alerts counts each."""
    seen: dict[str, tuple[str, str]] = {}
    for req in list(server.requests):
        for token, node, sender in ALERT_TEXT.findall(req.json()["text"]):
            seen[token] = (node, sender)
    return seen


def learn_port(spawn: Spawn, stage: str, env: dict[str, str]) -> str:
    """Run stage once on ``tcp://127.0.0.1:*`` and stop it: the endpoint it got.

    The OS chose the port for a real stage, which later binds it again; that
    is how a fixed endpoint is known before the stage that binds it is up."""
    var = f"ALERTIK_{stage.upper()}_ADDR"
    proc = spawn(stage, env={**env, var: "tcp://127.0.0.1:*"})
    endpoint = endpoint_of(proc, stage)
    assert proc.terminate() == 0, proc.output
    return endpoint


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[zmq.Socket[bytes], str]]:
    """A PULL socket standing in for notify, on an ipc path (never CURVE)."""
    with zmq.Context() as ctx:
        sock = ctx.socket(zmq.PULL)
        endpoint = f"ipc://{tmp_path}/notify-sink"
        sock.bind(endpoint)
        yield sock, endpoint
        sock.close(linger=0)


def receive_while(
    sock: zmq.Socket[bytes], busy: Callable[[], bool], got: list[Alert]
) -> None:
    """Keep receiving into got, as notify would, for as long as busy() holds."""
    while busy():
        if sock.poll(20):
            got.append(ALERT_DECODER.decode(sock.recv()))


def receive_through(sock: zmq.Socket[bytes], token: str, got: list[Alert]) -> None:
    """Receive alerts into got until the one for token is among them."""
    if any(token_of(a) == token for a in got):
        return
    while True:
        assert sock.poll(10_000), f"{token} never arrived ({len(got)} alerts did)"
        got.append(ALERT_DECODER.decode(sock.recv()))
        if token_of(got[-1]) == token:
            return


def token_of(alert: Alert) -> str:
    match = ALERT_TEXT.match(alert.text)
    assert match, alert.text
    return match.group(1)


def test_two_ingests_feed_one_matcher_and_notify_started_in_reverse_order(
    tmp_path: Path, spawn: Spawn, webhook: WebhookServer
) -> None:
    """1. learn a port for notify and one for the matcher (each bound once);
    2. start two ingests (nodes router-a and router-b) that feed the matcher's
       port; nothing listens there yet; send 5 lines to each;
    3. start the matcher, which connects to notify's port: nothing there yet;
       send 5 more lines to each;
    4. start notify; send 5 more lines to each.
    Result: all 30 alerts reach the webhook, each naming the node and the
    sender it came through, and every stage stops with status 0."""
    env = stage_env(tmp_path, webhook.url)
    notify_addr = learn_port(spawn, "notify", env)
    env["ALERTIK_NOTIFY_ADDR"] = notify_addr
    matcher_addr = learn_port(spawn, "matcher", env)
    env["ALERTIK_MATCHER_ADDR"] = matcher_addr
    source_b = second_loopback()
    ingest_a = spawn("ingest", env={**env, "ALERTIK_NODE_NAME": "router-a"})
    # Another host in real life; here it needs its own run dir (for its tap).
    ingest_b = spawn(
        "ingest",
        env={
            **env,
            "ALERTIK_NODE_NAME": "router-b",
            "ALERTIK_RUN_DIR": str(tmp_path / "run-b"),
        },
    )
    port_a, port_b = udp_port(ingest_a), udp_port(ingest_b)

    def both(first: int) -> None:
        send_lines(port_a, tokens("a", first, 5))
        send_lines(port_b, tokens("b", first, 5), source=source_b)

    both(0)
    matcher = spawn("matcher", env=env)
    assert endpoint_of(matcher, "matcher") == matcher_addr
    both(5)
    notify = spawn("notify", env=env)
    assert endpoint_of(notify, "notify") == notify_addr
    both(10)

    wait_for(lambda: len(delivered(webhook)) >= 30, what="30 alerts")
    seen = delivered(webhook)
    assert seen == {
        **{t: ("router-a", "127.0.0.1") for t in tokens("a", 0, 15)},
        **{t: ("router-b", source_b) for t in tokens("b", 0, 15)},
    }
    for proc in (ingest_a, ingest_b, matcher, notify):
        assert proc.terminate() == 0, proc.output


@pytest.mark.e2e
def test_run_with_stages_starts_only_the_server_half_and_a_lone_ingest_feeds_it(
    tmp_path: Path, spawn: Spawn, webhook: WebhookServer
) -> None:
    """1. `alertik run --stages matcher,notify`, the matcher on TCP;
    2. `alertik ingest` on its own, fed to the matcher's port;
    3. send a line; then SIGTERM both.
    Result: supervisord started matcher and notify only; the alert arrives
    naming the lone ingest's node; both exit 0."""
    env = stage_env(tmp_path, webhook.url, ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*")
    server = spawn("run", "--stages", "matcher,notify", env=env)
    matcher_addr = endpoint_of(server, "matcher")
    endpoint_of(server, "notify")
    ingest = spawn(
        "ingest",
        env={
            **env,
            "ALERTIK_MATCHER_ADDR": matcher_addr,
            "ALERTIK_NODE_NAME": "router-lone",
            "ALERTIK_RUN_DIR": str(tmp_path / "run-router"),
        },
    )
    send_lines(udp_port(ingest), ["lone-1"])
    wait_for(lambda: delivered(webhook), what="the alert")
    assert delivered(webhook) == {"lone-1": ("router-lone", "127.0.0.1")}
    assert ingest.terminate() == 0
    assert server.terminate() == 0
    assert "ingest listening" not in server.output
    assert "spawned: 'ingest'" not in server.output
    bad = spawn("run", "--stages", "matcher,router", env=env)
    assert bad.popen.wait(10) == 2
    assert "router is not a stage" in bad.output


class Stream(threading.Thread):
    """Sends ``split s-N`` to an ingest about once a millisecond until halted."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sent = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            # The pace of a busy router, not a wait for anything.
            while not self.halt.wait(0.001):
                s.sendto(f"split s-{self.sent}".encode(), ("127.0.0.1", self.port))
                self.sent += 1


def spans(numbers: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs in sorted numbers, as (first, last) pairs."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def test_a_matcher_restart_loses_nothing_sent_after_the_new_matcher_is_up(
    tmp_path: Path,
    spawn: Spawn,
    sink: tuple[zmq.Socket[bytes], str],
    record_property: Callable[[str, object], None],
) -> None:
    """1. matcher on tcp://127.0.0.1:*, an ingest, and a stream of a line a
       millisecond into the ingest that never pauses;
    2. SIGTERM the matcher; once it has exited start a new one on the same
       port, and let the stream run on a little;
    3. stop the stream and collect every alert.
    Result: every line sent after the new matcher was up arrives, nothing
    arrives twice, and the ingest never restarts. What the old matcher still
    had in flight when its drain ended is lost; the test reports it."""
    sock, notify_addr = sink
    env = stage_env(
        tmp_path,
        "http://127.0.0.1:9/unused",
        ALERTIK_NOTIFY_ADDR=notify_addr,
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
        # Under a steady stream the drain never goes idle: it ends here.
        ALERTIK_DRAIN_SECONDS="0.3",
    )
    first = spawn("matcher", env=env)
    matcher_addr = endpoint_of(first, "matcher")
    ingest = spawn("ingest", env={**env, "ALERTIK_MATCHER_ADDR": matcher_addr})
    stream = Stream(udp_port(ingest))
    stream.start()
    got = receive_alerts(sock, 50)

    at_term = stream.sent
    first.popen.terminate()
    receive_while(sock, lambda: first.popen.poll() is None, got)
    assert first.popen.returncode == 0, first.output
    at_exit = stream.sent
    second = spawn("matcher", env={**env, "ALERTIK_MATCHER_ADDR": matcher_addr})
    receive_while(sock, lambda: "matcher listening on" not in second.output, got)
    at_up = stream.sent
    assert endpoint_of(second, "matcher") == matcher_addr
    receive_through(sock, f"s-{at_up + 100}", got)
    stream.halt.set()
    stream.join(5)
    last = stream.sent - 1
    receive_through(sock, f"s-{last}", got)

    numbers = [int(token_of(a)[2:]) for a in got]
    assert len(numbers) == len(set(numbers)), "an alert arrived twice"
    lost = sorted(set(range(last + 1)) - set(numbers))
    report = {
        "sent": last + 1,
        "sigterm_at": at_term,
        "old_matcher_exited_at": at_exit,
        "new_matcher_up_at": at_up,
        "lost": len(lost),
        "lost_spans": spans(lost),
    }
    record_property("matcher_restart", report)
    print(f"matcher restart: {report}")
    assert not [n for n in lost if n >= at_up], report
    assert ingest.terminate() == 0
    assert f"stopped: received={last + 1} dropped=0" in ingest.output


def test_tap_prints_what_the_matcher_and_ingest_emit_as_json_lines(
    tmp_path: Path, spawn: Spawn, sink: tuple[zmq.Socket[bytes], str]
) -> None:
    """1. matcher and ingest over TCP, taps on their default ipc endpoints;
    2. `alertik tap matcher --addr ... --count 3` and `alertik tap ingest
       --count 4` (endpoint from the configuration) in subprocesses;
    3. once both say they are connected, send three matching lines and one
       that matches nothing.
    Result: the matcher tap prints the three alerts, the ingest tap the four
    events with their text, one JSON object per line; both exit 0."""
    sock, notify_addr = sink
    env = stage_env(
        tmp_path,
        "http://127.0.0.1:9/unused",
        ALERTIK_NOTIFY_ADDR=notify_addr,
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
        ALERTIK_NODE_NAME="router-t",
    )
    matcher = spawn("matcher", env=env)
    env["ALERTIK_MATCHER_ADDR"] = endpoint_of(matcher, "matcher")
    ingest = spawn("ingest", env=env)
    port = udp_port(ingest)
    tap_addr = f"ipc://{tmp_path}/run/tap-matcher"
    alerts_tap = spawn("tap", "matcher", "--addr", tap_addr, "--count", "3", env=env)
    events_tap = spawn("tap", "ingest", "--count", "4", "--timeout", "20", env=env)
    alerts_tap.wait_line(f"tap: connected to {tap_addr}")
    events_tap.wait_line("tap: connected to ")

    send_lines(port, ["t-1", "t-2"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"no rule matches caf\xe9", ("127.0.0.1", port))
    send_lines(port, ["t-3"])

    assert alerts_tap.popen.wait(10) == 0, alerts_tap.output
    assert events_tap.popen.wait(10) == 0, events_tap.output
    alerts = [json.loads(x) for x in alerts_tap.lines if x.startswith("{")]
    assert [a["type"] for a in alerts] == ["Alert"] * 3
    assert [a["text"] for a in alerts] == [
        f"t-{n} via router-t from 127.0.0.1" for n in (1, 2, 3)
    ]
    assert {a["rule"] for a in alerts} == {"EVENT0"}
    assert {a["node"] for a in alerts} == {"router-t"}
    events = [json.loads(x) for x in events_tap.lines if x.startswith("{")]
    assert [e["type"] for e in events] == ["SyslogEvent"] * 4
    assert [e["text"] for e in events] == [
        "split t-1",
        "split t-2",
        "no rule matches caf\ufffd",
        "split t-3",
    ]
    assert events[2]["raw"] == "bm8gcnVsZSBtYXRjaGVzIGNhZuk="  # base64: exact bytes
    assert list(events[0])[:2] == ["type", "text"]
    assert "tap: stopped: printed=3 skipped=0" in alerts_tap.output
    receive_alerts(sock, 3)  # the taps took nothing away from notify


def test_a_tap_stops_cleanly_on_sigint_and_says_so_when_its_deadline_passes(
    tmp_path: Path, spawn: Spawn
) -> None:
    env = base_env(tmp_path)
    idle = spawn("tap", "notify", "--run-dir", str(tmp_path / "run"), env=env)
    idle.wait_line("tap: reading the notify tap at ipc://")
    idle.popen.send_signal(signal.SIGINT)  # as Ctrl-C
    assert idle.popen.wait(10) == 0
    assert "Traceback" not in idle.output
    late = spawn("tap", "matcher", "--count", "1", "--timeout", "0.3", env=env)
    assert late.popen.wait(10) == 1
    assert "timed out after 0 of 1 messages" in late.output
    bad = spawn("tap", "router", env=env)
    assert bad.popen.wait(10) == 2


@pytest.fixture
def keys() -> dict[str, tuple[str, str]]:
    """(public, secret) Z85 pairs: the server, an allowed client, an intruder."""
    pairs = {}
    for name in ("server", "client", "intruder"):
        public, secret = zmq.curve_keypair()
        pairs[name] = (public.decode(), secret.decode())
    return pairs


def test_with_curve_an_allowed_ingest_gets_through_and_other_keys_get_nothing(
    tmp_path: Path,
    spawn: Spawn,
    sink: tuple[zmq.Socket[bytes], str],
    keys: dict[str, tuple[str, str]],
) -> None:
    """1. a matcher with CURVE that allows one client key;
    2. an ingest with a key the matcher does not allow sends a line;
    3. an ingest that does not know the server's key sends a line;
    4. the allowed ingest sends two lines.
    Result: only the allowed ingest's alerts arrive; the matcher logged the
    refused key with its address; all stop with status 0."""
    sock, notify_addr = sink
    server_public, server_secret = keys["server"]
    env = stage_env(
        tmp_path,
        "http://127.0.0.1:9/unused",
        ALERTIK_NOTIFY_ADDR=notify_addr,
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
    )
    matcher = spawn(
        "matcher",
        env={
            **env,
            "ALERTIK_CURVE_SECRET_KEY": server_secret,
            "ALERTIK_CURVE_ALLOWED_CLIENTS": keys["client"][0],
        },
    )
    matcher_addr = endpoint_of(matcher, "matcher")
    matcher.wait_line(f"CURVE on for tcp:// links: public key {server_public}")

    def ingest(node: str, secret: str, server_key: str) -> tuple[Proc, int]:
        proc = spawn(
            "ingest",
            env={
                **env,
                "ALERTIK_MATCHER_ADDR": matcher_addr,
                "ALERTIK_NODE_NAME": node,
                "ALERTIK_CURVE_SECRET_KEY": secret,
                "ALERTIK_CURVE_SERVER_KEY": server_key,
            },
        )
        return proc, udp_port(proc)

    intruder, intruder_port = ingest("intruder", keys["intruder"][1], server_public)
    send_lines(intruder_port, ["x-1"])
    matcher.wait_line(
        f"refused a CURVE client from 127.0.0.1: public key {keys['intruder'][0]} "
        "is not in ALERTIK_CURVE_ALLOWED_CLIENTS"
    )
    # Knows an allowed key pair but not the server's public key.
    guesser, guesser_port = ingest("guesser", keys["client"][1], keys["intruder"][0])
    send_lines(guesser_port, ["g-1"])
    allowed, allowed_port = ingest("allowed", keys["client"][1], server_public)
    send_lines(allowed_port, ["c-1", "c-2"])
    # Each refused client says why in its own log, instead of only counting
    # events that never leave its queue.
    intruder.wait_line("refused by the server: this public key is not in")
    guesser.wait_line("the peer closed the handshake: check ALERTIK_CURVE_SERVER_KEY")

    alerts = receive_alerts(sock, 2)
    assert [(a.node, token_of(a)) for a in alerts] == [
        ("allowed", "c-1"),
        ("allowed", "c-2"),
    ]
    # A refused ingest keeps its line queued; on SIGTERM it gives it up after
    # LINGER_MS and still exits 0. All stop at once, to wait for that once.
    everyone = (allowed, intruder, guesser, matcher)
    for proc in everyone:
        proc.popen.terminate()
    for proc in everyone:
        assert proc.popen.wait(10) == 0, proc.output
    # Two lines in the matcher's whole life: the refused ones never reached it.
    assert "stopped: handled=2 alerts=2" in matcher.output


def test_a_curve_server_without_an_allow_list_refuses_to_start_unless_told(
    tmp_path: Path, spawn: Spawn, keys: dict[str, tuple[str, str]]
) -> None:
    """CURVE without an allow-list is encryption without authentication: any
    client that learns the public key (logged at start-up) gets in."""
    env = stage_env(
        tmp_path,
        "http://127.0.0.1:9/unused",
        ALERTIK_MATCHER_ADDR="tcp://127.0.0.1:*",
        ALERTIK_CURVE_SECRET_KEY=keys["server"][1],
    )
    refused = spawn("matcher", env=env)
    assert refused.popen.wait(10) == 2
    assert "ALERTIK_CURVE_ALLOWED_CLIENTS: is not set" in refused.output
    assert "ALERTIK_CURVE_ALLOW_ANY=yes" in refused.output
    told = spawn("matcher", env={**env, "ALERTIK_CURVE_ALLOW_ANY": "yes"})
    told.wait_line("any client that knows this public key")
    endpoint_of(told, "matcher")
    assert told.terminate() == 0


def test_closing_the_last_curve_server_socket_stops_the_zap_thread(
    keys: dict[str, tuple[str, str]],
) -> None:
    """In-process: the ZAP thread lives exactly as long as the CURVE servers,
    so a stage's context terminates without hanging or leaking a thread."""
    before = threading.active_count()
    security = sockets.Security(keys["server"][1], allowed=(keys["client"][0],))
    with zmq.Context() as ctx:
        pull = sockets.bind_pull(ctx, "tcp://127.0.0.1:*", security)
        tap = sockets.bind_tap(ctx, "tcp://127.0.0.1:*", security)
        assert threading.active_count() == before + 1
        pull.close()
        assert threading.active_count() == before + 1  # the tap still uses it
        tap.close()
        assert threading.active_count() == before
    # Without an allow-list no ZAP thread is needed at all.
    security = sockets.Security(keys["server"][1], allow_any=True)
    with zmq.Context() as ctx:
        sockets.bind_pull(ctx, "tcp://127.0.0.1:*", security).close()
        assert threading.active_count() == before


def test_binding_tcp_beyond_loopback_without_curve_warns_once_naming_keygen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    none = sockets.NO_SECURITY
    with (
        zmq.Context() as ctx,
        caplog.at_level("WARNING", logger="alertik.common.sockets"),
    ):
        sockets.bind_pull(ctx, "tcp://127.0.0.1:*", none).close()
        assert caplog.messages == []
        sockets.bind_pull(ctx, "tcp://0.0.0.0:*", none).close()
    assert len(caplog.messages) == 1
    assert "tcp://0.0.0.0:*" in caplog.messages[0]
    assert "alertik keygen" in caplog.messages[0]


def test_a_key_that_is_not_z85_is_a_configuration_error_naming_the_variable(
    tmp_path: Path, spawn: Spawn
) -> None:
    env = base_env(tmp_path, ALERTIK_CURVE_SECRET_KEY="~" * 40)
    proc = spawn("matcher", env=env)
    assert proc.popen.wait(10) == 2
    assert "ALERTIK_CURVE_SECRET_KEY: is not a Z85 CURVE key" in proc.output
    assert "Traceback" not in proc.output
