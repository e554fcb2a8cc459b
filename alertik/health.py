"""``alertik health``: whether every stage of the running alertik answers.

It asks `alertik run`'s keeper (``common/status.py``), which hears a heartbeat
from each stage every second. Kept light on purpose: a container runs it
every few seconds, so it imports neither the configuration nor argparse.
"""

from __future__ import annotations

from alertik.common import paths, status


def check(run_dir: str) -> tuple[int, str]:
    """The exit status and the one line to print."""
    try:
        answer = status.query(run_dir)
    except (OSError, ValueError) as exc:
        return 1, (
            f"unhealthy: alertik run is not answering at "
            f"{status.keeper_path(run_dir)} ({exc}); is it running with this "
            "ALERTIK_RUN_DIR?"
        )
    problems = []
    if answer.get("failure"):
        problems.append(f"stopping: {answer['failure']}")
    for stage in answer["expected"]:
        seen = answer["stages"].get(stage)
        if seen is None:
            problems.append(f"{stage} has not started yet")
        elif seen["pid"] is None:
            problems.append(f"{stage} is not running")
        elif seen["age"] > status.STALE_SECONDS:
            problems.append(
                f"{stage} (pid {seen['status']['pid']}) has not answered for "
                f"{seen['age']:.0f} s"
            )
    if problems:
        return 1, "unhealthy: " + "; ".join(problems)
    return 0, "healthy: " + ", ".join(answer["expected"]) + " running and answering"


def main() -> int:
    code, line = check(paths.run_dir())
    print(line)
    return code
