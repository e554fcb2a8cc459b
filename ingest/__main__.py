"""``python -m alertik.ingest``: run the ingest stage in the foreground."""

from __future__ import annotations

import sys

from alertik.common.lifecycle import run_stage
from alertik.ingest.stage import Ingest


def main() -> int:
    """Run the ingest until SIGTERM; the exit code."""
    return run_stage(Ingest)


if __name__ == "__main__":
    sys.exit(main())
