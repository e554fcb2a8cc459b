"""``python -m alertik.web``: run the web stage in the foreground."""

from __future__ import annotations

import sys

from alertik.common.lifecycle import run_stage
from alertik.web.stage import Web


def main() -> int:
    """Serve until SIGTERM; the exit code."""
    return run_stage(Web)


if __name__ == "__main__":
    sys.exit(main())
