"""``python -m alertik.notify``: run the notify stage in the foreground."""

from __future__ import annotations

import sys

from alertik.common.lifecycle import run_stage
from alertik.notify.stage import Notify


def main() -> int:
    """Run the notify until SIGTERM; the exit code."""
    return run_stage(Notify)


if __name__ == "__main__":
    sys.exit(main())
