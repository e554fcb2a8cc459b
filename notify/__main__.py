"""``python -m alertik.notify``: run the notify stage (as ``alertik notify``)."""

from __future__ import annotations

import sys

from alertik.common.lifecycle import run_stage
from alertik.notify.stage import run


def main() -> int:
    """Run the notify stage; the process exit code."""
    return run_stage("notify", run)


if __name__ == "__main__":
    sys.exit(main())
