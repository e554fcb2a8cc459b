"""The shipped supervisord.conf and the package layout agree with the code."""

from __future__ import annotations

import configparser
import tomllib

from alertik.common import lifecycle, settings, sockets
from alertik.common.config import STAGES
from alertik.common.converters import Number
from tests.support import REPO


def test_supervisord_runs_each_stage_with_the_installed_package() -> None:
    conf = configparser.RawConfigParser()
    conf.read(REPO / "supervisord.conf")
    programs = {s.split(":", 1)[1] for s in conf.sections() if s.startswith("program:")}
    assert programs == set(STAGES)
    for stage in STAGES:
        section = f"program:{stage}"
        # -P: a checkout's alertik/ folder in the working directory would
        # otherwise shadow the installed package (it has no stage modules).
        assert conf.get(section, "command") == (
            f"%(ENV_ALERTIK_PYTHON)s -P -m alertik {stage}"
        )
        assert (
            conf.get(section, "autostart") == f"%(ENV_ALERTIK_START_{stage.upper()})s"
        )
        assert conf.getint(section, "stopwaitsecs") <= 10


def test_a_stop_fits_in_stopwaitsecs_whatever_the_drain_time() -> None:
    """Drain, hand-off and the sockets' linger together stay within the time
    supervisord gives a stage before SIGKILL."""
    conf = configparser.RawConfigParser()
    conf.read(REPO / "supervisord.conf")
    least = min(conf.getint(f"program:{s}", "stopwaitsecs") for s in STAGES)
    budget = lifecycle.STOP_BUDGET_SECONDS
    assert budget + sockets.LINGER_MS / 1000 <= least
    drain = settings.BY_NAME["ALERTIK_DRAIN_SECONDS"].convert
    assert isinstance(drain, Number) and drain.hi <= budget


def test_downstream_stages_start_first_and_stop_last() -> None:
    conf = configparser.RawConfigParser()
    conf.read(REPO / "supervisord.conf")
    priority = {s: conf.getint(f"program:{s}", "priority") for s in STAGES}
    assert priority["notify"] < priority["matcher"] < priority["ingest"]
    assert priority["forwarder"] < priority["ingest"]


def test_the_package_ships_every_stage_and_the_supervisord_conf() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setup = project["tool"]["setuptools"]
    mapping = setup["package-dir"]
    for stage in (*STAGES, "common"):
        assert mapping[f"alertik.{stage}"] == stage
        assert f"alertik.{stage}" in setup["packages"]
    assert "supervisord.conf" in setup["package-data"]["alertik"]
    shipped = REPO / "alertik" / "supervisord.conf"
    assert shipped.resolve() == (REPO / "supervisord.conf").resolve()


def test_the_image_copies_every_stage_and_locks_every_dependency() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for folder in (*STAGES, "common", "alertik"):
        assert f"COPY {folder} ./{folder}\n" in dockerfile, folder
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    lock = (REPO / "requirements.lock").read_text().lower().replace("_", "-")
    from_debian = {"pyzmq", "google-re2"}  # Debian's builds, see the Dockerfile
    for requirement in project["project"]["dependencies"]:
        name = requirement.split(">")[0].split("=")[0].strip().lower().replace("_", "-")
        if name not in from_debian:
            assert f"\n{name}==" in lock, name
