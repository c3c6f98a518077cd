"""Running a test's script in another Python process, with this checkout importable.

Crash tests start a script, wait until it marks that it is inside the critical moment, kill
it with SIGKILL, then run a second process that must finish the job. Command-line tests run
``actorflow`` as its console script does: the current directory is not on the path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]


def script_env() -> dict[str, str]:
    """The environment for a script: this process's, with the checkout on the path."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def start(script: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start ``script`` with ``args`` in another process."""
    return subprocess.Popen([sys.executable, str(script), *args], env=script_env())


def run(script: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``script`` to its end; fail the test (with its stderr) if it fails."""
    done = subprocess.run(
        [sys.executable, str(script), *args],
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done


def cli_command(*args: str) -> list[str]:
    """``actorflow ARGS`` from this checkout, without the current directory on the path (``-P``),
    as the installed console script runs."""
    return [sys.executable, "-P", "-m", "runtime.cli", *args]


def start_cli(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``actorflow ARGS`` in ``cwd``; its stdout and stderr are piped, as text."""
    return subprocess.Popen(
        cli_command(*args),
        cwd=cwd,
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``actorflow ARGS`` in ``cwd`` to its end (whatever its exit status)."""
    return subprocess.run(
        cli_command(*args),
        cwd=cwd,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def kill_when(child: subprocess.Popen[bytes], mark: Path, timeout: float = 30) -> None:
    """SIGKILL ``child`` as soon as ``mark`` exists (and in any case before returning)."""
    try:
        with anyio.fail_after(timeout):
            while not mark.exists():
                assert child.poll() is None, "the process died on its own"
                await anyio.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
