"""``alertik tap STAGE``: print what a running stage emits, one JSON object a line.

Every stage publishes each message it sends on (ingest: events; matcher:
alerts; notify: delivery outcomes; forwarder: what it relayed) on a PUB socket,
its tap. This tool subscribes to one tap and prints each message as it passes:

* the message's fields as msgspec encodes them, its kind first under
  ``"type"`` (``SyslogEvent``, ``Alert``, ``Delivery``);
* for a ``SyslogEvent``, ``"text"`` right after ``"type"``: the raw bytes
  decoded as UTF-8 (invalid bytes become U+FFFD, as in the log archive), while
  ``"raw"`` keeps the exact bytes in base64.

Status lines (connected, disconnected, refused, nothing there yet) go to
stderr, so stdout stays pure JSON lines. With nothing to read (no such
socket, a socket nobody is bound to, a port where nothing listens) the tap
says so once and waits: it connects when the stage starts.

A tap only reads: it never slows the stage (the stage drops what a slow
reader cannot take) and it sees only what passes after it has
connected.

Exit status: 0 when stopped by SIGINT/SIGTERM, after ``--count`` messages, or
when ``--timeout`` ends a run without ``--count``; 1 when ``--timeout`` comes
before ``--count`` messages; 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import msgspec
import zmq

from alertik.common import config as config_mod, sockets
from alertik.common.config import PIPELINE, ConfigError
from alertik.common.lifecycle import StopFlag, capture_signals
from alertik.common.schema import JSON_ENCODER, MESSAGE_DECODER, SyslogEvent

# How much of an undecodable message is shown in the warning.
REPR_BYTES = 64


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alertik tap",
        description="Print what a running stage emits, one JSON object per line, "
        "until interrupted. The tap endpoint comes from ALERTIK_<STAGE>_TAP "
        "(default: ipc under ALERTIK_RUN_DIR) unless --run-dir or --addr is given.",
    )
    parser.add_argument("stage", choices=PIPELINE, help="the stage to watch")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--run-dir", metavar="DIR", help="the run dir of the stage (ipc taps)"
    )
    where.add_argument(
        "--addr",
        metavar="ENDPOINT",
        help="the tap endpoint itself, e.g. tcp://192.0.2.10:5561",
    )
    parser.add_argument(
        "--count", type=_positive_int, metavar="N", help="stop after N messages"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this long (exit 1 if --count was not reached)",
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not more than 0")
    return value


# Bind-only hosts, and where a reader on the same host connects instead.
WILDCARDS = {"*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}


def endpoint_for(
    stage: str, cfg: config_mod.Config, run_dir: str | None, addr: str | None
) -> str:
    """The tap endpoint to read: --addr, else --run-dir, else the configuration.

    A ``tcp://*:PORT`` the stage binds is read at this host's loopback address;
    ValueError when the port is ``*`` (only the stage knows which it got).
    """
    if run_dir:
        return f"ipc://{os.path.join(os.path.abspath(run_dir), 'tap-' + stage)}"
    endpoint: str = addr or getattr(cfg.endpoints, f"{stage}_tap")
    if not endpoint.startswith("tcp://"):
        return endpoint
    host, _, port = endpoint[len("tcp://") :].rpartition(":")
    if port == "*":
        raise ValueError(
            f"{endpoint} is a random port; pass --addr with the port the stage bound"
        )
    return f"tcp://{WILDCARDS.get(host, host)}:{port}"


def to_json(frame: bytes) -> bytes:
    """One tap message as a JSON line (without the newline); DecodeError if junk."""
    message = MESSAGE_DECODER.decode(frame)
    data: dict[str, Any] = msgspec.to_builtins(message)
    shown: dict[str, Any] = {"type": data.pop("type")}
    if isinstance(message, SyslogEvent):
        shown["text"] = message.raw.decode("utf-8", "replace")
    shown.update(data)
    return JSON_ENCODER.encode(shown)


def _status(text: str) -> None:
    print(f"tap: {text}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_mod.load()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        endpoint = endpoint_for(args.stage, cfg, args.run_dir, args.addr)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = StopFlag()
    with capture_signals(stop), zmq.Context() as ctx:
        # A tap on another host's tcp:// endpoint is a CURVE client like any
        # stage that connects; the keys come from the same variables.
        sub = sockets.connect_tap(ctx, endpoint, sockets.Security.of(cfg.curve))
        mon = sockets.monitor(sub, sockets.MONITOR_EVENTS | Status.ATTEMPTS)
        try:
            return _loop(args, endpoint, sub, mon, stop)
        finally:
            sub.disable_monitor()
            mon.close()
            sub.close()


def _loop(
    args: argparse.Namespace,
    endpoint: str,
    sub: zmq.Socket[bytes],
    mon: zmq.Socket[bytes],
    stop: StopFlag,
) -> int:
    out = sys.stdout.buffer
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    printed = 0
    skipped = 0
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(mon, zmq.POLLIN)
    status = Status(endpoint, args.stage)
    _status(f"reading the {args.stage} tap at {endpoint}")
    while not stop.is_set():
        wait_ms = sockets.POLL_MS
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                if args.count is not None:
                    _status(f"timed out after {printed} of {args.count} messages")
                    return 1
                break
            wait_ms = min(wait_ms, max(1, int(left * 1000)))
        ready = dict(poller.poll(wait_ms))
        if mon in ready:
            status.event(sockets.monitor_event(mon))
        if sub not in ready:
            continue
        frame = sub.recv()
        try:
            line = to_json(frame)
        except msgspec.DecodeError as exc:
            skipped += 1
            _status(f"skipped an undecodable message ({exc}): {frame[:REPR_BYTES]!r}")
            continue
        try:
            out.write(line + b"\n")
            out.flush()
        except BrokenPipeError:
            # The reader went away (| head): stop quietly, as cat does.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return 0
        printed += 1
        if args.count is not None and printed >= args.count:
            break
    _status(f"stopped: printed={printed} skipped={skipped}")
    return 0


class Status:
    """Says on stderr what the tap's connection does, each thing once per try."""

    # An attempt that reached the other end (before any handshake), and the
    # retry that follows every attempt that did not lead to a connection.
    ATTEMPTS = zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED

    def __init__(self, endpoint: str, stage: str = "stage") -> None:
        self.endpoint = endpoint
        self.stage = stage
        self.connected = False  # handshake done
        self.reached = False  # the current attempt found someone
        self.said: set[str] = set()

    def nothing_there(self) -> str:
        """Why a connection attempt found nobody, in the admin's terms."""
        where = self.endpoint
        if where.startswith("ipc://"):
            path = where[len("ipc://") :]
            if not os.path.exists(path):
                return (
                    f"nothing to read at {where}: no such socket; no {self.stage} "
                    "runs with this run directory (ALERTIK_RUN_DIR, or --run-dir); "
                    "waiting for one"
                )
            return (
                f"nothing to read at {where}: the socket is there but nobody is "
                f"bound to it (did {self.stage} stop?); waiting for one"
            )
        return f"nothing to read at {where}: nothing listens there; waiting for it"

    def event(self, kind: int) -> None:
        """Report one monitor event; libzmq repeats failures every retry."""
        where = self.endpoint
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.connected = True
            self.said.clear()
            _status(f"connected to {where}")
        elif kind == zmq.EVENT_DISCONNECTED and self.connected:
            self.connected = False
            _status(f"disconnected from {where}; reconnecting")
        elif kind == zmq.EVENT_DISCONNECTED:
            if not self.said:  # a refusal already said why
                self.say(
                    f"{where} closed the connection during the handshake: check "
                    "that both ends use CURVE and that ALERTIK_CURVE_SERVER_KEY "
                    "is its public key"
                )
        elif kind == zmq.EVENT_CONNECTED:
            self.reached = True
        elif kind == zmq.EVENT_CONNECT_RETRIED:
            # libzmq retries every 100 ms or so; said once until connected.
            if not self.reached:
                self.say(self.nothing_there())
            self.reached = False
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self.say(f"{where} refused this host's CURVE key (see ALERTIK_CURVE_*)")
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            self.say(f"handshake with {where} failed: check the ALERTIK_CURVE_* keys")

    def say(self, text: str) -> None:
        if text not in self.said:
            self.said.add(text)
            _status(text)
