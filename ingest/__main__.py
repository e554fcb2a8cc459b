"""``python -m alertik.ingest``: run the ingest stage in the foreground."""

from __future__ import annotations

import sys

from alertik.common.lifecycle import run_stage
from alertik.ingest.stage import run


def main() -> int:
    return run_stage("ingest", run)


if __name__ == "__main__":
    sys.exit(main())
