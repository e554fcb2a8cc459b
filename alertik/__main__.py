"""``alertik``: the command (``python -m alertik`` is the same).

``alertik health`` takes a short way round the rest of the command line: a
container runs it every few seconds, so it should cost next to nothing.
"""

import sys


def main() -> int:
    if sys.argv[1:] == ["health"]:
        from alertik import health

        return health.main()
    from alertik.cli import main as cli

    return cli()


if __name__ == "__main__":
    sys.exit(main())
