"""``alertik run``: check, make the run directory safe, bind UDP, become the keeper.

``run`` checks the whole configuration, makes the run directory safe, binds
the UDP port itself (so the port is taken within a fraction of a second and
a port in use is reported at once, naming ALERTIK_UDP_PORT), then becomes the
keeper (``alertik/keeper.py``), which starts supervisord and hands the
socket to ingest.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from importlib import resources

from alertik.common.config import STAGES, Config, ConfigError

log = logging.getLogger("alertik.run")

USAGE_EXIT = 2


def safe_run_dir(path: str) -> None:
    """Create the run directory, or refuse one another user could tamper with.

    supervisord writes its pid file there and the stages their sockets: in a
    directory that someone else owns or may write, a planted link or socket
    would be followed by us (as root, perhaps).
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise ConfigError(
            "ALERTIK_RUN_DIR", f"cannot create {path}: {exc.strerror or exc}"
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(
            "ALERTIK_RUN_DIR", f"{path} is not a directory; choose another path"
        )
    if info.st_uid != os.getuid():
        raise ConfigError(
            "ALERTIK_RUN_DIR",
            f"{path} belongs to another user (uid {info.st_uid}); use a directory "
            "of your own, such as $XDG_RUNTIME_DIR/alertik",
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(
            "ALERTIK_RUN_DIR",
            f"{path} may be written by other users (mode "
            f"{stat.S_IMODE(info.st_mode):o}); chmod 700 it or choose another",
        )


def _stages(cfg: Config, wanted: str | None) -> tuple[str, ...]:
    if not wanted:
        return cfg.stages
    stages = tuple(s for s in wanted.split(",") if s)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(
            "--stages", f"{', '.join(unknown)} is not a stage; use " + ",".join(STAGES)
        )
    if "forwarder" in stages and cfg.forwarder is None:
        raise ConfigError("--stages", "forwarder needs FORWARD_HOST and FORWARD_PORT")
    if "web" in stages and not cfg.web.enabled:
        raise ConfigError(
            "--stages", "web needs ALERTIK_WEB_ADDR or ALERTIK_METRICS_ADDR"
        )
    return stages


def preflight(cfg: Config) -> list[str]:
    """For `alertik check`: ports already in use, directories not writable.

    Warnings, not errors: `check` is also run beside a running alertik,
    which holds the ports itself.
    """
    import socket

    from alertik.ingest.listen import listen_error, open_socket

    found = []
    ingest = cfg.ingest
    ports = [("udp", socket.SOCK_DGRAM, ingest.udp_port)]
    if ingest.tcp_port is not None:
        ports.append(("tcp", socket.SOCK_STREAM, ingest.tcp_port))
    for kind, sock_type, port in ports:
        if port == 0:
            continue
        try:
            open_socket(ingest.bind, port, sock_type).close()
        except OSError as exc:
            found.append(f"{listen_error(kind, ingest.bind, port, exc)} (is alertik "
                         "already running?)")  # fmt: skip
    directories = [
        ("ALERTIK_STATE_DIR", cfg.state_dir),
        ("ALERTIK_RUN_DIR", cfg.run_dir),
    ]
    if cfg.log_file:
        directories.append(("ALERTIK_LOG_FILE", os.path.dirname(cfg.log_file)))
    for variable, path in directories:
        existing = path
        while not os.path.exists(existing) and os.path.dirname(existing) != existing:
            existing = os.path.dirname(existing)
        if not os.access(existing, os.W_OK | os.X_OK):
            found.append(f"{variable}: {existing} is not writable by this user")
    return found


def run(cfg: Config, args: argparse.Namespace) -> int:
    """Everything checked: bind, then become the keeper of supervisord."""
    try:
        stages = _stages(cfg, args.stages)
        safe_run_dir(cfg.run_dir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    env = dict(os.environ)
    if "ingest" in stages:
        from alertik.ingest.listen import listen_error, open_udp

        ingest = cfg.ingest
        try:
            udp = open_udp(ingest.bind, ingest.udp_port)
        except OSError as exc:
            error = listen_error("udp", ingest.bind, ingest.udp_port, exc)
            print(f"error: {error}", file=sys.stderr)
            return USAGE_EXIT
        udp.set_inheritable(True)
        env["ALERTIK_KEEPER_UDP_FD"] = str(udp.fileno())
    env["ALERTIK_RUN_DIR"] = cfg.run_dir
    env["ALERTIK_PYTHON"] = sys.executable
    for stage in STAGES:
        env[f"ALERTIK_START_{stage.upper()}"] = "true" if stage in stages else "false"
    conf = resources.files("alertik").joinpath("supervisord.conf")
    with resources.as_file(conf) as path:
        supervisord = [sys.executable, "-P", "-m", "alertik.supervise"]
        argv = [sys.executable, "-P", "-m", "alertik.keeper", *supervisord]
        argv += ["--nodaemon", "--configuration", str(path)]
        if os.getuid() == 0:
            # Saying that root is meant spares a CRIT line on every start.
            argv += ["--user", "0"]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    return 1  # not reached
