"""``python -m alertik.forwarder``: run the forwarder stage in the foreground."""

from __future__ import annotations

import sys

from alertik.common.lifecycle import run_stage
from alertik.forwarder.stage import Forwarder


def main() -> int:
    """Run the forwarder until SIGTERM; the exit code."""
    return run_stage(Forwarder)


if __name__ == "__main__":
    sys.exit(main())
