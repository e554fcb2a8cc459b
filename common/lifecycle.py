"""One skeleton for every stage: open, loop, bounded drain, stop.

A stage is a ``Stage``: it opens its sockets through a ``Wiring``, handles one
turn of work at a time, says what is still pending, reports its counters and
leaves the closing to the ``Wiring``'s ``ExitStack``. ``serve()`` owns the rest,
the same for every stage:

1. open the stage (a configuration error closes what was opened and raises);
2. log ``<stage> listening on ...``;
3. poll, hand what is ready to ``stage.turn()``; send a heartbeat with the
   counters every STATUS_EVERY seconds (``alertik health`` asks the keeper for
   them); reload on SIGHUP; stop when the flag is set or the parent process
   went away;
4. log ``stopping (SIGNAL)``; ``stage.quiesce()`` (no new input from outside);
5. drain: keep turning until the stage is idle with nothing pending, at most
   ``ALERTIK_DRAIN_SECONDS`` (a second signal skips it), and say so in one error
   line when the deadline cut it off;
6. ``stage.finish(deadline)``, then close everything in reverse order of
   opening: PUSH sockets flush what they hold for ``LINGER_MS``;
7. log ``stopped: name=value ...``.

``run_stage()`` is each stage's ``main()``: configuration, logging, signals,
``serve()``, and the exit code (0 clean, 1 crash, 2 configuration error).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, ClassVar, TypeVar

import zmq

from alertik.common import sockets, status
from alertik.common.config import ENDPOINT_VARIABLES, Config, ConfigError
from alertik.common.metrics import Samples
from alertik.common.throttle import Throttled

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s"

# SIGTERM: supervisord and docker stop; SIGINT: Ctrl-C in a terminal.
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# SIGHUP: `alertik run` passes it on (or an admin sends it): reload.
RELOAD_SIGNAL = signal.SIGHUP
# While draining, input silent this long means the stage has caught up.
DRAIN_IDLE_MS = 50
# After the drain, a stage that pushes to another keeps its sockets open this
# long before closing them. libzmq's linger waits until a PUSH's queue has
# gone into its connection, not until the connection has written it out:
# what the connection still held when the socket closed (up to a few hundred
# messages) was lost whenever the next stage was behind, as after a flood.
# The wait lets the next stage catch up in the usual case; see
# bench/shutdown.py for what it does and does not cover.
HANDOFF_SECONDS = 0.25
# What a stop may take before the sockets close: supervisord's stopwaitsecs
# (10 s) less the sockets' 2 s linger. ALERTIK_DRAIN_SECONDS is at most this,
# and the hand-off only uses what the drain left of it.
STOP_BUDGET_SECONDS = 8.0
# How often a stage tells the keeper it is alive (and its counters).
STATUS_EVERY = 1.0

T = TypeVar("T")
Ready = Mapping[Any, int]  # what poll() reported: socket or fd -> events


class StopFlag:
    """Set by the first SIGTERM/SIGINT; a second one asks to skip the drain."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.force = False
        self.signal_name = ""
        self.reload = threading.Event()  # set by SIGHUP, cleared by serve()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, why: str = "") -> None:
        if why and not self.signal_name:
            self.signal_name = why
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def handle(self, signum: int, frame: object) -> None:
        """Signal handler: only records; the loop notices within POLL_MS."""
        if self._event.is_set():
            self.force = True
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def handle_reload(self, signum: int, frame: object) -> None:
        """SIGHUP handler: only records; the loop reloads within POLL_MS."""
        self.reload.set()


@contextmanager
def capture_signals(stop: StopFlag, reload: bool = False) -> Iterator[None]:
    """Install the stop (and reload) handlers, then restore the old ones."""
    previous = {sig: signal.signal(sig, stop.handle) for sig in HANDLED_SIGNALS}
    if reload:
        previous[RELOAD_SIGNAL] = signal.signal(RELOAD_SIGNAL, stop.handle_reload)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def setup_logging(level: str = "INFO") -> None:
    """One line per record on stderr, with logger name and pid."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


class Wiring:
    """Opens a stage's sockets and resources; all close together, in reverse.

    Endpoints are named as in ``Config.endpoints``; one that ZeroMQ cannot use
    is a ConfigError naming its variable (or ALERTIK_RUN_DIR for the default
    ipc socket under it). Sockets given to ``watch()`` are polled by serve().
    """

    def __init__(self, cfg: Config, ctx: sockets.Context, stack: ExitStack) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.stack = stack
        self.poller = zmq.Poller()
        self.security = sockets.Security.of(cfg.curve)
        if self.security.enabled:
            log.info("%s", self.security.describe())
        self._monitors: dict[Any, tuple[str, Callable[[int], None] | None]] = {}
        self.handshakes = Throttled(log, "handshakes failed")
        self.pushes = 0  # PUSH sockets opened: serve() hands off before closing

    def _make(self, name: str, make: Callable[..., zmq.Socket[bytes]]) -> Any:
        endpoint: str = getattr(self.cfg.endpoints, name)
        variable, file = ENDPOINT_VARIABLES[name]
        try:
            sock = make(self.ctx, endpoint, self.security)
        except zmq.ZMQError as exc:
            if endpoint == "ipc://" + os.path.join(self.cfg.run_dir, file):
                variable = "ALERTIK_RUN_DIR"
            raise ConfigError(
                variable, f"cannot use {endpoint}: {exc.strerror or exc}"
            ) from None
        except sockets.OpenToAnyone as exc:
            raise ConfigError("ALERTIK_CURVE_ALLOWED_CLIENTS", str(exc)) from None
        return self.hold(sock)

    def pull(self, name: str) -> zmq.Socket[bytes]:
        """A PULL bound to the endpoint of name, polled for input."""
        sock: zmq.Socket[bytes] = self._make(name, sockets.bind_pull)
        self.watch(sock)
        return sock

    def tap(self, name: str) -> zmq.Socket[bytes]:
        """A PUB for live taps, bound to the endpoint of name."""
        sock: zmq.Socket[bytes] = self._make(name, sockets.bind_tap)
        return sock

    def push(
        self, name: str, on_event: Callable[[int], None] | None = None
    ) -> zmq.Socket[bytes]:
        """A PUSH connected to the stage whose input is name.

        Its connection is watched when on_event wants to hear of it, or when
        it crosses hosts: a refused CURVE handshake is then logged here
        instead of showing only as a queue that never empties.
        """
        sock: zmq.Socket[bytes] = self._make(name, sockets.connect_push)
        self.pushes += 1
        endpoint: str = getattr(self.cfg.endpoints, name)
        if on_event is not None or endpoint.startswith("tcp://"):
            mon = self.hold(sockets.monitor(sock))
            self._monitors[mon] = (endpoint, on_event)
            self.watch(mon)
        return sock

    def hold(self, resource: T) -> T:
        """Close resource (anything with close()) when the stage closes."""
        self.stack.callback(resource.close)  # type: ignore[attr-defined]
        return resource

    def watch(self, sock: Any, flags: int = zmq.POLLIN) -> None:
        self.poller.register(sock, flags)

    def unwatch(self, sock: Any) -> None:
        self.poller.unregister(sock)

    def poll(self, timeout_ms: float) -> dict[Any, int]:
        """Poll, and deal with connection events; what the stage should see."""
        ready = dict(self.poller.poll(max(0, round(timeout_ms))))
        for mon in [m for m in self._monitors if m in ready]:
            del ready[mon]
            endpoint, on_event = self._monitors[mon]
            event = sockets.monitor_event(mon)
            if event in sockets.HANDSHAKE_FAILED:
                self.handshakes.hit(
                    f"with {endpoint}: {sockets.HANDSHAKE_FAILED[event]}"
                )
            if on_event is not None:
                on_event(event)
        return ready

    def stop_watching_connections(self) -> None:
        for mon in self._monitors:
            self.poller.unregister(mon)
        self._monitors.clear()


class Stage:
    """What serve() needs from a stage; the defaults suit a simple relay."""

    name: ClassVar[str]
    stop: StopFlag  # set by serve() before open()

    def open(self, wiring: Wiring) -> None:
        """Open sockets and files through wiring (ConfigError if unusable)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The endpoints, for the ``listening on`` line."""
        raise NotImplementedError

    def turn(self, ready: Ready) -> int:
        """Handle what poll() reported (and any due timers); work items done."""
        raise NotImplementedError

    def wait_ms(self) -> float:
        """How long the next poll may wait before turn() is due anyway."""
        return sockets.POLL_MS

    def reload(self) -> None:
        """SIGHUP: read what may change while running (rules, certificates).

        Keep running as before when the new version is unusable, and say so.
        """
        log.info("%s has nothing to reload", self.name)

    def quiesce(self) -> None:
        """Stop taking new input from outside; what is queued is still handled."""

    def pending(self) -> int:
        """Items accepted but not yet passed on (0 when turn() passes all on)."""
        return 0

    def finish(self, deadline: float) -> None:
        """Last work after the drain, until the monotonic deadline."""

    def counters(self) -> dict[str, int]:
        """Totals for the ``stopped`` line and the status file, in that order."""
        raise NotImplementedError

    def metrics(self) -> Samples:
        """What the stage counts for ALERTIK_METRICS_ADDR (``common/metrics.py``)."""
        return {}


def serve(
    stage: Stage, cfg: Config, stop: StopFlag, *, parent: int | None = None
) -> None:
    """Run stage until stop is set (or parent, a pid, is gone), then drain."""
    with zmq.Context() as ctx, ExitStack() as stack:
        wiring = Wiring(cfg, ctx, stack)
        stage.stop = stop
        stage.open(wiring)
        log.info("%s listening on %s", stage.name, stage.describe())
        reporter = status.Reporter(cfg.run_dir, stage.name)
        next_status = 0.0
        while not stop.is_set():
            stage.turn(wiring.poll(min(sockets.POLL_MS, stage.wait_ms())))
            if stop.reload.is_set():
                stop.reload.clear()
                log.info("reloading (SIGHUP)")
                stage.reload()
            now = time.monotonic()
            if now >= next_status:
                next_status = now + STATUS_EVERY
                reporter.write(stage.counters(), stage.metrics())
                if _orphaned(parent, cfg.keeper_pid):
                    log.warning("parent process %d went away", parent)
                    stop.set("parent gone")
        log.info("stopping (%s)", stop.signal_name or "requested")
        stopping = time.monotonic()
        wiring.stop_watching_connections()
        stage.quiesce()
        deadline = time.monotonic() + (0.0 if stop.force else cfg.drain_seconds)
        _drain(stage, wiring, deadline, stop)
        stage.finish(deadline)
        wiring.handshakes.flush()
        counters = stage.counters()
        reporter.close()
        if wiring.pushes and not stop.force:
            left = STOP_BUDGET_SECONDS - (time.monotonic() - stopping)
            time.sleep(max(0.0, min(HANDOFF_SECONDS, left)))  # see HANDOFF_SECONDS
    # The ExitStack closed the sockets (PUSHes flushed within their linger).
    log.info(
        "stopped: %s", " ".join(f"{name}={value}" for name, value in counters.items())
    )


def _orphaned(parent: int | None, keeper: int) -> bool:
    """Whether the process that started this stage is gone.

    Under alertik run a stage's parent is supervisord, never the keeper: a
    stage adopted by the keeper (its subreaper) lost its supervisord, even if
    that happened before the stage could note who its parent was.
    """
    if parent is None:
        return False
    now = os.getppid()
    return now != parent or (keeper != 0 and now == keeper)


def _drain(stage: Stage, wiring: Wiring, deadline: float, stop: StopFlag) -> None:
    """Turn until idle with nothing pending, or until the deadline."""
    while True:
        remaining = deadline - time.monotonic()
        out_of_time = remaining <= 0 or stop.force
        wait = 0.0 if out_of_time else min(DRAIN_IDLE_MS, remaining * 1000)
        idle = stage.turn(wiring.poll(min(wait, stage.wait_ms()))) == 0
        if idle and stage.pending() == 0:
            return
        if out_of_time:
            break
    log.error(
        "drain cut off by %s: input was still arriving, %d items pending",
        "a second signal"
        if stop.force
        else f"ALERTIK_DRAIN_SECONDS={wiring.cfg.drain_seconds:g}",
        stage.pending(),
    )


def run_stage(stage: Callable[[Config], Stage]) -> int:
    """A stage's main(): load config, log, handle signals, serve; an exit code."""
    from alertik.common.config import load

    try:
        cfg = load()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level)
    stop = StopFlag()
    name = "stage"
    with capture_signals(stop, reload=True):
        try:
            made = stage(cfg)
            name = made.name
            serve(made, cfg, stop, parent=os.getppid())
        except ConfigError as exc:
            log.error("%s: configuration error: %s", name, exc)
            return 2
        except Exception:
            log.exception("%s crashed", name)
            return 1
    return 0
