"""The run directory: the part of the configuration `alertik health` needs.

`alertik health` runs every few seconds in a container (its HEALTHCHECK), so
it reads only this, not the whole configuration; ``settings`` takes the
default from here too, so both always agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

RUN_DIR_VARIABLE = "ALERTIK_RUN_DIR"


def default_run_dir(env: Mapping[str, str]) -> str:
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, f"alertik-{os.getuid()}")
    if os.getuid() == 0 and os.path.isdir("/run"):
        return "/run/alertik"  # root's own; no other user can pre-create it
    # tempfile (with shutil, bz2, lzma and random) only when needed. The
    # directory is checked at start: refused if another user made it or may
    # write it.
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"alertik-{os.getuid()}")


def run_dir(environ: Mapping[str, str] | None = None) -> str:
    """ALERTIK_RUN_DIR, or its default, as an absolute path."""
    env = os.environ if environ is None else environ
    return os.path.abspath(
        env.get(RUN_DIR_VARIABLE, "").strip() or default_run_dir(env)
    )
