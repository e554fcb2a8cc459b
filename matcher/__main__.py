"""``python -m alertik.matcher``: run the matcher stage in the foreground."""

from __future__ import annotations

import sys

from alertik.common.lifecycle import run_stage
from alertik.matcher.stage import run


def main() -> int:
    return run_stage("matcher", run)


if __name__ == "__main__":
    sys.exit(main())
