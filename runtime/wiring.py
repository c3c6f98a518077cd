"""The collaborators of a running runtime, made and wired together when it is entered.

Each owns its state: the actor system and the router (run actors, live hooks, positions, the
end-of-run path), the batcher, the timers, the step runner, the leases (PostgreSQL), the
starter and the signals; the replies answer every waiting caller, at the latest when the
runtime leaves. The runtime itself holds none of their state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anyio.abc import TaskGroup

from actors.actor import ActorSystem
from actors.batcher import Batcher
from actors.core import CoreConfig
from actors.run_actor import RunServices
from actors.timers import Timers

from .leases import Leases
from .replies import Replies
from .router import Router
from .signals import Signals
from .starter import Starter
from .steps import StepRunner
from .streams import close_streams

if TYPE_CHECKING:
    from .runtime import Runtime


class Parts:
    """The collaborators of a running runtime, made when it is entered."""

    def __init__(self, rt: Runtime, tg: TaskGroup) -> None:
        store = rt.store
        telemetry = rt.telemetry
        assert telemetry is not None
        client = rt.role == "client"
        self.system = ActorSystem(tg)
        self.replies = Replies()
        self.batcher = Batcher(
            store, observe=telemetry.batch_written if telemetry.metering else None
        )
        self.leases: Leases | None = None
        if not client:
            self.leases = Leases(
                store,
                rt.worker_id,
                rt.lease_seconds,
                hosted=rt.registry.names,
                adopt=lambda run_id, dormant: self.router.adopt(run_id, dormant),
                lost=rt._lost,
                max_runs=rt.max_runs,
            )
        leases = self.leases
        self.timers = Timers(lambda run_id, message: self.router.deliver(run_id, message), rt.clock)
        self.steps = StepRunner(
            lambda run_id, message: self.router.deliver(run_id, message),
            rt.max_concurrent_steps,
            runtime=rt,
            around=telemetry.step_attempt if telemetry.active else None,
            clock=rt.clock,
        )
        self.router = Router(
            self.system,
            self.timers,
            self.steps.cancel,
            may_run=leases.holds if leases is not None else (lambda run_id: False),
            on_end=rt._ended,
            on_release=rt._released,
            close_streams=lambda run_id, names: rt._background(close_streams, store, run_id, names),
            claim=(lambda run_id: leases.want()) if leases is not None else None,
            fence=leases.epoch if leases is not None else (lambda run_id: None),
            took=leases.took if leases is not None else None,
            take=leases.claim if leases is not None else None,
        )
        self.router.services = RunServices(
            store=store,
            batcher=self.batcher,
            timers=self.timers,
            executor=self.steps,
            programs=rt._program,
            host=self.router,
            config=CoreConfig(worker_id=rt.worker_id, passivate_after=rt.passivate_after),
            observer=telemetry if telemetry.active else None,
            clock=rt.clock,
        )
        self.starter = Starter(
            rt.registry,
            rt.worker_id,
            client,
            self.router,
            self.batcher,
            self.replies,
            telemetry,
            leases,
            rt.clock,
            claims_in_write=bool(getattr(store, "claims_in_write", False)),
        )
        self.signals = Signals(
            store,
            self.batcher,
            self.router,
            self.replies,
            rt._cancel_children,
            take=leases.want if leases is not None else None,
            clock=rt.clock,
        )
