"""Signals to runs from outside their workflow code: cancel, wake up, hook payloads, rerun.

A run this worker executes is signalled through its actor, which records the event with a
write conditional on the run's log (so the signal and the run's own progress never race) and
answers once it is stored. A run executed elsewhere (another worker, or none: a client
runtime) is signalled by writing the event to the store directly; its owner learns of it by
the log (notifications, or its poll). Either way one write records one signal: a cancelled
child's notice to its parent is in the same batch as its cancellation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from actors.batcher import Batcher
from actors.clock import SYSTEM_CLOCK, Clock
from actors.messages import Cancel, Changed, HookPayload, RunElsewhere, WakeUp
from actors.requests import ending_requests
from persistence import Event, NewEvent, Store, codec
from persistence import events as ev
from persistence.errors import (
    EntityConflictError,
    HookNotFoundError,
    PayloadRecordedError,
    RunExpiredError,
    RunNotFoundError,
)

from .replies import Replies
from .reruns import rerun_point
from .router import Router


class Signals:
    """Cancel, wake, resume and rerun runs, for one runtime."""

    def __init__(
        self,
        store: Store,
        batcher: Batcher,
        router: Router,
        replies: Replies,
        cancel_children: Callable[[str], Any],
        take: Callable[[], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._take = take
        self._clock = clock
        self._store = store
        self._batcher = batcher
        self._router = router
        self._replies = replies
        self._cancel_children = cancel_children

    async def _ask(self, run_id: str, make: Callable[[Any], object]) -> tuple[bool, Any]:
        """Ask the run's actor here, if this worker executes the run: (asked, answer)."""
        if not self._router.may_run(run_id) and not self._router.live(run_id):
            return False, None
        reply = self._replies.new()
        if not self._router.deliver(run_id, make(reply)):
            reply.cancel()
            return False, None
        try:
            return True, await reply
        except RunElsewhere:
            return False, None

    async def cancel(self, run_id: str, reason: str | None) -> bool:
        """Cancel a run; False if it had already ended. ``RunNotFoundError`` if unknown."""
        asked, answer = await self._ask(run_id, lambda reply: Cancel(reason, reply))
        if asked:
            return bool(answer)
        run = await self._store.get_run(run_id)
        if run.status.terminal:
            return False
        requests = ending_requests(run, ev.RunCancelled(reason=reason), self._clock.now())
        outcomes = (await self._batcher.submit(requests)).outcomes
        if isinstance(outcomes[0], RunNotFoundError):
            raise outcomes[0]
        if isinstance(outcomes[0], BaseException):
            return False  # it ended meanwhile
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, Event):
                self._router.deliver(request.run_id, Changed())
        await self._cancel_children(run_id)
        return True

    async def wake_up(self, run_id: str, correlation_ids: Iterable[str] | None) -> int:
        """End pending sleeps of a run now (those named, or all); how many ended."""
        ids = frozenset(correlation_ids) if correlation_ids is not None else None
        run = await self._store.get_run(run_id)
        if run.status.terminal:
            return 0
        asked, answer = await self._ask(run_id, lambda reply: WakeUp(ids, reply))
        if asked:
            return int(answer)
        waits = [w for w in await self._store.list_waits(run_id) if w.status == "waiting"]
        requests = [
            NewEvent(run_id, ev.WaitCompleted(resume_at=w.resume_at), w.wait_id)
            for w in waits
            if ids is None or w.wait_id in ids
        ]
        if not requests:
            return 0
        outcomes = (await self._batcher.submit(requests)).outcomes
        return sum(1 for o in outcomes if isinstance(o, Event))

    async def resume_hook(self, token: str, payload: Any, key: str | None = None) -> str:
        """Send ``payload`` to the live hook holding ``token``; the hook's run id. With an
        idempotency ``key``, the first payload of that key is recorded and a retry returns
        the same run id without recording it again (even once the hook is released)."""
        data = codec.encode(payload, where=f"the payload for hook {token!r}")
        local = self._router.local_hook(token)
        if local is not None:  # a hook of a run executed here: no read
            run_id, hook_id = local
            with contextlib.suppress(HookNotFoundError):  # it moved on: ask the store
                asked, answer = await self._ask(
                    run_id, lambda reply: HookPayload(hook_id, token, data, reply, key)
                )
                if asked:
                    return str(answer)
        hook = await self._store.resolve_hook(token, key)  # one read, hit or miss
        if hook is None:
            raise HookNotFoundError(token)
        if isinstance(hook, str):
            return hook  # no live hook, and this key's payload was recorded: by that run
        asked, answer = await self._ask(
            hook.run_id, lambda reply: HookPayload(hook.hook_id, token, data, reply, key)
        )
        if asked:
            return str(answer)
        received = ev.HookReceived(payload=data, token=token, idempotency_key=key)
        outcomes = (
            await self._batcher.submit([NewEvent(hook.run_id, received, hook.hook_id)])
        ).outcomes
        outcome = outcomes[0]
        if isinstance(outcome, PayloadRecordedError):
            return outcome.run_id
        if isinstance(outcome, RunExpiredError | HookNotFoundError | EntityConflictError):
            raise HookNotFoundError(token)
        if isinstance(outcome, BaseException):
            raise outcome
        self._router.deliver(hook.run_id, Changed())
        return hook.run_id

    async def rerun_from(self, run_id: str, step: str) -> None:
        """Append ``run_rerun`` from ``step`` (see ``Runtime.rerun_from``); a worker hosting
        the workflow takes the run at once (an ended run's lease was given up)."""
        data = await rerun_point(self._store, run_id, step)
        outcomes = (await self._batcher.submit([NewEvent(run_id, data)])).outcomes
        if isinstance(outcomes[0], BaseException):
            raise outcomes[0]
        if self._router.deliver(run_id, Changed()):
            return
        if self._take is not None:
            self._take()  # a worker hosting it (this one, perhaps) takes it
