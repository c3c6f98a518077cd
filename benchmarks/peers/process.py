"""Running a peer's script in its own venv: bounded in time, its failures reported, not raised
as anything but :class:`~benchmarks.peers.venv.PeerUnavailable`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from .venv import PeerUnavailable


async def run_script(command: Sequence[str], timeout: float, what: str = "the DBOS script") -> None:
    """Run ``command`` (a peer venv's interpreter and script; this process's PYTHONPATH left
    out, its output on our stderr) for at most ``timeout`` seconds; ``PeerUnavailable`` if it
    hangs (it is killed) or exits with an error."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = await asyncio.create_subprocess_exec(
        *command, stdout=sys.stderr, stderr=sys.stderr, env=environment
    )
    try:
        code = await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PeerUnavailable(f"{what} took over {timeout:.0f} s") from None
    if code != 0:
        raise PeerUnavailable(f"the DBOS script exited with code {code} (its output is above)")
