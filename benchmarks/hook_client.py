"""A client process that resumes hooks when told to: ``python -m benchmarks.hook_client URL``.

The hooks suite runs it to measure resume latency across processes. It opens a
``Runtime(URL, role="client")``, prints ``ready``, then for each token read from a line of
stdin calls ``resume_hook(token, "go")`` and prints one JSON line: the token, ``called`` and
``returned`` (``time.time()`` just before the call and when it returned), or ``error``. It
exits at the end of stdin.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from runtime import Runtime


def _say(line: dict[str, object] | str) -> None:
    print(line if isinstance(line, str) else json.dumps(line), flush=True)


async def serve(url: str) -> None:
    """Resume the hook of each token on stdin until stdin ends."""
    async with Runtime(url, role="client") as rt:
        _say("ready")
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            token = line.strip()
            called = time.time()
            try:
                await rt.resume_hook(token, "go")
            except Exception as exc:
                _say({"token": token, "error": f"{type(exc).__name__}: {exc}"})
                continue
            _say({"token": token, "called": called, "returned": time.time()})


def main() -> int:
    """Entry point; returns the exit code."""
    if len(sys.argv) != 2:
        print("usage: python -m benchmarks.hook_client STORE_URL", file=sys.stderr)
        return 2
    asyncio.run(serve(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
