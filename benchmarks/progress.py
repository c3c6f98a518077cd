"""Progress lines on stderr, so stdout stays a paste-ready Markdown report."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    """Print one ``[bench]`` progress line to stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
