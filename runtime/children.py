"""Child runs: ``start_child`` in workflow code, and the child's outcome as a durable wait.

``start_child(wf, *args)`` makes two durable calls: a hook (token
``actorflow.child:<child run id>``) and a built-in step that starts the child run, with a run
id derived from the parent's call position (so a replay or a retried start never makes a
second child). When the child ends, its actor writes the outcome to that hook in the same
commit as the child's terminal event, so the parent's ``await child.result()`` is as durable
as any other wait. Cancelling a parent cancels its children.
"""

from __future__ import annotations

import asyncio
from typing import Any

from persistence import ErrorInfo, codec
from persistence.ids import RUN, command_id

from .api import _program_or_fail, current_runtime
from .errors import FatalError, RunCancelledError, RunFailedError, WorkflowNotRegisteredError
from .hooks import WorkflowHook
from .registry import WorkflowFunction, step

CHILD_TOKEN = "actorflow.child:"


def child_token(child_run_id: str) -> str:
    """The token of the hook through which a child's outcome reaches its parent."""
    return CHILD_TOKEN + child_run_id


@step(name="actorflow.start_child", max_retries=5, retry_delay=0.5)
async def start_child_run(
    workflow_name: str, child_run_id: str, parent_run_id: str, parent_hook_id: str, data: bytes
) -> str:
    """Start the child run (idempotent: its id is fixed by the parent's call)."""
    runtime = current_runtime()
    if (await runtime.store.get_run(parent_run_id)).status.terminal:
        raise FatalError(f"parent run {parent_run_id} has ended; its child is not started")
    try:
        await runtime.start_child_run(
            workflow_name, child_run_id, parent_run_id, parent_hook_id, data
        )
    except WorkflowNotRegisteredError as error:
        raise FatalError(str(error)) from None
    return child_run_id


class ChildRun:
    """A child run started by workflow code."""

    def __init__(
        self, run_id: str, hook: WorkflowHook, started: asyncio.Future[Any], return_type: Any
    ) -> None:
        self.id = run_id
        self._hook = hook
        self._started = started
        self._return_type = return_type
        self._outcome: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<ChildRun {self.id}>"

    async def result(self) -> Any:
        """Wait (durably) for the child to end: its output, or ``RunFailedError`` /
        ``RunCancelledError``. ``StepFailedError`` if the child could not be started."""
        await self._started
        if self._outcome is None:
            self._outcome = await self._hook
            self._hook.dispose()
        outcome = self._outcome
        if outcome["status"] == "completed":
            return codec.decode(
                outcome["output"] or b"\xc0",
                self._return_type,
                where=f"the output of child {self.id}",
            )
        if outcome["status"] == "cancelled":
            raise RunCancelledError(self.id)
        error = outcome["error"] or {}
        info = ErrorInfo(
            message=error.get("message", ""),
            type=error.get("type", "Exception"),
            traceback=error.get("traceback"),
            code=error.get("code"),
        )
        raise RunFailedError(self.id, info.code or "USER_ERROR", info.message, info)


def start_child(workflow: WorkflowFunction[Any, Any] | str, *args: Any, **kwargs: Any) -> ChildRun:
    """Start a child run of ``workflow`` from workflow code (a durable call)."""
    program = _program_or_fail("start_child()")
    if isinstance(workflow, WorkflowFunction):
        name, return_type = workflow.name, workflow.signature.return_type
        data = workflow.signature.encode(args, kwargs, f"child workflow {name!r}")
    elif isinstance(workflow, str):
        name, return_type = workflow, Any
        data = codec.encode([list(args), kwargs], where=f"the arguments of child workflow {name!r}")
    else:
        raise TypeError(f"{workflow!r} is not a @workflow function or a workflow name")
    run = program.run
    child_run_id = command_id(
        RUN, run.run_id, run.created_at, program.generation, program.next_position
    )
    hook = program.create_hook(child_token(child_run_id), None)
    started = asyncio.ensure_future(
        program.call_step(start_child_run, (name, child_run_id, run.run_id, hook.hook_id, data), {})
    )
    return ChildRun(child_run_id, hook, started, return_type)
