"""The router: messages to run actors, and what the runtime holds for the runs it executes.

Every message for a run (a timer, a step's end, a payload, a client's cancel) goes through
:meth:`Router.deliver`, which wakes (spawns) the run's actor when it is not live and this
worker may run it. The router is the run actors' host (``actors.run_actor.RunHost``): it
alone keeps the live hook tokens, the runs' positions in the log, and the one end-of-run
path that releases everything a run held here (:meth:`ended`), however the run ended.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

from actors.actor import ActorRef, ActorSystem
from actors.messages import Begin, Changed, Drain, Idle, Message, RunElsewhere, WaitDue
from actors.run_actor import RunActor, RunServices
from actors.timers import Timers
from actors.view import wait_timer
from persistence import Dormant, Run, StoreUnavailableError

from .errors import RuntimeClosedError

log = logging.getLogger("actorflow.runtime")


class Router:
    """Routes messages to the run actors of one runtime and keeps what they hold."""

    def __init__(
        self,
        system: ActorSystem,
        timers: Timers,
        cancel_bodies: Callable[[str], None],
        may_run: Callable[[str], bool],
        on_end: Callable[[Run], None],
        on_release: Callable[[str], None],
        close_streams: Callable[[str, tuple[str, ...]], None],
        claim: Callable[[str], None] | None = None,
        fence: Callable[[str], int | None] = lambda run_id: None,
        took: Callable[[str, int], None] | None = None,
        take: Callable[[str], Awaitable[int | None]] | None = None,
    ) -> None:
        self._system = system
        self._timers = timers
        self._cancel_bodies = cancel_bodies
        self._may_run = may_run
        self._on_end = on_end
        self._on_release = on_release
        self._close_streams = close_streams
        self._claim = claim
        self._fence = fence
        self._took = took
        self._take = take
        self.services: RunServices | None = None
        self.accepting = True
        """False once the runtime is leaving: no actor is woken any more."""
        self._hooks: dict[str, tuple[str, str]] = {}  # token -> (run id, hook id)
        self._tokens: dict[str, set[str]] = {}  # run id -> its live tokens
        self._known: dict[str, str] = {}  # run id -> last event id this worker knows

    # -- routing --------------------------------------------------------------------------

    def may_run(self, run_id: str) -> bool:
        """Whether this worker executes ``run_id`` (it is not leaving, and holds the run)."""
        return self.accepting and self._may_run(run_id)

    def deliver(self, run_id: str, message: object) -> bool:
        """Send ``message`` to the run's actor, waking it if this worker may run the run;
        False if it did not go (the run is another worker's, or the runtime is leaving)."""
        ref = self._system.lookup(run_id)
        if ref is not None and ref.tell(message):
            return True
        if not self.may_run(run_id) or isinstance(message, Idle):
            return False  # (an idle timer is for the actor that armed it, and it is gone)
        self._spawn(run_id).tell(message)  # type: ignore[arg-type]  # messages are Messages
        return True

    def wake(self, run_id: str) -> None:
        """Make sure a run this worker executes has a live actor (it loads the run)."""
        self.deliver(run_id, Changed())

    def adopt(self, run_id: str, dormant: Dormant | None) -> None:
        """Take over a run this worker just claimed. A dormant one (it only waits) gets its
        timers and hooks, and is loaded when the first of them comes, as a passivated run
        is; any other is loaded now."""
        if dormant is None or self.live(run_id):
            self.wake(run_id)
            return
        for wait_id, at in dormant.waits:
            self._timers.arm(run_id, wait_timer(wait_id), at, WaitDue(wait_id))
        for hook_id, token in dormant.hooks:
            self.hook_live(token, run_id, hook_id)

    def begin(self, run_id: str, begin: Begin) -> None:
        """Hand a new run to its actor (the first message of a fresh actor: no read)."""
        if not self.deliver(run_id, begin) and not begin.reply.done():
            begin.reply.set_exception(
                RuntimeClosedError("the runtime is closing: it starts no new run")
                if not self.accepting
                else RunElsewhere(run_id)
            )

    def drain(self) -> None:
        """The runtime is leaving: no actor is woken; live ones finish what is in hand."""
        self.accepting = False
        for name in self._system.names():
            ref = self._system.lookup(name)
            if ref is not None:
                ref.tell(Drain())

    def live(self, run_id: str) -> bool:
        return self._system.lookup(run_id) is not None

    def _spawn(self, run_id: str) -> ActorRef[Message]:
        services = self.services
        assert services is not None
        # A partial, not a lambda: one object for the cycle collector, not four with its cells.
        return self._system.spawn(run_id, partial(RunActor, run_id, services))

    # -- lookups ----------------------------------------------------------------------------

    def local_hook(self, token: str) -> tuple[str, str] | None:
        """The (run id, hook id) of a live hook of a run executed here, if any."""
        return self._hooks.get(token)

    def knows(self, run_id: str, event_id: str) -> bool:
        """Whether this worker already has ``event_id`` of ``run_id`` (it wrote or read it)."""
        return self._known.get(run_id, "") >= event_id

    def stats(self) -> dict[str, int]:
        return {
            "live_runs": len(self._system),
            "hooks": len(self._hooks),
            "known": len(self._known),
        }

    # -- RunHost --------------------------------------------------------------------------

    def hook_live(self, token: str, run_id: str, hook_id: str) -> None:
        self._hooks[token] = (run_id, hook_id)
        self._tokens.setdefault(run_id, set()).add(token)

    def hook_gone(self, token: str, run_id: str, hook_id: str) -> None:
        if self._hooks.get(token) == (run_id, hook_id):
            del self._hooks[token]
        tokens = self._tokens.get(run_id)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._tokens[run_id]

    def committed(self, run_id: str, last_event_id: str) -> None:
        self._known[run_id] = last_event_id

    def notify(self, run_id: str) -> None:
        """The run's log changed: its actor here reads what is new; a run this worker does
        not hold yet (new from a client, perhaps) may be claimed."""
        if not self.deliver(run_id, Changed()) and self.accepting and self._claim is not None:
            self._claim(run_id)

    def close_streams(self, run_id: str, namespaces: tuple[str, ...]) -> None:
        self._close_streams(run_id, namespaces)

    def fence(self, run_id: str) -> int | None:
        return self._fence(run_id)

    def lease_taken(self, run_id: str, epoch: int) -> None:
        if self._took is not None:
            self._took(run_id, epoch)

    async def take_lease(self, run_id: str) -> int | None:
        if self._take is None:
            return None
        try:
            return await self._take(run_id)
        except RuntimeClosedError as error:  # the runtime is leaving: like a store that waits
            raise StoreUnavailableError(str(error)) from error

    def ended(self, run: Run) -> None:
        """The end-of-run path: timers, bodies, hooks, position, then the runtime's part
        (lease, telemetry, children)."""
        self._forget(run.run_id)
        self._on_end(run)

    def released(self, run_id: str, why: str) -> None:
        """This worker let the run go (it goes on elsewhere): forget it here."""
        log.info("run %s is released by this worker: %s", run_id, why)
        self._forget(run_id)
        self._on_release(run_id)

    def _forget(self, run_id: str) -> None:
        self._timers.disarm_run(run_id)
        self._cancel_bodies(run_id)
        self._known.pop(run_id, None)
        for token in self._tokens.pop(run_id, set()):
            if self._hooks.get(token, ("",))[0] == run_id:
                del self._hooks[token]
