"""``python -m alertik``: the same as the ``alertik`` command."""

import sys

from alertik.cli import main

sys.exit(main())
