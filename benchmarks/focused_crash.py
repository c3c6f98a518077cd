"""A worker that dies mid-run, for the focused suite's recovery: ``python -m
benchmarks.focused_crash URL KEY RUN_ID STEPS``.

It opens a Runtime on the store at ``URL`` and starts run ``RUN_ID`` of
``crash_sequence(KEY, STEPS + 1)``; the step at index ``STEPS`` kills this process with
SIGKILL as its body starts, so the store holds a run with ``STEPS`` completed steps and one
started. Exits 3 if the run ends instead (no step killed it).
"""

from __future__ import annotations

import asyncio
import sys

from runtime import Runtime

from .focused_workflows import CRASH, FOCUSED_WORKFLOWS, crash_sequence

USAGE = "usage: python -m benchmarks.focused_crash URL KEY RUN_ID STEPS"


async def crash(url: str, key: str, run_id: str, steps: int) -> None:
    """Run ``crash_sequence`` until its step at index ``steps`` kills this process."""
    CRASH.at = steps
    async with Runtime(store=url, workflows=FOCUSED_WORKFLOWS) as rt:
        run = await rt.start(crash_sequence, key, steps + 1, run_id=run_id)
        await run.result()


def main(argv: list[str]) -> int:
    """Parse ``argv``, run until killed; 2 on bad arguments, 3 if the run ended."""
    if len(argv) != 4 or not argv[3].isdigit() or int(argv[3]) < 1:
        print(USAGE, file=sys.stderr)
        return 2
    url, key, run_id, steps = argv[0], argv[1], argv[2], int(argv[3])
    asyncio.run(crash(url, key, run_id, steps))
    print(f"run {run_id} ended: no step killed the worker", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
