"""Runs that wait for a worker: not ended, of a workflow that no live worker hosts.

A worker claims only runs of the workflows it hosts, and announces them with each lease
renewal (``Store.list_workers``). A run that has not ended and whose workflow no live worker
announces goes nowhere until a worker that hosts it starts: the command line says so.
"""

from __future__ import annotations

from collections.abc import Collection

from persistence import Store

from .run import RunInfo


async def hosted_workflows(store: Store) -> set[str]:
    """The names of the workflows that some live worker of ``store`` hosts."""
    return {name for worker in await store.list_workers() for name in worker.workflows}


def waits_for_worker(info: RunInfo, hosted: Collection[str]) -> bool:
    """Whether ``info`` has not ended and its workflow is not among ``hosted``."""
    return not info.status.terminal and info.workflow_name not in hosted
