"""actorflow and a peer measured in turns, round by round, so drift over a run hits both alike.

Generic over what a round is told (its share of the repetitions) and what it returns (raw
samples), so each suite keeps its own measuring and summarizing. A peer that fails stops
taking turns; the failure is kept (said as "not run, because ...") and none of its rounds
are used, while actorflow's rounds all run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..model import SuiteResult
from ..progress import say
from .venv import PeerEnv, PeerUnavailable, ensure_peer

R = TypeVar("R")
T = TypeVar("T")
PEER_FAILURES = (PeerUnavailable, OSError, ValueError, KeyError, TypeError)
"""What a peer's round may raise that means "the peer did not run", not a bug of ours: its
script failed or hung, or wrote a result that is not what we read."""


@dataclass
class Turns(Generic[T]):
    """Each engine's results, one per round; ``failed``: why the peer's were dropped."""

    ours: list[T] = field(default_factory=list)
    theirs: list[T] = field(default_factory=list)
    failed: str | None = None

    @property
    def peer_ran(self) -> bool:
        """Whether the peer ran every round it was given."""
        return self.failed is None and bool(self.theirs)


async def take_turns(
    label: str,
    rounds: Sequence[R],
    ours: Callable[[R], Awaitable[T]],
    theirs: Callable[[R], Awaitable[T]] | None,
) -> Turns[T]:
    """Run every round of ``rounds`` with ``ours`` and (while it works) ``theirs``, taking
    turns first: actorflow first in even rounds, the peer in odd ones."""
    out: Turns[T] = Turns()

    async def peer(part: R) -> None:
        if theirs is None or out.failed is not None:
            return
        try:
            out.theirs.append(await theirs(part))
        except PEER_FAILURES as exc:
            out.failed = str(exc) or type(exc).__name__
            out.theirs.clear()
            say(f"{label}: the peer failed, so it is not run further: {out.failed}")

    for index, part in enumerate(rounds):
        say(f"{label}: round {index + 1} of {len(rounds)}")
        if index % 2:
            await peer(part)
        out.ours.append(await ours(part))
        if not index % 2:
            await peer(part)
    return out


async def peer_env(out: SuiteResult, label: str, mode: str) -> PeerEnv | None:
    """DBOS's venv, with ``out``'s peer metadata (``mode``: how the suite runs DBOS); None
    if it is unavailable, and why in ``out.skipped``."""
    try:
        env = await asyncio.to_thread(ensure_peer)
    except PeerUnavailable as exc:
        out.skipped.append(f"DBOS is unavailable, so it was not measured: {exc}")
        say(f"{label}: {exc}")
        return None
    out.peer = {
        "name": "DBOS",
        "package": f"{env.package}=={env.version}",
        "venv": str(env.venv),
        "mode": mode,
    }
    return env
