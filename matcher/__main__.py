"""``python -m alertik.matcher``: run the matcher stage in the foreground."""

from __future__ import annotations

import sys

from alertik.common.lifecycle import run_stage
from alertik.matcher.stage import Matcher


def main() -> int:
    """Run the matcher until SIGTERM; the exit code."""
    return run_stage(Matcher)


if __name__ == "__main__":
    sys.exit(main())
